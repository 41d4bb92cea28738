package fsblob_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/fsblob"
	"github.com/cloudimage/cloudimage/storetest"
)

func TestConformance(t *testing.T) {
	storetest.TestBlobStore(t, func(t *testing.T) cloudimage.BlobStore {
		s, err := fsblob.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestStagingLeftEmpty checks that neither a good nor a failed put leaves
// anything in the staging directory.
func TestStagingLeftEmpty(t *testing.T) {
	dir := t.TempDir()
	s, err := fsblob.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Put(ctx, "0123456789", bytes.NewReader([]byte("data"))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "abcdef", iotestErr{}); err == nil {
		t.Fatal("failing put succeeded")
	}
	entries, err := os.ReadDir(filepath.Join(dir, ".staging"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("staging directory holds %d entries, want none", len(entries))
	}
	if _, err := os.Stat(filepath.Join(dir, "01", "0123456789")); err != nil {
		t.Fatalf("committed blob not at its path: %v", err)
	}
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errors.New("read failed") }

// TestOpenClearsStaging checks that leftovers of a crashed process are
// removed when the store is opened again.
func TestOpenClearsStaging(t *testing.T) {
	dir := t.TempDir()
	if _, err := fsblob.Open(dir); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(dir, ".staging", "abc.123")
	if err := os.WriteFile(leftover, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := fsblob.Open(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("leftover staging file still there: %v", err)
	}
}

func TestInvalidKeys(t *testing.T) {
	s, err := fsblob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, key := range []string{"", "ab", "../../etc/passwd", "a/bcd", `a\bcd`, ".staging"} {
		if _, err := s.Put(ctx, key, bytes.NewReader(nil)); cloudimage.ErrorCode(err) != cloudimage.EINVALID {
			t.Errorf("put %q: got %v, want EINVALID", key, err)
		}
		if _, err := s.Open(ctx, key); cloudimage.ErrorCode(err) != cloudimage.EINVALID {
			t.Errorf("open %q: got %v, want EINVALID", key, err)
		}
	}
}

// TestPing checks that the store is ready while it can take data, and not
// once its directory cannot hold files.
func TestPing(t *testing.T) {
	dir := t.TempDir()
	s, err := fsblob.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if entries, err := os.ReadDir(filepath.Join(dir, ".staging")); err != nil || len(entries) != 0 {
		t.Fatalf("Ping left %d files in staging (%v)", len(entries), err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(context.Background()); err == nil {
		t.Fatal("Ping of a store whose directory is gone: no error")
	}
}
