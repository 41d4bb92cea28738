package cloudimage

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// listChunk is how many images one store query fetches while a list is
// streamed: memory stays bounded by it whatever the list's length.
const listChunk = 500

// ImageService carries the rules of the catalog: who may see and change an
// image, how an upload becomes active, and what a delete does. Every API
// face calls it, so they cannot disagree.
type ImageService struct {
	images      ImageStore
	blobs       BlobStore
	logger      *slog.Logger
	now         func() time.Time
	profile     Profile
	importHosts []string
	httpClient  *http.Client

	// Imports run in the background after their request has returned;
	// Close cancels and waits for them.
	bg        context.Context
	stopBG    context.CancelFunc
	mu        sync.Mutex // guards closed, running, transfers and adding to imports
	closed    bool
	running   map[string]context.CancelFunc // of the imports running, by image ID
	transfers map[string]struct{}           // IDs of the images whose transfer runs here
	imports   sync.WaitGroup

	// Transfer leases, see WithTransferLeases; leases is nil without.
	leases   LeaseStore
	holder   string
	leaseTTL time.Duration

	importIdle time.Duration // see importIdleTimeout
	maxSize    int64         // of one image's data, in bytes; see WithMaxImageSize
	quotas     Quotas        // of every project; see WithQuotas

	// Data need not be in its disk_format; see WithRequireFormatMatch.
	allowFormatMismatch bool

	delayedDelete bool          // see WithDelayedDelete
	scrubDelay    time.Duration // how long pending_delete data waits for Scrub
}

// ServiceOption configures an ImageService.
type ServiceOption func(*ImageService)

// WithProfile sets the API rules the service enforces; ProfileNHN is the
// default.
func WithProfile(p Profile) ServiceOption {
	return func(s *ImageService) { s.profile = p }
}

// WithImportHosts allows web-download imports from the given hosts (a
// name, or host:port). With none, web-download is not offered.
func WithImportHosts(hosts ...string) ServiceOption {
	return func(s *ImageService) { s.importHosts = slices.Clone(hosts) }
}

// DefaultMaxImageSize is the most data one image may have unless
// configured otherwise: 1 TiB, as Glance's image_size_cap.
const DefaultMaxImageSize = 1 << 40

// WithMaxImageSize sets the most bytes of data one image may have; larger
// uploads, stages and imports are refused with ETOOLARGE and keep nothing.
func WithMaxImageSize(n int64) ServiceOption {
	return func(s *ImageService) { s.maxSize = n }
}

// WithImportIdleTimeout sets how long a web-download may receive nothing
// before it fails; the default is a minute.
func WithImportIdleTimeout(d time.Duration) ServiceOption {
	return func(s *ImageService) { s.importIdle = d }
}

// WithHTTPClient sets the client web-download imports fetch with.
func WithHTTPClient(c *http.Client) ServiceOption {
	return func(s *ImageService) { s.httpClient = c }
}

// WithClock makes the service read the time from now: the times it
// records, and when a delayed delete is due. The age of orphaned data is
// measured by the real clock, as the blob store's times are.
func WithClock(now func() time.Time) ServiceOption {
	return func(s *ImageService) {
		s.now = func() time.Time { return now().UTC().Truncate(time.Microsecond) }
	}
}

// NewImageService returns a service over the given stores.
func NewImageService(images ImageStore, blobs BlobStore, logger *slog.Logger, opts ...ServiceOption) *ImageService {
	s := &ImageService{images: images, blobs: blobs, logger: logger, now: now, profile: ProfileNHN}
	for _, o := range opts {
		o(s)
	}
	if s.httpClient == nil {
		// No overall timeout: a large image may take long; fetch gives up
		// on a source that stalls.
		s.httpClient = &http.Client{}
	}
	if s.importIdle == 0 {
		s.importIdle = importIdleTimeout
	}
	if s.maxSize <= 0 {
		s.maxSize = DefaultMaxImageSize
	}
	s.bg, s.stopBG = context.WithCancel(context.Background())
	return s
}

// Profile returns the rules the service enforces.
func (s *ImageService) Profile() Profile {
	return s.profile
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
	if err := s.validateCreate(c, &in); err != nil {
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
	if err := s.images.CreateImageWithin(ctx, img, Quotas{Images: s.quotas.Images}); err != nil {
		return nil, err
	}
	s.audit(c, "create", img.ID)
	return img, nil
}

func (s *ImageService) validateCreate(c *Caller, in *ImageCreate) error {
	if in.ID != "" {
		id, err := ParseID(in.ID)
		if err != nil {
			return err
		}
		in.ID = id
	}
	if utf8.RuneCountInString(in.Name) > MaxNameLength {
		return Errorf(EINVALID, "name must be at most %d characters", MaxNameLength)
	} else if !validText(in.Name) {
		return Errorf(EINVALID, "name must be UTF-8 without control characters")
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
	if err := s.checkVisibility(c, in.Visibility); err != nil {
		return err
	}
	tags, err := normalizeTags(in.Tags)
	if err != nil {
		return err
	}
	for _, t := range tags {
		if err := s.checkTag(c, t); err != nil {
			return err
		}
	}
	in.Tags = tags
	return s.validateProperties(in.Properties)
}

// normalizeTags checks tags and drops duplicates: an image's tags are a set.
func normalizeTags(tags []string) ([]string, error) {
	if len(tags) > MaxTags {
		return nil, Errorf(ETOOLARGE, "an image may have at most %d tags", MaxTags)
	}
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		if t == "" || utf8.RuneCountInString(t) > MaxTagLength {
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
		if k == "" || utf8.RuneCountInString(k) > MaxPropertyKeyLength {
			return Errorf(EINVALID, "a property name must be 1 to %d characters", MaxPropertyKeyLength)
		} else if !validText(k) || !validText(props[k]) {
			return Errorf(EINVALID, "property %q: names and values must be UTF-8 without control characters", k)
		} else if slices.Contains(ReservedProperties, k) || strings.HasPrefix(k, "os_glance") {
			// os_glance_* is Glance's own namespace (import status and the like).
			return Errorf(EFORBIDDEN, "Attribute '%s' is reserved.", k)
		} else if utf8.RuneCountInString(props[k]) > MaxPropertyValueLength {
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

// visible reports whether c may see img, deleted or not: its own images,
// public and community ones, and shared ones of which c's project is a
// member, whatever the membership's status.
func (s *ImageService) visible(ctx context.Context, c *Caller, img *Image) (bool, error) {
	switch {
	case img.Owner == c.ProjectID || img.Visibility == VisibilityPublic || img.Visibility == VisibilityCommunity:
		return true, nil
	case img.Visibility != VisibilityShared:
		return false, nil
	}
	_, err := s.images.Member(ctx, img.ID, c.ProjectID)
	if ErrorCode(err) == ENOTFOUND {
		return false, nil
	}
	return err == nil, err
}

// Get returns the image with the given ID if the caller may see it. An
// image that is deleted or that the caller may not see is ENOTFOUND: the
// caller cannot tell the two apart.
func (s *ImageService) Get(ctx context.Context, c *Caller, id string) (*Image, error) {
	img, err := s.images.Image(ctx, id)
	if err == nil && !img.Deleted() {
		var ok bool
		if ok, err = s.visible(ctx, c, img); err == nil && ok {
			return img, nil
		}
	}
	if err == nil || ErrorCode(err) == ENOTFOUND {
		return nil, Errorf(ENOTFOUND, "No image found with ID %s", id)
	}
	return nil, err
}

// ListOptions select a page of a caller's images.
type ListOptions struct {
	Limit        int    // at most this many images; negative for all of them
	Marker       string // start strictly after this image
	Visibility   ListVisibility
	MemberStatus MemberStatus // of images shared with the caller; empty means accepted
	Filter       ImageFilter
	Sort         []Sort // a complete order (see CompleteSort); empty means DefaultSort
	Tags         bool   // load each image's tags too; without, their Tags are nil
}

// List returns the images the caller may see, not deleted, newest first.
// A marker must name an image the caller may see or could see before it
// was deleted; a deleted marker still continues from where it stood.
//
// The first chunk is fetched before List returns, so that most errors
// come back here; the sequence then streams the rest chunk by chunk. It
// may be ranged over only once.
func (s *ImageService) List(ctx context.Context, c *Caller, opts ListOptions) (iter.Seq2[*Image, error], error) {
	if !opts.Visibility.Valid() {
		return nil, Errorf(EINVALID, "Invalid visibility value: %s", opts.Visibility)
	}
	if opts.MemberStatus != "" && opts.MemberStatus != MemberAny && !opts.MemberStatus.Valid() {
		return nil, Errorf(EINVALID, "Invalid status value: %s", opts.MemberStatus)
	}
	sorts := opts.Sort
	if len(sorts) == 0 {
		sorts = DefaultSort
	}
	var after *Image
	if opts.Marker != "" {
		m, err := s.images.Image(ctx, opts.Marker)
		if err == nil {
			var ok bool
			if ok, err = s.visible(ctx, c, m); err == nil && !ok {
				err = Errorf(ENOTFOUND, "invisible")
			}
		}
		if ErrorCode(err) == ENOTFOUND {
			return nil, Errorf(EINVALID, "marker could not be found: %s", opts.Marker)
		} else if err != nil {
			return nil, err
		}
		after = m
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
		page, err := s.images.ListImages(ctx, ImageQuery{
			Viewer:       c.ProjectID,
			Visibility:   opts.Visibility,
			MemberStatus: opts.MemberStatus,
			Filter:       opts.Filter,
			Sort:         sorts,
			After:        after,
			Limit:        n,
			Tags:         opts.Tags,
		})
		if err != nil {
			return nil, err
		}
		if len(page) > 0 {
			after = page[len(page)-1]
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
	qr, err := s.quotaReader(ctx, img, r)
	if err != nil {
		return nil, err
	}
	// Held before the image is saving, so that RecoverUploads never takes
	// a saving image for an abandoned one while its data streams.
	t, err := s.beginTransfer(ctx, id)
	if err != nil {
		return nil, err
	}
	defer t.end()
	ctx, unbind := t.bind(ctx)
	defer unbind()
	if img, err = s.images.UpdateImage(ctx, id, func(img *Image) error {
		// Checked here, in the transaction, so that a PATCH clearing a
		// format cannot slip in before the status changes.
		if img.DiskFormat == "" || img.ContainerFormat == "" {
			return errNoFormats("saving")
		}
		return img.SetStatus(StatusSaving, s.now())
	}); err != nil {
		return nil, err
	}

	hr := s.newHashingReader(qr, img.DiskFormat)
	size, err := s.blobs.Put(ctx, id, hr)
	if lost := t.lostErr(); lost != nil {
		return nil, lost
	}
	if err != nil {
		s.requeue(ctx, id)
		if err := hr.refusal(); err != nil {
			return nil, err
		}
		if qr.refused != nil {
			return nil, qr.refused
		}
		if hr.err != nil || ctx.Err() != nil {
			// The client sent less than it promised, or went away.
			return nil, Errorf(EINVALID, "Error reading image data: %v", errors.Join(hr.err, ctx.Err()))
		}
		return nil, s.storeFailed("store", id, err)
	}
	img, err = s.activate(ctx, t, StatusSaving, size, hr)
	if errors.Is(err, errTransferLost) {
		return nil, err
	} else if err != nil {
		// Over the byte quota at the commit, say: the upload may be
		// retried once there is room.
		s.requeue(ctx, id)
		return nil, err
	}
	s.audit(c, "upload", id, "size", size)
	return img, nil
}

// audit logs one change a caller made: who (user and project), what, and
// to which image. The lines share the message "audit", so that they can
// be picked out of the log.
func (s *ImageService) audit(c *Caller, action, image string, attrs ...any) {
	s.logger.Info("audit", append([]any{"action", action, "project", c.ProjectID, "user", c.UserID,
		"user_name", c.UserName, "image", image}, attrs...)...)
}

// activate makes an image whose data transfer t has stored under its ID
// active, with the size and hashes hr took of that data, in one
// transaction with the check of its project's byte quota and that the
// image is still in status from. If that fails (the image was deleted
// while its data streamed, the project's other uploads took the room, or
// the commit failed) the data is removed: it must not outlive the call.
// A transfer that has lost its lease is errTransferLost and changes
// nothing: the image, and the data under its ID, are another replica's.
func (s *ImageService) activate(ctx context.Context, t *transfer, from Status, size int64,
	hr *hashingReader) (*Image, error) {
	ctx = context.WithoutCancel(ctx)
	if err := t.confirm(ctx); err != nil {
		return nil, err
	}
	id := t.id
	img, err := s.images.UpdateImageWithin(ctx, id, Quotas{Bytes: s.quotas.Bytes}, func(img *Image) error {
		if img.Status != from && img.Status.CanTransition(StatusActive) {
			// Recovered and requeued, say, while this transfer stalled.
			return Errorf(ECONFLICT, "Image status transition from %s to active is not allowed", img.Status)
		}
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
		if derr := s.blobs.Delete(ctx, id); derr != nil && ErrorCode(derr) != ENOTFOUND {
			s.logger.Error("remove data that did not become active", "image", id, "err", derr)
		}
		return nil, err
	}
	return img, nil
}

// storeFailed returns the error of a blob store that failed to take an
// image's data (doing it: "store" or "stage") while the client sent it
// well: never a client error. An uncoded failure (an I/O error) becomes a
// 500 that the HTTP layer logs; a coded one (storage full) reaches the
// caller as it is, so it is logged here, for an operator must act on it.
func (s *ImageService) storeFailed(doing, id string, err error) error {
	err = fmt.Errorf("%s data of image %s: %w", doing, id, err)
	if ErrorCode(err) != EINTERNAL {
		s.logger.Error("image data store failed", "image", id, "err", err)
	}
	return err
}

// errNoFormats refuses data for an image that does not say what it is.
func errNoFormats(doing string) error {
	return Errorf(EINVALID, "Properties disk_format, container_format must be set prior to %s data.", doing)
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
	if img.Status == StatusActive || img.Status == StatusDeactivated {
		if err := s.mayDownload(c, img); err != nil {
			return nil, nil, err
		}
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

// mayDownload applies the profile's download rule: under NHN Cloud's,
// data leaves only for members and admins, and only when the image's
// download property is "true" (digest §7 #32).
func (s *ImageService) mayDownload(c *Caller, img *Image) error {
	p := s.profile.DownloadProperty
	if p == "" {
		return nil
	}
	if !c.CanWrite() {
		return Errorf(EFORBIDDEN, "Downloading image data needs the member or admin role.")
	}
	if img.Properties[p] != "true" {
		return Errorf(EFORBIDDEN, "Image %s may not be downloaded: its %s property is not \"true\".", img.ID, p)
	}
	return nil
}

// Delete deletes an image of the caller's project and removes its data;
// with delayed delete on, an active image is pending_delete instead and
// keeps its data until Scrub (see WithDelayedDelete).
// Another project's visible image is EFORBIDDEN; an invisible or unknown
// one is ENOTFOUND. Public images are deleted only by the owner's admins,
// and protected images not at all.
func (s *ImageService) Delete(ctx context.Context, c *Caller, id string) error {
	img, err := s.Get(ctx, c, id)
	if ErrorCode(err) == ENOTFOUND {
		return Errorf(ENOTFOUND, "Failed to find image %s to delete", id)
	} else if err != nil {
		return err
	}
	if err := mayDelete(c, img); err != nil {
		return err
	}
	img, err = s.images.UpdateImage(ctx, id, func(img *Image) error {
		if img.Deleted() {
			return Errorf(ENOTFOUND, "Failed to find image %s to delete", id)
		} else if err := mayDelete(c, img); err != nil {
			return err
		}
		return img.SetStatus(s.deletedStatus(img), s.now())
	})
	if err != nil {
		return err
	}
	s.audit(c, "delete", id, "status", img.Status)
	if img.Status == StatusPendingDelete {
		return nil // the data waits for Scrub
	}
	// The image is deleted once its record says so. Data that cannot be
	// removed now is an orphan that no image references, which
	// SweepOrphans removes later.
	s.stopImport(id)
	for _, key := range []string{id, stagingKey(id)} {
		if err := s.blobs.Delete(context.WithoutCancel(ctx), key); err != nil && ErrorCode(err) != ENOTFOUND {
			s.logger.Error("remove data of a deleted image", "image", id, "key", key, "err", err)
		}
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

// RecoverUploads repairs what a process that stopped mid-transfer left
// behind:
//   - an image left in saving returns to queued, and whatever data it may
//     have committed before it could be marked active is removed, so that
//     the upload can simply be retried;
//   - an image left importing with its data staged resumes its import in
//     the background; one without staged data (a web-download) is queued;
//   - an image left uploading whose staging never completed, or whose
//     staged data was never recorded, is queued and its data removed.
//
// It returns how many images it repaired. An image whose transfer still
// runs, in this process or, by its transfer lease, on another replica
// (see WithTransferLeases), is left alone, so that RecoverUploads may run
// at any time; without transfer leases, a service that shares its
// database must not run it.
func (s *ImageService) RecoverUploads(ctx context.Context) (int, error) {
	n := 0
	for _, status := range []Status{StatusSaving, StatusImporting, StatusUploading} {
		// Images whose transfer runs keep their status and would come
		// back in every batch: each status is read once, in one.
		imgs, err := s.images.ImagesInStatus(ctx, status, recoverBatch)
		if err != nil {
			return n, err
		}
		for _, img := range imgs {
			repaired, err := s.recoverTransfer(ctx, img.ID)
			if err != nil {
				return n, err
			} else if repaired {
				n++
			}
		}
	}
	return n, nil
}

// recoverBatch is the most images in one status one RecoverUploads
// repairs; the next run takes on any more.
const recoverBatch = 100000

// recoverTransfer repairs image id if its transfer stopped midway, and
// reports whether it did. It holds the image's transfer while it works,
// and reads the image under that hold: a transfer that ended meanwhile
// may have left it active.
func (s *ImageService) recoverTransfer(ctx context.Context, id string) (bool, error) {
	t, ok, err := s.tryTransfer(ctx, id)
	if err != nil || !ok {
		return false, err // a transfer runs: nothing to repair
	}
	handedOn := false
	defer func() {
		if !handedOn {
			t.end()
		}
	}()
	img, err := s.images.Image(ctx, id)
	if ErrorCode(err) == ENOTFOUND {
		return false, nil
	} else if err != nil {
		return false, err
	}
	switch img.Status {
	case StatusSaving:
		return true, s.recoverSaving(ctx, id)
	case StatusImporting, StatusUploading:
	default:
		return false, nil
	}
	status := img.Status
	staged, err := s.blobs.Open(ctx, stagingKey(id))
	if err == nil {
		staged.Close()
	} else if ErrorCode(err) != ENOTFOUND {
		return false, fmt.Errorf("look for staged data of image %s: %w", id, err)
	}
	switch {
	case err == nil && status == StatusImporting:
		s.logger.Warn("resuming interrupted import", "image", id)
		handedOn = s.startImport(id, t, func(ctx context.Context) (io.ReadCloser, error) {
			return s.blobs.Open(ctx, stagingKey(id))
		})
	case err == nil && img.Size != nil:
		return false, nil // staged, waiting for its import call
	case err == nil:
		// The data was stored but the stage never recorded it (its
		// size): Import would refuse the image for ever.
		s.logger.Warn("staging interrupted before it was recorded; image returned to queued", "image", id)
		s.unstage(ctx, id, status)
	default:
		// A web-download may have stored its data before it could mark
		// the image active: nothing references that data.
		if status == StatusImporting {
			if err := s.blobs.Delete(ctx, id); err != nil && ErrorCode(err) != ENOTFOUND {
				return false, fmt.Errorf("remove data of interrupted import %s: %w", id, err)
			}
		}
		s.logger.Warn("interrupted transfer returned to queued", "image", id, "status", status)
		s.unstage(ctx, id, status)
	}
	return true, nil
}

// recoverSaving returns an image left saving to queued, and then removes
// whatever data it may have committed before it could be marked active;
// data that a crash keeps from being removed is an orphan of a queued
// image, which SweepOrphans removes.
func (s *ImageService) recoverSaving(ctx context.Context, id string) error {
	_, err := s.images.UpdateImage(ctx, id, func(img *Image) error {
		if img.Status != StatusSaving {
			return errNoChange
		}
		return img.SetStatus(StatusQueued, s.now())
	})
	if errors.Is(err, errNoChange) {
		return nil
	} else if err != nil {
		return err
	}
	if err := s.blobs.Delete(ctx, id); err != nil && ErrorCode(err) != ENOTFOUND {
		return fmt.Errorf("remove data of interrupted upload %s: %w", id, err)
	}
	s.logger.Warn("interrupted upload returned to queued", "image", id)
	return nil
}
