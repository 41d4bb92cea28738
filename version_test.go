package cloudimage_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/cloudimage/cloudimage"
)

func TestVersionCacheOneVersion(t *testing.T) {
	c := cloudimage.NewVersionCache[string](100, 10)
	c.Put(1, "k", "v1", 1)
	if v, ok := c.Get(1, "k"); !ok || v != "v1" {
		t.Fatalf("Get(1, k) = %q, %v; want v1, true", v, ok)
	}
	// A newer version drops everything filed under older ones.
	if _, ok := c.Get(2, "k"); ok {
		t.Fatal("an entry of version 1 was found at version 2")
	}
	if c.Len() != 0 {
		t.Fatalf("%d entries kept after the version moved on", c.Len())
	}
	// What was computed under an older version is not kept.
	c.Put(1, "k", "stale", 1)
	if _, ok := c.Get(2, "k"); ok {
		t.Fatal("a value of version 1 was kept at version 2")
	}
	// Nor is it found by a caller still at the old version.
	c.Put(2, "k", "v2", 1)
	if _, ok := c.Get(1, "k"); ok {
		t.Fatal("a caller at version 1 found an entry of version 2")
	}
	if v, ok := c.Get(2, "k"); !ok || v != "v2" {
		t.Fatalf("Get(2, k) = %q, %v; want v2, true", v, ok)
	}
}

func TestVersionCacheBounds(t *testing.T) {
	c := cloudimage.NewVersionCache[[]byte](100, 30)
	if c.MaxCost() != 30 {
		t.Fatalf("MaxCost = %d, want 30", c.MaxCost())
	}
	c.Put(1, "big", make([]byte, 31), 31)
	if _, ok := c.Get(1, "big"); ok {
		t.Fatal("an entry above the largest cost was kept")
	}
	for i := range 50 {
		c.Put(1, strconv.Itoa(i), make([]byte, 10), 10)
		if n := c.Len(); n > 10 {
			t.Fatalf("after %d puts of 10: %d entries held, more than 100 in all", i+1, n)
		}
	}
	if _, ok := c.Get(1, "49"); !ok {
		t.Fatal("the entry put last was evicted")
	}
	// Replacing an entry does not count it twice.
	small := cloudimage.NewVersionCache[int](2, 2)
	for range 5 {
		small.Put(1, "k", 1, 1)
	}
	small.Put(1, "j", 2, 1)
	if _, ok := small.Get(1, "k"); !ok {
		t.Fatal("a replaced entry counted more than once")
	}
}

// versionFunc is a Versioner made of a function, a type == cannot compare.
type versionFunc func(context.Context) (uint64, error)

func (f versionFunc) Version(ctx context.Context) (uint64, error) { return f(ctx) }

// TestReadVersionMemo checks that under a memo a Versioner is asked once,
// that another one is asked for itself, and that one whose type cannot be
// compared is asked every time rather than making ReadVersion panic.
func TestReadVersionMemo(t *testing.T) {
	ctx := cloudimage.WithVersionMemo(context.Background())
	asked := 0
	counting := &countingVersioner{n: &asked}
	for range 3 {
		if v, err := cloudimage.ReadVersion(ctx, counting); err != nil || v != 1 {
			t.Fatalf("ReadVersion = %d, %v; want 1", v, err)
		}
	}
	if asked != 1 {
		t.Errorf("under one memo the versioner was asked %d times, want 1", asked)
	}
	other := versionFunc(func(context.Context) (uint64, error) { asked++; return 9, nil })
	for range 2 {
		if v, err := cloudimage.ReadVersion(ctx, other); err != nil || v != 9 {
			t.Fatalf("ReadVersion of another versioner = %d, %v; want its own 9", v, err)
		}
	}
	if asked != 3 {
		t.Errorf("the versioner that cannot be compared was asked %d times, want 2", asked-1)
	}
	fresh := cloudimage.WithVersionMemo(context.Background())
	for range 2 {
		if _, err := cloudimage.ReadVersion(fresh, other); err != nil {
			t.Fatal(err)
		}
	}
}

type countingVersioner struct{ n *int }

func (c *countingVersioner) Version(context.Context) (uint64, error) { *c.n++; return 1, nil }
