// Package sqlorder holds what the SQL metadata stores share of keyset
// pagination: the expression and the stored value each sort key orders
// by, the total order a list walks, and the condition of the rows after
// a marker, and which branches each view is made of. Both stores keep images in the same columns, with times in
// Unix microseconds, so none of it depends on the SQL dialect; only the
// placeholders differ, and the caller makes those.
package sqlorder

import (
	"slices"
	"strings"

	"github.com/cloudimage/cloudimage"
)

// Expr returns the SQL expression that key sorts by, its columns prefixed
// with prefix ("i." inside a list branch). An image without a size sorts
// as -1, before every image with data. Keys come only from this fixed
// list.
func Expr(key cloudimage.SortKey, prefix string) string {
	switch key {
	case cloudimage.SortSize:
		return "COALESCE(" + prefix + "size, -1)"
	case cloudimage.SortName, cloudimage.SortStatus, cloudimage.SortContainerFormat,
		cloudimage.SortDiskFormat, cloudimage.SortID, cloudimage.SortCreatedAt, cloudimage.SortUpdatedAt:
		return prefix + string(key)
	}
	panic("sqlorder: unknown sort key " + string(key))
}

// Value returns img's value of key as it is stored and as Expr sorts it.
func Value(img *cloudimage.Image, key cloudimage.SortKey) any {
	switch key {
	case cloudimage.SortName:
		return img.Name
	case cloudimage.SortStatus:
		return string(img.Status)
	case cloudimage.SortContainerFormat:
		return img.ContainerFormat
	case cloudimage.SortDiskFormat:
		return img.DiskFormat
	case cloudimage.SortSize:
		if img.Size == nil {
			return int64(-1)
		}
		return *img.Size
	case cloudimage.SortID:
		return img.ID
	case cloudimage.SortCreatedAt:
		return img.CreatedAt.UnixMicro()
	case cloudimage.SortUpdatedAt:
		return img.UpdatedAt.UnixMicro()
	}
	panic("sqlorder: unknown sort key " + string(key))
}

// Total checks sorts and makes the order total: empty means the default
// order, a repeated key adds nothing, and an order without id ends with
// it, in the direction of the last key.
func Total(sorts []cloudimage.Sort) ([]cloudimage.Sort, error) {
	if len(sorts) == 0 {
		return cloudimage.DefaultSort, nil
	}
	out := make([]cloudimage.Sort, 0, len(sorts)+1)
	for _, s := range sorts {
		if !s.Key.Valid() {
			return nil, cloudimage.Errorf(cloudimage.EINVALID, "Invalid sort key: %s", s.Key)
		}
		if !slices.ContainsFunc(out, func(o cloudimage.Sort) bool { return o.Key == s.Key }) {
			out = append(out, s)
		}
	}
	if !slices.ContainsFunc(out, func(o cloudimage.Sort) bool { return o.Key == cloudimage.SortID }) {
		out = append(out, cloudimage.Sort{Key: cloudimage.SortID, Desc: out[len(out)-1].Desc})
	}
	return out, nil
}

// Direction returns the SQL of a sort direction, with a leading space.
func Direction(desc bool) string {
	if desc {
		return " DESC"
	}
	return " ASC"
}

// After returns the condition of the rows of branch alias "i" strictly
// after marker in the total order sorts, binding the marker's values
// through arg, which returns the placeholder of the value it is given. A
// single direction is one row comparison, which an index in that order
// can seek to; mixed directions expand lexicographically.
func After(arg func(any) string, sorts []cloudimage.Sort, marker *cloudimage.Image) string {
	vals := make([]string, len(sorts))
	exprs := make([]string, len(sorts))
	mixed := false
	for i, s := range sorts {
		vals[i] = arg(Value(marker, s.Key))
		exprs[i] = Expr(s.Key, "i.")
		mixed = mixed || s.Desc != sorts[0].Desc
	}
	op := func(desc bool) string {
		if desc {
			return "<"
		}
		return ">"
	}
	if !mixed {
		return "(" + strings.Join(exprs, ", ") + ") " + op(sorts[0].Desc) + " (" + strings.Join(vals, ", ") + ")"
	}
	last := len(sorts) - 1
	cond := exprs[last] + " " + op(sorts[last].Desc) + " " + vals[last]
	for i := last - 1; i >= 0; i-- {
		o := op(sorts[i].Desc)
		cond = exprs[i] + " " + o + "= " + vals[i] +
			" AND (" + exprs[i] + " " + o + " " + vals[i] + " OR (" + cond + "))"
	}
	return "(" + cond + ")"
}

// OrderBy returns the ORDER BY list of sorts, columns prefixed with
// prefix.
func OrderBy(sorts []cloudimage.Sort, prefix string) string {
	terms := make([]string, len(sorts))
	for i, s := range sorts {
		terms[i] = Expr(s.Key, prefix) + Direction(s.Desc)
	}
	return strings.Join(terms, ", ")
}

// Branches are the parts a list's view is made of, each built by a store
// in its own SQL: the viewer's own images (all, or those of the given
// visibilities), the images of others or everyone of one visibility, and
// the images shared with the viewer.
type Branches struct {
	Own     func(vis ...cloudimage.Visibility)
	Visible func(v cloudimage.Visibility, othersOnly bool)
	Shared  func()
}

// View builds the branches of the view v, in the order the stores union
// them.
func View(v cloudimage.ListVisibility, b Branches) {
	switch v {
	case cloudimage.ListDefault, cloudimage.ListAll:
		b.Own()
		b.Visible(cloudimage.VisibilityPublic, true)
		if v == cloudimage.ListAll {
			b.Visible(cloudimage.VisibilityCommunity, true)
		}
		b.Shared()
	case cloudimage.ListPublic:
		b.Visible(cloudimage.VisibilityPublic, false)
	case cloudimage.ListCommunity:
		b.Visible(cloudimage.VisibilityCommunity, false)
	case cloudimage.ListShared:
		b.Own(cloudimage.VisibilityShared)
		b.Shared()
	case cloudimage.ListPrivate:
		b.Own(cloudimage.VisibilityPrivate)
	}
}
