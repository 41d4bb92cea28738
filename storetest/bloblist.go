package storetest

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/google/uuid"
)

// listBlobs returns what s.List yields, by key, failing on an error or a
// key listed twice.
func listBlobs(t *testing.T, s cloudimage.BlobStore) map[string]cloudimage.BlobInfo {
	t.Helper()
	out := map[string]cloudimage.BlobInfo{}
	for info, err := range s.List(context.Background()) {
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		if _, dup := out[info.Key]; dup {
			t.Fatalf("list yields %s twice", info.Key)
		}
		out[info.Key] = info
	}
	return out
}

// testBlobList checks that List yields exactly the complete blobs, with
// their sizes and times of writing, and that a caller may stop early.
func testBlobList(t *testing.T, s cloudimage.BlobStore) {
	ctx := context.Background()
	if got := listBlobs(t, s); len(got) != 0 {
		t.Fatalf("a new store lists %v, want nothing", slices.Collect(maps.Keys(got)))
	}
	want := map[string]int64{}
	before := time.Now()
	for i, size := range []int{0, 1, 5000} {
		key := uuid.NewString()
		if i == 2 {
			key += ".staged" // keys are not only image IDs
		}
		if _, err := s.Put(ctx, key, bytes.NewReader(randomBytes(t, size))); err != nil {
			t.Fatal(err)
		}
		want[key] = int64(size)
	}
	after := time.Now()
	failed := uuid.NewString()
	if _, err := s.Put(ctx, failed, &failingReader{n: 100, err: errors.New("gone")}); err == nil {
		t.Fatal("failing put succeeded")
	}
	deleted := uuid.NewString()
	if _, err := s.Put(ctx, deleted, bytes.NewReader([]byte("brief"))); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, deleted); err != nil {
		t.Fatal(err)
	}

	got := listBlobs(t, s)
	if len(got) != len(want) {
		t.Fatalf("list yields %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	for key, size := range want {
		info, ok := got[key]
		if !ok {
			t.Fatalf("list lacks %s", key)
		}
		if info.Size != size {
			t.Errorf("%s: size %d, want %d", key, info.Size, size)
		}
		// File systems keep coarse times: allow a second either side.
		if info.ModTime.Before(before.Add(-time.Second)) || info.ModTime.After(after.Add(time.Second)) {
			t.Errorf("%s: ModTime %v, want between %v and %v", key, info.ModTime, before, after)
		}
	}

	n := 0
	for _, err := range s.List(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		break
	}
	if n != 1 {
		t.Fatalf("stopping after the first blob: got %d", n)
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	var listErr error
	for _, err := range s.List(canceled) {
		if err != nil {
			listErr = err
			break
		}
	}
	if listErr == nil {
		t.Fatal("List with a canceled context yielded no error")
	}
}

// testBlobListDeleting deletes every blob as List yields it, as the
// orphan sweep does: each is yielded once and the store ends up empty.
func testBlobListDeleting(t *testing.T, s cloudimage.BlobStore) {
	ctx := context.Background()
	keys := map[string]bool{}
	for range 50 {
		key := uuid.NewString()
		if _, err := s.Put(ctx, key, bytes.NewReader([]byte(key))); err != nil {
			t.Fatal(err)
		}
		keys[key] = true
	}
	seen := map[string]bool{}
	for info, err := range s.List(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if seen[info.Key] || !keys[info.Key] {
			t.Fatalf("list yields %s, which is unknown or was yielded already", info.Key)
		}
		seen[info.Key] = true
		if err := s.Delete(ctx, info.Key); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != len(keys) {
		t.Fatalf("list yielded %d of %d blobs while they were deleted", len(seen), len(keys))
	}
	if left := listBlobs(t, s); len(left) != 0 {
		t.Fatalf("after deleting everything, list yields %d blobs", len(left))
	}
}
