package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
)

// testImagesPendingDeleteBefore checks the scrubber's query: only
// pending_delete images deleted at or before the bound, of every project,
// the longest deleted first, at most limit.
func testImagesPendingDeleteBefore(t *testing.T, s MetadataStore) {
	ctx := context.Background()
	a, b := mustProject(t, s, "a"), mustProject(t, s, "b")
	bound := base.Add(time.Hour)
	var due []*cloudimage.Image
	// Deleted in the reverse of creation order, so that an order by
	// creation would be caught.
	for i, tc := range []struct {
		status  cloudimage.Status
		deleted time.Duration // after base; 0 for not deleted
		due     bool
	}{
		{cloudimage.StatusPendingDelete, 50 * time.Minute, true},
		{cloudimage.StatusPendingDelete, time.Hour, true}, // exactly at the bound
		{cloudimage.StatusPendingDelete, time.Hour + time.Microsecond, false},
		{cloudimage.StatusDeleted, 10 * time.Minute, false},
		{cloudimage.StatusActive, 0, false},
		{cloudimage.StatusPendingDelete, 20 * time.Minute, true},
		{cloudimage.StatusPendingDelete, 10 * time.Minute, true},
	} {
		owner := a.ID
		if i%2 == 1 {
			owner = b.ID
		}
		img := newImage(owner, base.Add(time.Duration(i)*time.Second))
		img.Status = tc.status
		if tc.deleted != 0 {
			at := base.Add(tc.deleted)
			img.DeletedAt = &at
		}
		mustCreate(t, s, img)
		if tc.due {
			due = append(due, img)
		}
	}
	slices.SortFunc(due, func(x, y *cloudimage.Image) int { return x.DeletedAt.Compare(*y.DeletedAt) })

	got, err := s.ImagesPendingDeleteBefore(ctx, bound, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), ids(due)) {
		t.Fatalf("due images:\n got %v\nwant %v", ids(got), ids(due))
	}
	got, err = s.ImagesPendingDeleteBefore(ctx, bound, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), ids(due[:2])) {
		t.Fatalf("first two due images:\n got %v\nwant %v", ids(got), ids(due[:2]))
	}
	if got, err := s.ImagesPendingDeleteBefore(ctx, base, 100); err != nil || len(got) != 0 {
		t.Fatalf("before any delete: got %v, %v; want none", ids(got), err)
	}
}
