package cloudimage

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"time"
)

// A catalog is everything a metadata store holds that outlives a
// session: projects, users with their password hashes, role
// assignments, and images of every status (deleted ones included, so
// that their IDs are never used again) with their tags, properties and
// members. Tokens and leases are not part of it: they are short-lived,
// and a copied catalog starts without them.
//
// CatalogReader and CatalogWriter move a catalog from one store to
// another, IDs and times exactly as they are, so that a copy can be
// checked against its source and a copy that was interrupted can be run
// again.

// RoleAssignment is one role of a user in a project.
type RoleAssignment struct {
	UserID    string
	ProjectID string
	Role      Role
}

// Compare orders assignments by user, project and role, the order of
// CatalogReader.CatalogRoles: it returns -1, 0 or +1 as a sorts before,
// with or after b.
func (a RoleAssignment) Compare(b RoleAssignment) int {
	return cmp.Or(cmp.Compare(a.UserID, b.UserID), cmp.Compare(a.ProjectID, b.ProjectID),
		cmp.Compare(a.Role, b.Role))
}

// CatalogImage is an image with its members, as a catalog holds it.
type CatalogImage struct {
	Image   *Image
	Members []*Member // ordered by project ID
}

// CatalogReader enumerates a catalog in pages, each in a fixed order and
// strictly after a cursor, so that a copy can walk a large catalog in
// small steps and two catalogs can be compared by walking both. A page
// shorter than limit is the last. A limit that is not positive is
// EINVALID.
type CatalogReader interface {
	// CatalogProjects returns up to limit projects with IDs after after
	// ("" for the first page), by ID.
	CatalogProjects(ctx context.Context, after string, limit int) ([]*Project, error)

	// CatalogUsers returns up to limit users, password hashes included,
	// with IDs after after ("" for the first page), by ID.
	CatalogUsers(ctx context.Context, after string, limit int) ([]*User, error)

	// CatalogRoles returns up to limit role assignments after after (nil
	// for the first page), by user ID, project ID and role.
	CatalogRoles(ctx context.Context, after *RoleAssignment, limit int) ([]RoleAssignment, error)

	// CatalogImages returns up to limit images of every status, deleted
	// ones included, with IDs after after ("" for the first page), by
	// ID, each with its tags and members.
	CatalogImages(ctx context.Context, after string, limit int) ([]*CatalogImage, error)
}

// CatalogWriter stores what a CatalogReader gave, IDs and times as they
// are. Each method is idempotent: it reports whether it wrote anything,
// and storing what the store holds already, equal in every field, is no
// change and no error. Storing something whose ID (or unique name or
// appkey) the store holds with different data is ECONFLICT, with
// nothing written: a copy never overwrites.
type CatalogWriter interface {
	// ImportProject stores p.
	ImportProject(ctx context.Context, p *Project) (bool, error)

	// ImportUser stores u with its password hash.
	ImportUser(ctx context.Context, u *User) (bool, error)

	// ImportRole stores a role assignment; the user and the project must
	// be stored first (ENOTFOUND otherwise). Roles add up: an assignment
	// the store holds besides those imported is not a conflict.
	ImportRole(ctx context.Context, a RoleAssignment) (bool, error)

	// ImportImage stores an image with its tags and members in one
	// transaction; its owner must be stored first (ENOTFOUND otherwise).
	// An image the store holds already is equal only if its members are
	// too.
	ImportImage(ctx context.Context, img *CatalogImage) (bool, error)
}

// sameTime reports whether a and b are the same instant as stores keep
// it, to the microsecond.
func sameTime(a, b time.Time) bool {
	return a.UnixMicro() == b.UnixMicro()
}

func sameTimePtr(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return sameTime(*a, *b)
}

func sameInt64Ptr(a, b *int64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// diffField is one named comparison of a Diff.
type diffField struct {
	name string
	same bool
}

func field(name string, same bool) diffField { return diffField{name, same} }

// firstDiff returns the name of the first field that is not the same, or "".
func firstDiff(fields ...diffField) string {
	for _, f := range fields {
		if !f.same {
			return f.name
		}
	}
	return ""
}

// Diff returns the name of the first field in which p and o differ, or
// "" when they are the same project as a store keeps it.
func (p *Project) Diff(o *Project) string {
	return firstDiff(field("id", p.ID == o.ID), field("name", p.Name == o.Name),
		field("appkey", p.AppKey == o.AppKey), field("created_at", sameTime(p.CreatedAt, o.CreatedAt)))
}

// Diff returns the name of the first field in which u and o differ, or
// "" when they are the same user as a store keeps it.
func (u *User) Diff(o *User) string {
	return firstDiff(field("id", u.ID == o.ID), field("name", u.Name == o.Name),
		field("password_hash", u.PasswordHash == o.PasswordHash),
		field("created_at", sameTime(u.CreatedAt, o.CreatedAt)))
}

// Diff returns the name of the first field in which r and o differ
// ("members" for their members), or "" when they are the same image as a
// store keeps it: tags are a set, no properties and empty properties
// are the same, and times are compared to the microsecond.
func (r *CatalogImage) Diff(o *CatalogImage) string {
	a, b := r.Image, o.Image
	if d := firstDiff(
		field("id", a.ID == b.ID), field("name", a.Name == b.Name),
		field("status", a.Status == b.Status), field("visibility", a.Visibility == b.Visibility),
		field("protected", a.Protected == b.Protected), field("os_hidden", a.Hidden == b.Hidden),
		field("disk_format", a.DiskFormat == b.DiskFormat),
		field("container_format", a.ContainerFormat == b.ContainerFormat),
		field("min_disk", a.MinDisk == b.MinDisk), field("min_ram", a.MinRAM == b.MinRAM),
		field("size", sameInt64Ptr(a.Size, b.Size)),
		field("virtual_size", sameInt64Ptr(a.VirtualSize, b.VirtualSize)),
		field("checksum", a.Checksum == b.Checksum), field("os_hash_algo", a.HashAlgo == b.HashAlgo),
		field("os_hash_value", a.HashValue == b.HashValue), field("owner", a.Owner == b.Owner),
		field("tags", slices.Equal(sortedTags(a.Tags), sortedTags(b.Tags))),
		field("properties", maps.Equal(a.Properties, b.Properties)),
		field("created_at", sameTime(a.CreatedAt, b.CreatedAt)),
		field("updated_at", sameTime(a.UpdatedAt, b.UpdatedAt)),
		field("deleted_at", sameTimePtr(a.DeletedAt, b.DeletedAt)),
	); d != "" {
		return d
	}
	if !slices.EqualFunc(sortedMembers(r.Members), sortedMembers(o.Members), sameMember) {
		return "members"
	}
	return ""
}

func sortedTags(tags []string) []string {
	return slices.Sorted(slices.Values(tags))
}

func sortedMembers(ms []*Member) []*Member {
	return slices.SortedFunc(slices.Values(ms), func(a, b *Member) int {
		return cmp.Compare(a.ProjectID, b.ProjectID)
	})
}

func sameMember(a, b *Member) bool {
	return a.ImageID == b.ImageID && a.ProjectID == b.ProjectID && a.Status == b.Status &&
		sameTime(a.CreatedAt, b.CreatedAt) && sameTime(a.UpdatedAt, b.UpdatedAt)
}
