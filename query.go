package cloudimage

import (
	"slices"
	"time"
)

// SortKey is an image attribute that lists can be ordered by.
type SortKey string

// The sortable attributes, as in Glance.
const (
	SortName            SortKey = "name"
	SortStatus          SortKey = "status"
	SortContainerFormat SortKey = "container_format"
	SortDiskFormat      SortKey = "disk_format"
	SortSize            SortKey = "size"
	SortID              SortKey = "id"
	SortCreatedAt       SortKey = "created_at"
	SortUpdatedAt       SortKey = "updated_at"
)

// SortKeys lists every SortKey.
var SortKeys = []SortKey{
	SortName, SortStatus, SortContainerFormat, SortDiskFormat, SortSize, SortID, SortCreatedAt, SortUpdatedAt,
}

// Valid reports whether k is a sortable attribute.
func (k SortKey) Valid() bool {
	return slices.Contains(SortKeys, k)
}

// Sort is one key of a list's order. An image without data sorts as if
// its size were -1: first in ascending order, last in descending.
type Sort struct {
	Key  SortKey
	Desc bool
}

// DefaultSort is the order of a list that asks for none: newest first.
var DefaultSort = []Sort{{Key: SortCreatedAt, Desc: true}, {Key: SortID, Desc: true}}

// CompleteSort returns sorts with the tie-breakers Glance appends: every
// order ends with created_at and then id, unless it has them already, in
// the direction of the only direction given (descending when there were
// several). A complete order is total, which keyset pagination needs.
func CompleteSort(sorts []Sort, tieDesc bool) []Sort {
	if len(sorts) == 0 {
		return slices.Clone(DefaultSort)
	}
	out := slices.Clone(sorts)
	for _, k := range []SortKey{SortCreatedAt, SortID} {
		if !slices.ContainsFunc(out, func(s Sort) bool { return s.Key == k }) {
			out = append(out, Sort{Key: k, Desc: tieDesc})
		}
	}
	return out
}

// CompareOp compares a time attribute with a value.
type CompareOp string

// The comparison operators of Glance's time filters.
const (
	OpEq  CompareOp = "eq"
	OpNeq CompareOp = "neq"
	OpGt  CompareOp = "gt"
	OpGte CompareOp = "gte"
	OpLt  CompareOp = "lt"
	OpLte CompareOp = "lte"
)

// Valid reports whether op is a known operator.
func (op CompareOp) Valid() bool {
	switch op {
	case OpEq, OpNeq, OpGt, OpGte, OpLt, OpLte:
		return true
	}
	return false
}

// TimeFilter keeps the images whose time attribute compares with Time as
// Op says: {OpGt, t} keeps those after t.
type TimeFilter struct {
	Op   CompareOp
	Time time.Time
}

// Match reports whether t passes the filter.
func (f TimeFilter) Match(t time.Time) bool {
	switch f.Op {
	case OpEq:
		return t.Equal(f.Time)
	case OpNeq:
		return !t.Equal(f.Time)
	case OpGt:
		return t.After(f.Time)
	case OpGte:
		return !t.Before(f.Time)
	case OpLt:
		return t.Before(f.Time)
	case OpLte:
		return !t.After(f.Time)
	}
	return false
}

// ImageFilter narrows a list. Every field that is set must match; a list
// field matches when the attribute equals any of its values (Glance's
// "in:" operator), except Tags, of which an image must carry all.
type ImageFilter struct {
	IDs              []string
	Names            []string
	Statuses         []Status // empty: every status but killed
	ContainerFormats []string
	DiskFormats      []string
	Owner            string
	SizeMin, SizeMax *int64 // bytes, inclusive; an image without data matches neither
	Protected        *bool
	Hidden           *bool // nil: only images that are not os_hidden
	Tags             []string
	CreatedAt        []TimeFilter
	UpdatedAt        []TimeFilter
	Properties       map[string]string // each must be an extra property with that value
}

// ListVisibility selects which of the images a project may see a list
// shows. The empty value is the default view.
type ListVisibility string

// The views of a list, as Glance's visibility filter names them.
const (
	// ListDefault: the project's own images, public images, and images
	// shared with the project whose membership matches the member status.
	ListDefault ListVisibility = ""
	// ListAll: the default view and community images too.
	ListAll       ListVisibility = "all"
	ListPublic    ListVisibility = "public"    // public images only
	ListCommunity ListVisibility = "community" // community images only
	ListShared    ListVisibility = "shared"    // own shared images and those shared with the project
	ListPrivate   ListVisibility = "private"   // own private images only
)

// Valid reports whether v is a known view.
func (v ListVisibility) Valid() bool {
	switch v {
	case ListDefault, ListAll, ListPublic, ListCommunity, ListShared, ListPrivate:
		return true
	}
	return false
}

// ImageQuery selects a page of images for one project's view. Deleted
// images are never listed.
type ImageQuery struct {
	Viewer       string         // project ID whose view this is
	Visibility   ListVisibility // which part of the view
	MemberStatus MemberStatus   // of images shared with Viewer; empty means accepted, MemberAny any
	Filter       ImageFilter
	Sort         []Sort // complete (see CompleteSort); empty means DefaultSort
	After        *Image // the marker: the page starts strictly after it; nil for the first page
	Limit        int    // at most this many; must be positive
	Tags         bool   // load each image's tags too
}
