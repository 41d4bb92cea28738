package httpapi_test

import (
	"context"
	"database/sql"
	"net/http"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
)

// holdWriteLock takes the write lock of the env's database on a
// connection of its own, as another process writing the file would, and
// returns the function that releases it.
func holdWriteLock(t *testing.T, e *env) (release func()) {
	t.Helper()
	ctx := context.Background()
	raw, err := sql.Open("sqlite", "file:"+e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatalf("take the lock: %v", err)
	}
	released := false
	release = func() {
		if released {
			return
		}
		released = true
		if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
			t.Errorf("release the lock: %v", err)
		}
		conn.Close()
		raw.Close()
	}
	t.Cleanup(release)
	return release
}

// TestDatabaseBusy holds the database's write lock from outside the
// server: writes wait the configured busy timeout, then answer 503 with
// Retry-After in their face's own format, change nothing, and never
// panic; reads go on; once the lock is released the same requests work.
func TestDatabaseBusy(t *testing.T) {
	const busy = 300 * time.Millisecond
	e := newEnvWith(t, envConfig{busyTimeout: busy})
	member := e.token(t, e.a, cloudimage.RoleMember)
	queued := e.newImage(t, member, "queued")
	doomed := e.newImage(t, member, "to delete")
	const create = `{"name": "while locked", "disk_format": "raw", "container_format": "bare", "os_type": "linux"}`
	const msg = "The database is busy; try again later."

	release := holdWriteLock(t, e)
	start := time.Now()
	status, h, body := e.call(t, "POST", "/v2/images", member, create, "Content-Type", "application/json")
	took := time.Since(start)
	checkGlanceError(t, status, h, body, http.StatusServiceUnavailable, msg)
	if got := h.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1", got)
	}
	if took < busy*2/3 || took > busy+5*time.Second {
		t.Errorf("create while locked answered after %v, want about the busy timeout %v", took, busy)
	}

	status, h, body = e.call(t, "PUT", "/v2/images/"+queued+"/file", member, "data",
		"Content-Type", "application/octet-stream")
	checkGlanceError(t, status, h, body, http.StatusServiceUnavailable, msg)

	// v1.0 answers in its envelope: 30000 plus the status.
	hdr, _ := e.nhn(t, "DELETE", imagesPath(e.a)+"?id="+doomed, member, "")
	if hdr.ResultCode != 30503 || hdr.ResultMessage != msg {
		t.Errorf("v1.0 delete while locked: %d %q, want 30503 %q", hdr.ResultCode, hdr.ResultMessage, msg)
	}

	// Reads go on beside the lock, and see that nothing changed.
	if ids := e.listIDs(t, e.a, member, ""); len(ids) != 2 {
		t.Errorf("images while locked: %v, want the two made before", ids)
	}
	if got := e.getImage(t, member, queued)["status"]; got != "queued" {
		t.Errorf("upload refused while locked: status %v, want queued", got)
	}
	// Readiness may say either; it must answer.
	if status, _, _ := e.call(t, "GET", "/readyz", "", ""); status != http.StatusOK &&
		status != http.StatusServiceUnavailable {
		t.Errorf("readyz while locked: %d, want 200 or 503", status)
	}

	release()
	status, _, body = e.call(t, "POST", "/v2/images", member, create, "Content-Type", "application/json")
	if status != http.StatusCreated {
		t.Errorf("create after the lock is released: %d %q, want 201", status, body)
	}
	e.upload(t, member, queued, []byte("data"))
	if hdr, _ := e.nhn(t, "DELETE", imagesPath(e.a)+"?id="+doomed, member, ""); !hdr.IsSuccessful {
		t.Errorf("v1.0 delete after the lock is released: %d %q", hdr.ResultCode, hdr.ResultMessage)
	}
	if ids := e.listIDs(t, e.a, member, ""); len(ids) != 2 {
		t.Errorf("images after the lock is released: %v, want two (one created, one deleted)", ids)
	}
}
