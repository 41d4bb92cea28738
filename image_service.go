package cloudimage

import (
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"iter"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// listChunk is how many images one store query fetches while a list is
// streamed: memory stays bounded by it whatever the list's length.
const listChunk = 500

// ImageService carries the rules of the catalog: who may see and change an
// image, how an upload becomes active, and what a delete does. Every API
// face calls it, so they cannot disagree.
type ImageService struct {
	images ImageStore
	blobs  BlobStore
	logger *slog.Logger
	now    func() time.Time
}

// NewImageService returns a service over the given stores.
func NewImageService(images ImageStore, blobs BlobStore, logger *slog.Logger) *ImageService {
	return &ImageService{images: images, blobs: blobs, logger: logger, now: now}
}

// now is the service clock: UTC with the microsecond precision the stores
// keep, so that what is returned equals what is read back later.
func now() time.Time {
	return time.Now().UTC().Truncate(time.Microsecond)
}

// ImageCreate is what a caller may set when creating an image.
type ImageCreate struct {
	ID              string // optional; a UUID
	Name            string
	DiskFormat      string
	ContainerFormat string
	MinDisk         int
	MinRAM          int
	Protected       bool
	Hidden          bool
	Visibility      Visibility // default shared, as in Glance
	Tags            []string
	Properties      map[string]string
}

// ReservedProperties are attribute names that may not be used as extra
// properties: they are the image's own attributes or Glance's.
var ReservedProperties = []string{
	"id", "name", "status", "visibility", "protected", "os_hidden", "disk_format",
	"container_format", "min_disk", "min_ram", "size", "virtual_size", "checksum",
	"os_hash_algo", "os_hash_value", "owner", "tags", "created_at", "updated_at",
	"deleted", "deleted_at", "self", "file", "schema", "location", "locations",
	"direct_url", "is_public", "properties",
}

// Create creates an empty, queued image owned by the caller's project.
func (s *ImageService) Create(ctx context.Context, c *Caller, in ImageCreate) (*Image, error) {
	if !c.CanWrite() {
		return nil, Errorf(EFORBIDDEN, "You are not authorized to create images.")
	}
	if in.Visibility == "" {
		in.Visibility = VisibilityShared
	}
	if err := validateCreate(c, &in); err != nil {
		return nil, err
	}
	if in.ID == "" {
		in.ID = uuid.NewString()
	}
	t := s.now()
	img := &Image{
		ID:              in.ID,
		Name:            in.Name,
		Status:          StatusQueued,
		Visibility:      in.Visibility,
		Protected:       in.Protected,
		Hidden:          in.Hidden,
		DiskFormat:      in.DiskFormat,
		ContainerFormat: in.ContainerFormat,
		MinDisk:         in.MinDisk,
		MinRAM:          in.MinRAM,
		Owner:           c.ProjectID,
		Tags:            in.Tags,
		Properties:      in.Properties,
		CreatedAt:       t,
		UpdatedAt:       t,
	}
	if img.Properties == nil {
		img.Properties = map[string]string{}
	}
	if err := s.images.CreateImage(ctx, img); err != nil {
		return nil, err
	}
	return img, nil
}

func validateCreate(c *Caller, in *ImageCreate) error {
	if in.ID != "" {
		id, err := ParseID(in.ID)
		if err != nil {
			return err
		}
		in.ID = id
	}
	if len(in.Name) > MaxNameLength {
		return Errorf(EINVALID, "name must be at most %d characters", MaxNameLength)
	}
	if in.DiskFormat != "" && !slices.Contains(DiskFormats, in.DiskFormat) {
		return Errorf(EINVALID, "disk_format %q is not one of: %s", in.DiskFormat, strings.Join(DiskFormats, ", "))
	}
	if in.ContainerFormat != "" && !slices.Contains(ContainerFormats, in.ContainerFormat) {
		return Errorf(EINVALID, "container_format %q is not one of: %s",
			in.ContainerFormat, strings.Join(ContainerFormats, ", "))
	}
	if in.MinDisk < 0 || in.MinRAM < 0 {
		return Errorf(EINVALID, "min_disk and min_ram must not be negative")
	}
	if !in.Visibility.Valid() {
		return Errorf(EINVALID, "Invalid visibility value: %s", in.Visibility)
	}
	if in.Visibility == VisibilityPublic && !c.IsAdmin() {
		return Errorf(EFORBIDDEN, "You are not authorized to publicize images.")
	}
	// NHN Cloud offers no community images (digest §7 #29).
	// TODO(#3): the openstack profile lets owners set community, as Glance does.
	if in.Visibility == VisibilityCommunity && !c.IsAdmin() {
		return Errorf(EFORBIDDEN, "You are not authorized to set visibility to community.")
	}
	tags, err := normalizeTags(in.Tags)
	if err != nil {
		return err
	}
	// Tags starting with "_" are the operator's, such as _AVAILABLE_
	// (digest §7 #31).
	for _, t := range tags {
		if strings.HasPrefix(t, "_") && !c.IsAdmin() {
			return Errorf(EINVALID, "Tag %q is reserved: tags starting with '_' are set by the operator.", t)
		}
	}
	in.Tags = tags
	return validateProperties(in.Properties)
}

// normalizeTags checks tags and drops duplicates: an image's tags are a set.
func normalizeTags(tags []string) ([]string, error) {
	if len(tags) > MaxTags {
		return nil, Errorf(ETOOLARGE, "an image may have at most %d tags", MaxTags)
	}
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		if t == "" || len(t) > MaxTagLength {
			return nil, Errorf(EINVALID, "a tag must be 1 to %d characters", MaxTagLength)
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	// Sorted, as the stores return them, so that what Create returns is
	// what a later Get reads.
	slices.Sort(out)
	return out, nil
}

func validateProperties(props map[string]string) error {
	if len(props) > MaxProperties {
		return Errorf(ETOOLARGE, "an image may have at most %d extra properties", MaxProperties)
	}
	for _, k := range slices.Sorted(maps.Keys(props)) {
		if k == "" || len(k) > MaxPropertyKeyLength {
			return Errorf(EINVALID, "a property name must be 1 to %d characters", MaxPropertyKeyLength)
		} else if slices.Contains(ReservedProperties, k) {
			return Errorf(EFORBIDDEN, "Attribute '%s' is reserved.", k)
		} else if len(props[k]) > MaxPropertyValueLength {
			return Errorf(EINVALID, "property %q must be at most %d characters", k, MaxPropertyValueLength)
		}
	}
	return nil
}

// ParseID returns id in canonical form if it is a UUID, and EINVALID if not.
func ParseID(id string) (string, error) {
	if len(id) != 36 {
		return "", Errorf(EINVALID, "%q is not a valid image ID", id)
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return "", Errorf(EINVALID, "%q is not a valid image ID", id)
	}
	return u.String(), nil
}

// visible reports whether c may see img (ignoring whether it is deleted).
func visible(c *Caller, img *Image) bool {
	return img.Owner == c.ProjectID || img.Visibility == VisibilityPublic ||
		img.Visibility == VisibilityCommunity
}

// Get returns the image with the given ID if the caller may see it. An
// image that is deleted or that the caller may not see is ENOTFOUND: the
// caller cannot tell the two apart.
func (s *ImageService) Get(ctx context.Context, c *Caller, id string) (*Image, error) {
	img, err := s.images.Image(ctx, id)
	if ErrorCode(err) == ENOTFOUND || (err == nil && (img.Deleted() || !visible(c, img))) {
		return nil, Errorf(ENOTFOUND, "No image found with ID %s", id)
	}
	return img, err
}

// ListOptions select a page of the default image list.
type ListOptions struct {
	Limit  int    // at most this many images; negative for all of them
	Marker string // start strictly after this image
}

// List returns the images the caller may see, not deleted, newest first.
// A marker must name an image the caller may see or could see before it
// was deleted; a deleted marker still continues from where it stood.
//
// The first chunk is fetched before List returns, so that most errors
// come back here; the sequence then streams the rest chunk by chunk. It
// may be ranged over only once.
func (s *ImageService) List(ctx context.Context, c *Caller, opts ListOptions) (iter.Seq2[*Image, error], error) {
	var after *Cursor
	if opts.Marker != "" {
		m, err := s.images.Image(ctx, opts.Marker)
		if ErrorCode(err) == ENOTFOUND || (err == nil && !visible(c, m)) {
			return nil, Errorf(EINVALID, "marker could not be found: %s", opts.Marker)
		} else if err != nil {
			return nil, err
		}
		after = &Cursor{CreatedAt: m.CreatedAt, ID: m.ID}
	}
	if opts.Limit == 0 {
		return func(func(*Image, error) bool) {}, nil
	}
	remaining := opts.Limit
	fetch := func() ([]*Image, error) {
		n := listChunk
		if remaining >= 0 && remaining < n {
			n = remaining
		}
		page, err := s.images.ListImages(ctx, ImageQuery{Viewer: c.ProjectID, After: after, Limit: n})
		if err != nil {
			return nil, err
		}
		if len(page) > 0 {
			last := page[len(page)-1]
			after = &Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
		}
		if remaining >= 0 {
			remaining -= len(page)
		}
		if len(page) < n {
			remaining = 0 // the store has no more
		}
		return page, nil
	}
	first, err := fetch()
	if err != nil {
		return nil, err
	}
	return func(yield func(*Image, error) bool) {
		page := first
		for {
			for _, img := range page {
				if !yield(img, nil) {
					return
				}
			}
			if remaining == 0 {
				return
			}
			var err error
			if page, err = fetch(); err != nil {
				yield(nil, err)
				return
			}
		}
	}, nil
}

// Upload stores the image's data from r: the image moves from queued to
// saving, the data is hashed (md5 and sha512) while it streams into the
// blob store, and the image becomes active with its size and hashes in one
// transaction. If anything fails the partial data is gone and the image is
// queued again, so the upload can be retried.
func (s *ImageService) Upload(ctx context.Context, c *Caller, id string, r io.Reader) (*Image, error) {
	img, err := s.Get(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if img.Owner != c.ProjectID || !c.CanWrite() {
		return nil, Errorf(EFORBIDDEN, "You are not permitted to upload data to image %s.", id)
	}
	if img.DiskFormat == "" || img.ContainerFormat == "" {
		return nil, Errorf(EINVALID, "Properties disk_format, container_format must be set prior to saving data.")
	}
	if _, err := s.images.UpdateImage(ctx, id, func(img *Image) error {
		return img.SetStatus(StatusSaving, s.now())
	}); err != nil {
		return nil, err
	}

	hr := newHashingReader(r)
	size, err := s.blobs.Put(ctx, id, hr)
	if err != nil {
		s.requeue(ctx, id)
		if hr.err != nil || ctx.Err() != nil {
			// The client sent less than it promised, or went away.
			return nil, Errorf(EINVALID, "Error reading image data: %v", errors.Join(hr.err, ctx.Err()))
		}
		return nil, fmt.Errorf("store data of image %s: %w", id, err)
	}
	img, err = s.images.UpdateImage(context.WithoutCancel(ctx), id, func(img *Image) error {
		if err := img.SetStatus(StatusActive, s.now()); err != nil {
			return err
		}
		img.Size = &size
		img.VirtualSize = hr.virtualSize(img.DiskFormat, size)
		img.Checksum = hex.EncodeToString(hr.md5.Sum(nil))
		img.HashAlgo = "sha512"
		img.HashValue = hex.EncodeToString(hr.sha512.Sum(nil))
		return nil
	})
	if err != nil {
		// The image was deleted while its data streamed, or the commit
		// failed: either way the data must not outlive this call.
		if derr := s.blobs.Delete(context.WithoutCancel(ctx), id); derr != nil && ErrorCode(derr) != ENOTFOUND {
			s.logger.Error("remove data of an upload that did not commit", "image", id, "err", derr)
		}
		return nil, err
	}
	return img, nil
}

// requeue returns an image whose upload failed to queued. It runs even when
// the request's context is gone, since a client that went away is the most
// common reason for a failed upload.
func (s *ImageService) requeue(ctx context.Context, id string) {
	_, err := s.images.UpdateImage(context.WithoutCancel(ctx), id, func(img *Image) error {
		if img.Status != StatusSaving {
			return errNoChange
		}
		return img.SetStatus(StatusQueued, s.now())
	})
	if err != nil && !errors.Is(err, errNoChange) {
		s.logger.Error("return image to queued after a failed upload", "image", id, "err", err)
	}
}

// errNoChange tells UpdateImage's caller that fn chose to write nothing.
var errNoChange = errors.New("no change")

// Download returns the image and its data, or a nil reader when the image
// has no data yet. Data of a deactivated image is only for admins.
func (s *ImageService) Download(ctx context.Context, c *Caller, id string) (*Image, io.ReadSeekCloser, error) {
	img, err := s.Get(ctx, c, id)
	if err != nil {
		return nil, nil, err
	}
	switch img.Status {
	case StatusActive:
	case StatusDeactivated:
		if !c.IsAdmin() {
			return nil, nil, Errorf(EFORBIDDEN,
				"The requested image has been deactivated. Image data download is forbidden.")
		}
	default:
		return img, nil, nil
	}
	rc, err := s.blobs.Open(ctx, id)
	if err != nil {
		return nil, nil, fmt.Errorf("open data of image %s: %w", id, err)
	}
	return img, rc, nil
}

// Delete deletes an image of the caller's project and removes its data.
// Another project's visible image is EFORBIDDEN; an invisible or unknown
// one is ENOTFOUND. Public images are deleted only by the owner's admins,
// and protected images not at all.
func (s *ImageService) Delete(ctx context.Context, c *Caller, id string) error {
	img, err := s.images.Image(ctx, id)
	if ErrorCode(err) == ENOTFOUND || (err == nil && (img.Deleted() || !visible(c, img))) {
		return Errorf(ENOTFOUND, "Failed to find image %s to delete", id)
	} else if err != nil {
		return err
	}
	if err := mayDelete(c, img); err != nil {
		return err
	}
	_, err = s.images.UpdateImage(ctx, id, func(img *Image) error {
		if img.Deleted() {
			return Errorf(ENOTFOUND, "Failed to find image %s to delete", id)
		} else if err := mayDelete(c, img); err != nil {
			return err
		}
		return img.SetStatus(StatusDeleted, s.now())
	})
	if err != nil {
		return err
	}
	// The image is deleted once its record says so. Data that cannot be
	// removed now is an orphan that no image references.
	// TODO(#4): the orphan sweep removes such data later; until then it is only logged.
	if err := s.blobs.Delete(context.WithoutCancel(ctx), id); err != nil && ErrorCode(err) != ENOTFOUND {
		s.logger.Error("remove data of a deleted image", "image", id, "err", err)
	}
	return nil
}

func mayDelete(c *Caller, img *Image) error {
	switch {
	case img.Owner != c.ProjectID || !c.CanWrite():
		return Errorf(EFORBIDDEN, "You are not permitted to delete image %s.", img.ID)
	case img.Visibility == VisibilityPublic && !c.IsAdmin():
		return Errorf(EFORBIDDEN, "Image %s is public; only an admin of its project may delete it.", img.ID)
	case img.Protected:
		return Errorf(EFORBIDDEN, "Image %s is protected and cannot be deleted.", img.ID)
	}
	return nil
}

// hashingReader hashes what it reads, keeps the first bytes for the format
// header, and remembers a read error of the source so that the service can
// tell a client that went away from a store that failed.
type hashingReader struct {
	r      io.Reader
	md5    hash.Hash
	sha512 hash.Hash
	head   []byte
	err    error
}

const headSize = 512

func newHashingReader(r io.Reader) *hashingReader {
	return &hashingReader{r: r, md5: md5.New(), sha512: sha512.New(), head: make([]byte, 0, headSize)}
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if n > 0 {
		h.md5.Write(p[:n])
		h.sha512.Write(p[:n])
		if k := min(n, headSize-len(h.head)); k > 0 {
			h.head = append(h.head, p[:k]...)
		}
	}
	if err != nil && err != io.EOF {
		h.err = err
	}
	return n, err
}

// virtualSize returns the size a guest sees: the qcow2 header's for qcow2,
// the data's own size for raw and iso, and nil where it is not known.
func (h *hashingReader) virtualSize(diskFormat string, size int64) *int64 {
	switch {
	case diskFormat == "qcow2" && DetectDiskFormat(h.head) == "qcow2" && len(h.head) >= 32:
		v := int64(binary.BigEndian.Uint64(h.head[24:32]))
		return &v
	case diskFormat == "raw" || diskFormat == "iso":
		return &size
	}
	return nil
}

// RecoverUploads returns to queued every image left in saving by a process
// that stopped mid-upload, and removes whatever data it may have committed
// before it could mark the image active, so that the upload can simply be
// retried. It must run before the server accepts uploads.
//
// TODO(#5): with several replicas on one database this would also reset
// uploads that another replica is still running; it needs a lease per upload.
func (s *ImageService) RecoverUploads(ctx context.Context) (int, error) {
	n := 0
	for {
		stale, err := s.images.ImagesInStatus(ctx, StatusSaving, 100)
		if err != nil || len(stale) == 0 {
			return n, err
		}
		for _, img := range stale {
			if err := s.blobs.Delete(ctx, img.ID); err != nil && ErrorCode(err) != ENOTFOUND {
				return n, fmt.Errorf("remove data of interrupted upload %s: %w", img.ID, err)
			}
			_, err := s.images.UpdateImage(ctx, img.ID, func(img *Image) error {
				if img.Status != StatusSaving {
					return errNoChange
				}
				return img.SetStatus(StatusQueued, s.now())
			})
			if err != nil && !errors.Is(err, errNoChange) {
				return n, err
			}
			s.logger.Warn("interrupted upload returned to queued", "image", img.ID)
			n++
		}
	}
}
