package cloudimage_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
)

// allStatuses is every status the service knows, listed here rather than
// taken from the package so that a status added there without a test
// shows up as a failure of TestStatusValid.
var allStatuses = []cloudimage.Status{
	cloudimage.StatusQueued,
	cloudimage.StatusSaving,
	cloudimage.StatusUploading,
	cloudimage.StatusImporting,
	cloudimage.StatusActive,
	cloudimage.StatusKilled,
	cloudimage.StatusDeleted,
	cloudimage.StatusPendingDelete,
	cloudimage.StatusDeactivated,
}

// glanceTargets is Glance's valid_state_targets as the NHN digest (§4.1)
// gives it. The digest leaves out the two import statuses; their rows are
// upstream Glance's.
var glanceTargets = map[cloudimage.Status][]cloudimage.Status{
	"queued":         {"saving", "uploading", "importing", "active", "deleted"},
	"saving":         {"active", "killed", "deleted", "queued"},
	"uploading":      {"importing", "queued", "deleted"},
	"importing":      {"active", "deleted", "queued"},
	"active":         {"pending_delete", "deleted", "deactivated"},
	"killed":         {"deleted"},
	"pending_delete": {"deleted", "active"},
	"deactivated":    {"active", "deleted"},
	"deleted":        {},
}

func glanceAllows(from, to cloudimage.Status) bool {
	for _, t := range glanceTargets[from] {
		if t == to {
			return true
		}
	}
	return false
}

func TestStatusValid(t *testing.T) {
	for _, s := range allStatuses {
		if !s.Valid() {
			t.Errorf("Status(%q).Valid() = false, want true", s)
		}
		if _, ok := glanceTargets[s]; !ok {
			t.Errorf("status %q has no row in the expected table", s)
		}
	}
	for _, s := range []cloudimage.Status{"", "QUEUED", "Active", "gone", "active "} {
		if s.Valid() {
			t.Errorf("Status(%q).Valid() = true, want false", s)
		}
	}
}

func TestCanTransition(t *testing.T) {
	for _, from := range allStatuses {
		for _, to := range allStatuses {
			want := glanceAllows(from, to)
			if got := from.CanTransition(to); got != want {
				t.Errorf("%s -> %s: CanTransition = %v, want %v", from, to, got, want)
			}
		}
	}
}

func TestCanTransitionUnknown(t *testing.T) {
	for _, s := range allStatuses {
		if s.CanTransition("bogus") {
			t.Errorf("%s -> bogus: CanTransition = true, want false", s)
		}
		if cloudimage.Status("bogus").CanTransition(s) {
			t.Errorf("bogus -> %s: CanTransition = true, want false", s)
		}
		if cloudimage.Status("").CanTransition(s) {
			t.Errorf("\"\" -> %s: CanTransition = true, want false", s)
		}
	}
}

func TestSetStatus(t *testing.T) {
	created := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	earlier := created.Add(-time.Hour)
	at := created.Add(90 * time.Minute)

	for _, from := range allStatuses {
		for _, to := range allStatuses {
			for _, wasDeleted := range []bool{false, true} {
				name := fmt.Sprintf("%s->%s/deleted_at=%v", from, to, wasDeleted)
				t.Run(name, func(t *testing.T) {
					img := &cloudimage.Image{ID: "x", Status: from, CreatedAt: created, UpdatedAt: created}
					if wasDeleted {
						d := earlier
						img.DeletedAt = &d
					}
					err := img.SetStatus(to, at)
					if glanceAllows(from, to) {
						checkMoved(t, img, err, to, at)
					} else {
						checkRefused(t, img, err, from, created, wasDeleted, earlier)
					}
				})
			}
		}
	}
}

func checkMoved(t *testing.T, img *cloudimage.Image, err error, to cloudimage.Status, at time.Time) {
	t.Helper()
	if err != nil {
		t.Fatalf("SetStatus: got error %v, want nil", err)
	}
	if img.Status != to {
		t.Errorf("Status = %s, want %s", img.Status, to)
	}
	if !img.UpdatedAt.Equal(at) {
		t.Errorf("UpdatedAt = %v, want %v", img.UpdatedAt, at)
	}
	gone := to == cloudimage.StatusDeleted || to == cloudimage.StatusPendingDelete
	switch {
	case gone && img.DeletedAt == nil:
		t.Errorf("DeletedAt = nil, want %v", at)
	case gone && !img.DeletedAt.Equal(at):
		t.Errorf("DeletedAt = %v, want %v", *img.DeletedAt, at)
	case !gone && img.DeletedAt != nil:
		t.Errorf("DeletedAt = %v, want nil", *img.DeletedAt)
	}
	if img.Deleted() != gone {
		t.Errorf("Deleted() = %v, want %v", img.Deleted(), gone)
	}
}

func checkRefused(t *testing.T, img *cloudimage.Image, err error, from cloudimage.Status,
	updated time.Time, wasDeleted bool, deletedAt time.Time) {
	t.Helper()
	if got := cloudimage.ErrorCode(err); got != cloudimage.ECONFLICT {
		t.Fatalf("SetStatus: got code %q (err %v), want %q", got, err, cloudimage.ECONFLICT)
	}
	if img.Status != from {
		t.Errorf("Status = %s after a refused change, want %s", img.Status, from)
	}
	if !img.UpdatedAt.Equal(updated) {
		t.Errorf("UpdatedAt = %v after a refused change, want %v", img.UpdatedAt, updated)
	}
	switch {
	case wasDeleted && (img.DeletedAt == nil || !img.DeletedAt.Equal(deletedAt)):
		t.Errorf("DeletedAt = %v after a refused change, want %v", img.DeletedAt, deletedAt)
	case !wasDeleted && img.DeletedAt != nil:
		t.Errorf("DeletedAt = %v after a refused change, want nil", *img.DeletedAt)
	}
}

// TestSetStatusDeletedAtNotShared checks that the DeletedAt an image gets
// is its own: changing the time passed in afterwards must not move it.
func TestSetStatusDeletedAtNotShared(t *testing.T) {
	at := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	a := &cloudimage.Image{Status: cloudimage.StatusActive}
	b := &cloudimage.Image{Status: cloudimage.StatusActive}
	if err := a.SetStatus(cloudimage.StatusDeleted, at); err != nil {
		t.Fatal(err)
	}
	if err := b.SetStatus(cloudimage.StatusPendingDelete, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !a.DeletedAt.Equal(at) {
		t.Errorf("a.DeletedAt = %v, want %v", *a.DeletedAt, at)
	}
	if a.DeletedAt == b.DeletedAt {
		t.Errorf("two images share one DeletedAt pointer")
	}
}

func TestLifecycle(t *testing.T) {
	// The paths the digest calls practical: upload, failed upload that is
	// retried, delete, and deactivate/reactivate.
	paths := [][]cloudimage.Status{
		{"queued", "saving", "active", "deleted"},
		{"queued", "saving", "queued", "saving", "active"},
		{"queued", "saving", "killed", "deleted"},
		{"queued", "deleted"},
		{"queued", "active", "deactivated", "active", "pending_delete", "deleted"},
		{"queued", "uploading", "importing", "active"},
	}
	for _, path := range paths {
		img := &cloudimage.Image{Status: path[0]}
		now := time.Unix(0, 0).UTC()
		for _, to := range path[1:] {
			now = now.Add(time.Second)
			if err := img.SetStatus(to, now); err != nil {
				t.Errorf("path %v: %s -> %s: got %v, want nil", path, img.Status, to, err)
				break
			}
		}
	}
}
