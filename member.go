package cloudimage

import "time"

// MemberStatus is where a project stands on an image shared with it.
type MemberStatus string

// The member statuses of Glance.
const (
	MemberPending  MemberStatus = "pending"  // shared, not yet answered: usable, not listed
	MemberAccepted MemberStatus = "accepted" // listed among the project's images
	MemberRejected MemberStatus = "rejected" // declined: usable by ID, not listed
	// MemberAny is only a list filter: images shared with the project,
	// whatever their membership's status.
	MemberAny MemberStatus = "all"
)

// Valid reports whether s is a status a membership may have.
func (s MemberStatus) Valid() bool {
	return s == MemberPending || s == MemberAccepted || s == MemberRejected
}

// MaxMembers is how many projects one image may be shared with (Glance's
// image_member_quota).
const MaxMembers = 128

// Member is a project an image is shared with.
type Member struct {
	ImageID   string
	ProjectID string // the member, a tenant ID
	Status    MemberStatus
	CreatedAt time.Time
	UpdatedAt time.Time
}
