package main

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
)

// TestDBBusyTimeout checks --db-busy-timeout: from its variable, a write
// waits that long for a lock another process holds on the database, then
// fails as unavailable; once the lock is gone the write works. A timeout
// that is not positive, or not a duration, is refused.
func TestDBBusyTimeout(t *testing.T) {
	t.Parallel()
	const busy = 400 * time.Millisecond
	s := startServer(t, t.TempDir(), map[string]string{
		"CLOUDIMAGE_ADMIN_PASSWORD": testAdminPassword, "CLOUDIMAGE_DB_BUSY_TIMEOUT": busy.String(),
	})
	c := s.adminClient(t)
	checkConfigLog(t, s, "db_busy_timeout="+busy.String())

	ctx := context.Background()
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(s.DataDir, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	conn, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	attrs := map[string]any{"name": "locked", "disk_format": "raw", "container_format": "bare", "os_type": "linux"}
	start := time.Now()
	_, err = c.CreateImage(t.Context(), attrs)
	took := time.Since(start)
	if cloudimage.ErrorCode(err) != cloudimage.EUNAVAILABLE {
		t.Errorf("create while the database is locked: %v, want unavailable", err)
	}
	if took < busy*2/3 || took > busy+5*time.Second {
		t.Errorf("create while locked failed after %v, want about %v", took, busy)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateImage(t.Context(), attrs); err != nil {
		t.Errorf("create once the lock is released: %v", err)
	}

	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--db-busy-timeout", "0s"}, "database busy timeout must be positive"},
		{map[string]string{"CLOUDIMAGE_DB_BUSY_TIMEOUT": "soon"}, nil, "CLOUDIMAGE_DB_BUSY_TIMEOUT"},
	} {
		args := append([]string{"serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"}, tc.args...)
		if _, err := cli(t, tc.env, args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve %v with %v: %v, want an error about %q", tc.args, tc.env, err, tc.want)
		}
	}
}
