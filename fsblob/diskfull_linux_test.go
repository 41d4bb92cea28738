//go:build linux

package fsblob_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/fsblob"
)

// TestPutRealDiskFull fills a real, small file system. It runs only when
// CLOUDIMAGE_TEST_SMALL_FS names an empty directory on one (a tmpfs of a
// few MiB, say: mount -t tmpfs -o size=4m tmpfs DIR).
func TestPutRealDiskFull(t *testing.T) {
	dir := os.Getenv("CLOUDIMAGE_TEST_SMALL_FS")
	if dir == "" {
		t.Skip("CLOUDIMAGE_TEST_SMALL_FS is not set")
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if free > 256<<20 {
		t.Fatalf("%s has %d bytes free: too many to fill in a test", dir, free)
	}
	dir = filepath.Join(dir, "blobs")
	t.Cleanup(func() { os.RemoveAll(dir) })
	s, err := fsblob.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = s.Put(ctx, "0123456789", io.LimitReader(zeroReader{}, 2*free+1<<20))
	if cloudimage.ErrorCode(err) != cloudimage.ETOOLARGE || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("put of more than the free space: %v, want ETOOLARGE from ENOSPC", err)
	}
	assertNothingKept(t, s, dir, "0123456789")

	// The failed put gave its space back: data that fits is taken.
	data := bytes.Repeat([]byte("x"), int(free/4))
	if _, err := s.Put(ctx, "abcdefgh", bytes.NewReader(data)); err != nil {
		t.Fatalf("put after the failed one: %v", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
