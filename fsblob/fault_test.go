package fsblob_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/fsblob"
)

// failAfter yields n bytes of data, then err: a write that the file
// system refuses part way looks the same to Put's copy.
type failAfter struct {
	n   int
	err error
}

func (r *failAfter) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	k := min(len(p), r.n)
	clear(p[:k])
	r.n -= k
	return k, nil
}

// TestPutStorageFull checks what a Put that fails part way returns: a
// full disk or quota is ETOOLARGE with a message for the caller, any
// other I/O error stays internal; the cause stays in the chain for the
// log, and nothing is left, neither under the key nor in staging.
func TestPutStorageFull(t *testing.T) {
	for _, tc := range []struct {
		errno syscall.Errno
		code  string
	}{
		{syscall.ENOSPC, cloudimage.ETOOLARGE},
		{syscall.EDQUOT, cloudimage.ETOOLARGE},
		{syscall.EIO, cloudimage.EINTERNAL},
	} {
		t.Run(tc.errno.Error(), func(t *testing.T) {
			dir := t.TempDir()
			s, err := fsblob.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			cause := &fs.PathError{Op: "write", Path: filepath.Join(dir, ".staging", "x"), Err: tc.errno}
			_, err = s.Put(ctx, "0123456789", &failAfter{n: 100_000, err: cause})
			if got := cloudimage.ErrorCode(err); got != tc.code {
				t.Fatalf("put: %v (code %s), want code %s", err, got, tc.code)
			}
			if !errors.Is(err, tc.errno) {
				t.Errorf("put: %v, want %v kept in the chain", err, tc.errno)
			}
			msg := cloudimage.ErrorMessage(err)
			if tc.code == cloudimage.ETOOLARGE && !strings.Contains(msg, "storage") {
				t.Errorf("message %q, want one that says the storage is full", msg)
			}
			if strings.Contains(msg, dir) {
				t.Errorf("message %q shows the store's path", msg)
			}
			assertNothingKept(t, s, dir, "0123456789")
		})
	}
}

// assertNothingKept checks that key has no data and staging is empty.
func assertNothingKept(t *testing.T, s *fsblob.Store, dir, key string) {
	t.Helper()
	if _, err := s.Open(context.Background(), key); cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
		t.Errorf("open %s after a failed put: %v, want ENOTFOUND", key, err)
	}
	entries, err := os.ReadDir(filepath.Join(dir, ".staging"))
	if err != nil || len(entries) != 0 {
		t.Errorf("staging holds %d entries (%v), want none", len(entries), err)
	}
}
