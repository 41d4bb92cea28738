package cloudimage_test

import (
	"slices"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
)

func catalogImage() *cloudimage.CatalogImage {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 123456000, time.UTC)
	size, vsize := int64(10), int64(20)
	deleted := t0.Add(time.Hour)
	return &cloudimage.CatalogImage{
		Image: &cloudimage.Image{
			ID: "id", Name: "n", Status: cloudimage.StatusPendingDelete, Visibility: cloudimage.VisibilityShared,
			DiskFormat: "raw", ContainerFormat: "bare", MinDisk: 1, MinRAM: 2, Size: &size, VirtualSize: &vsize,
			Checksum: "md5", HashAlgo: "sha512", HashValue: "sha", Owner: "p", Tags: []string{"b", "a"},
			Properties: map[string]string{"k": "v"}, CreatedAt: t0, UpdatedAt: t0, DeletedAt: &deleted,
		},
		Members: []*cloudimage.Member{
			{ImageID: "id", ProjectID: "m2", Status: cloudimage.MemberAccepted, CreatedAt: t0, UpdatedAt: t0},
			{ImageID: "id", ProjectID: "m1", Status: cloudimage.MemberPending, CreatedAt: t0, UpdatedAt: t0},
		},
	}
}

// TestCatalogImageDiff changes one field at a time and expects Diff to
// name it, and finds the same image the same however its tags and
// members are ordered and its times rounded below the microsecond.
func TestCatalogImageDiff(t *testing.T) {
	base := catalogImage()
	same := catalogImage()
	slices.Reverse(same.Image.Tags)
	slices.Reverse(same.Members)
	same.Image.CreatedAt = same.Image.CreatedAt.Add(999 * time.Nanosecond)
	if d := base.Diff(same); d != "" {
		t.Fatalf("reordered tags and members and a sub-microsecond time: %s differs", d)
	}
	noProps := catalogImage()
	noProps.Image.Properties, noProps.Image.Tags = nil, nil
	empty := catalogImage()
	empty.Image.Properties, empty.Image.Tags = map[string]string{}, []string{}
	if d := noProps.Diff(empty); d != "" {
		t.Fatalf("nil and empty properties and tags: %s differs", d)
	}

	one := int64(1)
	for want, change := range map[string]func(r *cloudimage.CatalogImage){
		"id":               func(r *cloudimage.CatalogImage) { r.Image.ID = "other" },
		"name":             func(r *cloudimage.CatalogImage) { r.Image.Name = "other" },
		"status":           func(r *cloudimage.CatalogImage) { r.Image.Status = cloudimage.StatusDeleted },
		"visibility":       func(r *cloudimage.CatalogImage) { r.Image.Visibility = cloudimage.VisibilityPrivate },
		"protected":        func(r *cloudimage.CatalogImage) { r.Image.Protected = true },
		"os_hidden":        func(r *cloudimage.CatalogImage) { r.Image.Hidden = true },
		"disk_format":      func(r *cloudimage.CatalogImage) { r.Image.DiskFormat = "qcow2" },
		"container_format": func(r *cloudimage.CatalogImage) { r.Image.ContainerFormat = "ovf" },
		"min_disk":         func(r *cloudimage.CatalogImage) { r.Image.MinDisk = 9 },
		"min_ram":          func(r *cloudimage.CatalogImage) { r.Image.MinRAM = 9 },
		"size":             func(r *cloudimage.CatalogImage) { r.Image.Size = &one },
		"virtual_size":     func(r *cloudimage.CatalogImage) { r.Image.VirtualSize = nil },
		"checksum":         func(r *cloudimage.CatalogImage) { r.Image.Checksum = "x" },
		"os_hash_algo":     func(r *cloudimage.CatalogImage) { r.Image.HashAlgo = "" },
		"os_hash_value":    func(r *cloudimage.CatalogImage) { r.Image.HashValue = "x" },
		"owner":            func(r *cloudimage.CatalogImage) { r.Image.Owner = "q" },
		"tags":             func(r *cloudimage.CatalogImage) { r.Image.Tags = []string{"a"} },
		"properties":       func(r *cloudimage.CatalogImage) { r.Image.Properties["k"] = "w" },
		"created_at":       func(r *cloudimage.CatalogImage) { r.Image.CreatedAt = base.Image.CreatedAt.Add(time.Microsecond) },
		"updated_at":       func(r *cloudimage.CatalogImage) { r.Image.UpdatedAt = time.Time{} },
		"deleted_at":       func(r *cloudimage.CatalogImage) { r.Image.DeletedAt = nil },
		"members":          func(r *cloudimage.CatalogImage) { r.Members[0].Status = cloudimage.MemberRejected },
	} {
		r := catalogImage()
		change(r)
		if got := base.Diff(r); got != want {
			t.Errorf("changed %s: Diff says %q", want, got)
		}
		if got := r.Diff(base); got != want {
			t.Errorf("changed %s, the other way round: Diff says %q", want, got)
		}
	}
}

func TestProjectAndUserDiff(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	p := cloudimage.Project{ID: "i", Name: "n", AppKey: "k", CreatedAt: t0}
	for want, q := range map[string]cloudimage.Project{
		"":           {ID: "i", Name: "n", AppKey: "k", CreatedAt: t0.Add(time.Nanosecond)},
		"id":         {ID: "j", Name: "n", AppKey: "k", CreatedAt: t0},
		"name":       {ID: "i", Name: "m", AppKey: "k", CreatedAt: t0},
		"appkey":     {ID: "i", Name: "n", AppKey: "l", CreatedAt: t0},
		"created_at": {ID: "i", Name: "n", AppKey: "k", CreatedAt: t0.Add(time.Microsecond)},
	} {
		if got := p.Diff(&q); got != want {
			t.Errorf("project %+v: Diff says %q, want %q", q, got, want)
		}
	}
	u := cloudimage.User{ID: "i", Name: "n", PasswordHash: "h", CreatedAt: t0}
	for want, v := range map[string]cloudimage.User{
		"":              u,
		"name":          {ID: "i", Name: "m", PasswordHash: "h", CreatedAt: t0},
		"password_hash": {ID: "i", Name: "n", PasswordHash: "g", CreatedAt: t0},
		"created_at":    {ID: "i", Name: "n", PasswordHash: "h"},
	} {
		if got := u.Diff(&v); got != want {
			t.Errorf("user %+v: Diff says %q, want %q", v, got, want)
		}
	}
}

func TestRoleAssignmentCompare(t *testing.T) {
	a := cloudimage.RoleAssignment{UserID: "u1", ProjectID: "p2", Role: cloudimage.RoleAdmin}
	for _, tc := range []struct {
		b    cloudimage.RoleAssignment
		want int
	}{
		{a, 0},
		{cloudimage.RoleAssignment{UserID: "u2", ProjectID: "p1", Role: cloudimage.RoleAdmin}, -1},
		{cloudimage.RoleAssignment{UserID: "u1", ProjectID: "p1", Role: cloudimage.RoleReader}, 1},
		{cloudimage.RoleAssignment{UserID: "u1", ProjectID: "p2", Role: cloudimage.RoleMember}, -1},
	} {
		if got := a.Compare(tc.b); got != tc.want {
			t.Errorf("%+v compared with %+v: %d, want %d", a, tc.b, got, tc.want)
		}
	}
}
