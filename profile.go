package cloudimage

import (
	"fmt"
	"slices"
)

// Profile is a set of API rules. The catalog is the same under every
// profile; what callers may do with it differs between NHN Cloud and
// upstream OpenStack Glance.
type Profile struct {
	Name string

	// RequireOSType makes os_type a required property on create, with one
	// of OSTypes as its value.
	RequireOSType bool

	// OwnerVisibilities are the visibilities a non-admin may give an image.
	// Admins may give any.
	OwnerVisibilities []Visibility

	// ReservedTagPrefix starts the tags only admins may set; empty when
	// every tag is the owner's.
	ReservedTagPrefix string

	// DownloadProperty, when set, names the property that must be "true"
	// for an image's data to be downloaded.
	DownloadProperty string

	// DefaultLimit and MaxLimit are the page size of a v2 list that asks
	// for none, and the most a list returns whatever it asks for.
	DefaultLimit, MaxLimit int
}

// OSTypes are the values of os_type that the nhn profile accepts.
var OSTypes = []string{"linux", "windows"}

// ProfileNHN is NHN Cloud's rules (digest §5): os_type required, only
// private and shared for users, '_' tags reserved, download only when the
// image allows it, pages of 100.
var ProfileNHN = Profile{
	Name:              "nhn",
	RequireOSType:     true,
	OwnerVisibilities: []Visibility{VisibilityPrivate, VisibilityShared},
	ReservedTagPrefix: "_",
	DownloadProperty:  "nhncloud_allow_download",
	DefaultLimit:      100,
	MaxLimit:          1000,
}

// ProfileOpenStack is upstream Glance's rules: owners may make images
// community but not public, and pages are 25 by default.
var ProfileOpenStack = Profile{
	Name:              "openstack",
	OwnerVisibilities: []Visibility{VisibilityPrivate, VisibilityShared, VisibilityCommunity},
	DefaultLimit:      25,
	MaxLimit:          1000,
}

// Profiles lists the built-in profiles, the default first.
var Profiles = []Profile{ProfileNHN, ProfileOpenStack}

// ProfileByName returns the built-in profile called name.
func ProfileByName(name string) (Profile, error) {
	i := slices.IndexFunc(Profiles, func(p Profile) bool { return p.Name == name })
	if i < 0 {
		return Profile{}, fmt.Errorf("unknown profile %q: use nhn or openstack", name)
	}
	return Profiles[i], nil
}
