package cloudimage

import (
	"context"
	"io"
	"iter"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Visibility says who besides the owner may see an image.
type Visibility string

// The visibilities of Glance's v2 API.
const (
	VisibilityPublic    Visibility = "public"    // every project
	VisibilityCommunity Visibility = "community" // every project that asks for it
	VisibilityShared    Visibility = "shared"    // the owner and accepted members
	VisibilityPrivate   Visibility = "private"   // the owner only
)

// Valid reports whether v is a known visibility.
func (v Visibility) Valid() bool {
	switch v {
	case VisibilityPublic, VisibilityCommunity, VisibilityShared, VisibilityPrivate:
		return true
	}
	return false
}

// DiskFormats are the disk formats an image may declare, as in Glance's
// default configuration and the NHN Cloud v1.0 guide.
var DiskFormats = []string{"ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "ploop", "iso"}

// ContainerFormats are the container formats an image may declare.
var ContainerFormats = []string{"ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"}

// Limits on image metadata, as in Glance's schema. Lengths are in
// characters, not bytes.
const (
	MaxNameLength          = 255
	MaxTagLength           = 255
	MaxPropertyKeyLength   = 255
	MaxPropertyValueLength = 65535
	MaxTags                = 128
	MaxProperties          = 128
)

// Image is an image's metadata. Data lives in the blob store under the
// image's ID once the image is active.
type Image struct {
	ID              string
	Name            string
	Status          Status
	Visibility      Visibility
	Protected       bool
	Hidden          bool // os_hidden: left out of default lists
	DiskFormat      string
	ContainerFormat string
	MinDisk         int // GB
	MinRAM          int // MB
	Size            *int64
	VirtualSize     *int64
	Checksum        string // md5 hex of the data
	HashAlgo        string // "sha512" once data is present
	HashValue       string
	Owner           string // project ID
	Tags            []string
	Properties      map[string]string
	CreatedAt       time.Time
	UpdatedAt       time.Time
	DeletedAt       *time.Time // set once the image is deleted or pending_delete
}

// Deleted reports whether the image is gone for every caller: deleted, or
// waiting for its data to be scrubbed.
func (img *Image) Deleted() bool {
	return img.DeletedAt != nil
}

// SetStatus moves the image to status to, or returns ECONFLICT when the
// status machine does not allow it. It is the only place a status changes.
func (img *Image) SetStatus(to Status, now time.Time) error {
	if !img.Status.CanTransition(to) {
		return Errorf(ECONFLICT, "Image status transition from %s to %s is not allowed", img.Status, to)
	}
	img.Status = to
	img.UpdatedAt = now
	if to == StatusDeleted || to == StatusPendingDelete {
		img.DeletedAt = &now
	} else {
		img.DeletedAt = nil
	}
	return nil
}

// validText reports whether s can be kept and shown back exactly as
// given: UTF-8, with no control characters. Names, tags, property names
// and values, and member IDs must be; JSON bodies are checked as a whole
// when they are read, but path segments are not.
func validText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r'
	})
}

// HasTag reports whether the image carries tag.
func (img *Image) HasTag(tag string) bool {
	return slices.Contains(img.Tags, tag)
}

// ImageStore persists image metadata. It knows storage, not rules: the
// ImageService decides what a caller may do. Lookups of a missing image
// return ENOTFOUND; creating an image whose ID exists returns ECONFLICT.
type ImageStore interface {
	// CreateImage inserts img.
	CreateImage(ctx context.Context, img *Image) error

	// Image returns the image with the given ID, deleted or not.
	Image(ctx context.Context, id string) (*Image, error)

	// UpdateImage reads the image, calls fn on it and, if fn returns nil,
	// writes the image back, all in one transaction. It returns the image
	// as written, or fn's error with nothing written.
	UpdateImage(ctx context.Context, id string, fn func(*Image) error) (*Image, error)

	// ListImages returns one page of a project's view: the images q
	// selects, in q's order, strictly after q.After.
	ListImages(ctx context.Context, q ImageQuery) ([]*Image, error)

	// ImagesInStatus returns up to limit images in the given status, of
	// every project, oldest first.
	ImagesInStatus(ctx context.Context, status Status, limit int) ([]*Image, error)

	// ProjectUsage returns how many of the project's images are not
	// deleted (pending_delete counts as deleted) and the sum of their
	// sizes, which includes data staged for an import.
	ProjectUsage(ctx context.Context, project string) (images int, bytes int64, err error)

	// CreateImageWithin inserts img as CreateImage does, in one
	// transaction with a check of its owner's usage (see ProjectUsage)
	// against q: if the owner would be over q, it returns ETOOLARGE and
	// writes nothing.
	CreateImageWithin(ctx context.Context, img *Image, q Quotas) error

	// UpdateImageWithin is UpdateImage with the same check of the
	// image owner's usage, as fn leaves it, against q.
	UpdateImageWithin(ctx context.Context, id string, q Quotas, fn func(*Image) error) (*Image, error)

	// ImagesPendingDeleteBefore returns up to limit images, of every
	// project, that are pending_delete and were deleted at or before t,
	// the longest deleted first: the scrubber's work.
	ImagesPendingDeleteBefore(ctx context.Context, t time.Time, limit int) ([]*Image, error)

	// AddMember adds m to its image, in one transaction with the count of
	// the image's members: an image with max members already is
	// ETOOLARGE. A member the image has already is ECONFLICT; an unknown
	// image is ENOTFOUND.
	AddMember(ctx context.Context, m *Member, max int) error

	// Member returns the membership of project in the image.
	Member(ctx context.Context, imageID, project string) (*Member, error)

	// Members returns the image's members, ordered by project ID.
	Members(ctx context.Context, imageID string) ([]*Member, error)

	// UpdateMember reads a membership, calls fn on it and, if fn returns
	// nil, writes it back, all in one transaction.
	UpdateMember(ctx context.Context, imageID, project string, fn func(*Member) error) (*Member, error)

	// DeleteMember removes project from the image's members.
	DeleteMember(ctx context.Context, imageID, project string) error
}

// BlobStore streams image data in and out. Keys are image IDs. A missing
// key is ENOTFOUND on every implementation.
type BlobStore interface {
	// Put stores all of r under key and returns the number of bytes. The
	// data becomes visible under key only once it is complete and durable;
	// on any error nothing is left behind.
	Put(ctx context.Context, key string, r io.Reader) (int64, error)

	// Open returns the data stored under key.
	Open(ctx context.Context, key string) (io.ReadSeekCloser, error)

	// Delete removes the data stored under key.
	Delete(ctx context.Context, key string) error

	// List yields every complete blob, in no particular order; data of a
	// Put still in progress is not listed. The caller may delete what it
	// is given while the listing goes on. An error ends the sequence.
	List(ctx context.Context) iter.Seq2[BlobInfo, error]
}

// BlobInfo describes one stored blob.
type BlobInfo struct {
	Key     string
	Size    int64
	ModTime time.Time // when its data was last written
}
