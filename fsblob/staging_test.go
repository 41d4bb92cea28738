//go:build unix

package fsblob_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage/fsblob"
)

// TestOpenSparesLivePuts checks that opening a second store on a
// directory, as a second server started on the same data directory does,
// removes what a dead process left in staging but not the file of a Put
// still running, which then completes.
func TestOpenSparesLivePuts(t *testing.T) {
	dir := t.TempDir()
	first, err := fsblob.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	staging := filepath.Join(dir, ".staging")
	stale := filepath.Join(staging, "left-by-a-dead-process")
	if err := os.WriteFile(stale, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := first.Put(context.Background(), "live-key", pr)
		done <- err
	}()
	if _, err := pw.Write([]byte("first half, ")); err != nil {
		t.Fatal(err)
	}
	// The Put's staging file exists once the first bytes are taken.
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, err := os.ReadDir(staging)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("staging holds %d files, want the stale one and the Put's", len(entries))
		}
		time.Sleep(10 * time.Millisecond)
	}

	if _, err := fsblob.Open(dir); err != nil {
		t.Fatalf("second Open: %v", err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale staging file survived the second Open: %v", err)
	}

	if _, err := pw.Write([]byte("second half")); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatalf("the Put running during the second Open failed: %v", err)
	}
	rc, err := first.Open(context.Background(), "live-key")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte("first half, second half"); !bytes.Equal(got, want) {
		t.Errorf("stored %q, want %q", got, want)
	}
}
