package fsblob_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/cloudimage/cloudimage/fsblob"
)

// resident returns how many of the first n bytes of the file at path are
// in the page cache.
func resident(t *testing.T, path string, n int) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, n, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (n+page-1)/page)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(n),
		uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		t.Fatal(errno)
	}
	in := 0
	for _, v := range vec {
		in += int(v & 1)
	}
	return in * page
}

// TestPutWritesBack checks that a big Put leaves little of its blob in
// the page cache, the data written out and dropped as it streamed, on a
// file system that writes to a disk (not tmpfs), and that the blob is
// whole: read through a reader and through one that writes itself out.
func TestPutWritesBack(t *testing.T) {
	dir := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC {
		t.Skipf("%s is in memory: nothing is written back", dir)
	}
	s, err := fsblob.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 40<<20)
	rand.NewChaCha8([32]byte{3}).Read(data)
	ctx := context.Background()
	for key, r := range map[string]io.Reader{
		"0123456789": &chunkReader{data: data, max: 1 << 20},
		"abcdefghij": &pieceWriter{data: data, piece: 1 << 20},
	} {
		if _, err := s.Put(ctx, key, r); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, key[:2], key)
		// The last steps may still be cached; the first must not be.
		if in := resident(t, path, 16<<20); in > 1<<20 {
			t.Errorf("%s: %d of its first 16 MiB in the page cache after the put, want at most 1 MiB", key, in)
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: read back %d bytes (%v), not the %d put", key, len(got), err, len(data))
		}
	}
}
