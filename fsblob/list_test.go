package fsblob_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cloudimage/cloudimage/fsblob"
)

// TestListSkipsNonBlobs checks that List yields only files that Delete
// can reach by their name: not the staging directory's unfinished
// uploads, nor stray files a key could not name.
func TestListSkipsNonBlobs(t *testing.T) {
	dir := t.TempDir()
	s, err := fsblob.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Put(ctx, "abcdef", bytes.NewReader([]byte("blob"))); err != nil {
		t.Fatal(err)
	}
	for _, stray := range []string{
		".staging/abcxyz.123", // an upload in progress
		"ab/zzzz",             // not under its key's directory
		"ab/.hidden",          // not a valid key
		"toplevel",            // beside the key directories
		"abc/abcqqq",          // a directory that is not a key directory
	} {
		path := filepath.Join(dir, stray)
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("stray"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "ab", "abdir"), 0o750); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for info, err := range s.List(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, info.Key)
	}
	if !slices.Equal(keys, []string{"abcdef"}) {
		t.Fatalf("List yields %v, want only [abcdef]", keys)
	}
}
