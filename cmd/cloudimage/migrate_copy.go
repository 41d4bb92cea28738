package main

import (
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/cloudimage/cloudimage"
	"github.com/schollz/progressbar/v3"
)

// migratePageSize is how many things a migration reads at a time.
const migratePageSize = 500

// maxReportedConflicts is how many conflicts a refusal lists.
const maxReportedConflicts = 20

// migration copies a catalog from one metadata database to another and
// the data its images reference from one blob store to another. It runs
// in two passes: the first only reads, compares the catalogs and refuses
// a destination that holds different data under the same IDs, names or
// appkeys; the second copies, in the order projects, users, role
// assignments, images, so that what a thing refers to is there before
// it. An image's data is copied and verified before its record is
// written: an interrupted run never leaves a record that references data
// the destination lacks.
type migration struct {
	from           cloudimage.CatalogReader
	to             catalogStore
	blobsFrom      cloudimage.BlobStore // nil with blobsTo: metadata only
	blobsTo        cloudimage.BlobStore
	verifyExisting bool // hash the data the destination holds already, not only size it
	pageSize       int

	log    io.Writer                                  // progress lines; nil for none
	newBar func(total int64) *progressbar.ProgressBar // a progress bar instead of lines, or nil
	bar    *progressbar.ProgressBar

	sum migrateSummary
}

// catalogStore is the destination of a migration.
type catalogStore interface {
	cloudimage.CatalogReader
	cloudimage.CatalogWriter
}

// pager walks one kind of thing of a catalog in ID order, a page at a
// time.
type pager[T any] struct {
	fetch func(ctx context.Context, after string, limit int) ([]T, error)
	id    func(T) string
	limit int
	after string
	page  []T
	done  bool
}

func (p *pager[T]) fill(ctx context.Context) error {
	page, err := p.fetch(ctx, p.after, p.limit)
	if err != nil {
		return err
	}
	p.done = len(page) < p.limit
	if len(page) > 0 {
		p.after = p.id(page[len(page)-1])
	}
	p.page = page
	return nil
}

// next returns the next thing, or false at the end.
func (p *pager[T]) next(ctx context.Context) (T, bool, error) {
	var zero T
	for len(p.page) == 0 {
		if p.done {
			return zero, false, nil
		}
		if err := p.fill(ctx); err != nil {
			return zero, false, err
		}
	}
	v := p.page[0]
	p.page = p.page[1:]
	return v, true, nil
}

// seek returns the thing with ID id, or false if there is none. Calls
// must ask for IDs in increasing order.
func (p *pager[T]) seek(ctx context.Context, id string) (T, bool, error) {
	var zero T
	for {
		for len(p.page) > 0 && p.id(p.page[0]) < id {
			p.page = p.page[1:]
		}
		if len(p.page) > 0 {
			return p.page[0], p.id(p.page[0]) == id, nil
		}
		if p.done {
			return zero, false, nil
		}
		if err := p.fill(ctx); err != nil {
			return zero, false, err
		}
	}
}

func (m *migration) projects(r cloudimage.CatalogReader) *pager[*cloudimage.Project] {
	return &pager[*cloudimage.Project]{fetch: r.CatalogProjects, limit: m.pageSize,
		id: func(p *cloudimage.Project) string { return p.ID }}
}

func (m *migration) users(r cloudimage.CatalogReader) *pager[*cloudimage.User] {
	return &pager[*cloudimage.User]{fetch: r.CatalogUsers, limit: m.pageSize,
		id: func(u *cloudimage.User) string { return u.ID }}
}

func (m *migration) images(r cloudimage.CatalogReader) *pager[*cloudimage.CatalogImage] {
	return &pager[*cloudimage.CatalogImage]{fetch: r.CatalogImages, limit: m.pageSize,
		id: func(r *cloudimage.CatalogImage) string { return r.Image.ID }}
}

// progress writes a line of progress, unless a bar shows it.
func (m *migration) progress(format string, args ...any) {
	if m.bar == nil {
		m.warn(format, args...)
	}
}

// warn writes a line that a bar does not replace.
func (m *migration) warn(format string, args ...any) {
	if m.log != nil {
		fmt.Fprintf(m.log, format+"\n", args...)
	}
}

// run migrates the catalog, adding what it did to m.sum.
func (m *migration) run(ctx context.Context) error {
	m.sum.MetadataOnly = m.blobsFrom == nil
	m.progress("comparing the source's catalog with the destination's")
	bytes, err := m.check(ctx)
	if err != nil {
		return err
	}
	if m.sum.MetadataOnly {
		m.progress("copying metadata only: the destination must use the source's blob store")
	} else {
		m.progress("about %d bytes of image data to copy", bytes)
	}
	if !m.sum.MetadataOnly && m.newBar != nil {
		m.bar = m.newBar(bytes)
		defer m.bar.Finish()
	}
	if err := m.copyIdentity(ctx); err != nil {
		return err
	}
	return m.copyImages(ctx)
}

// check compares the catalogs without writing: it returns an error
// listing what the destination holds differently, or how many bytes of
// data the images that the destination lacks reference.
func (m *migration) check(ctx context.Context) (int64, error) {
	var conflicts []error
	total := 0
	conflict := func(format string, args ...any) {
		if total++; len(conflicts) < maxReportedConflicts {
			conflicts = append(conflicts, fmt.Errorf(format, args...))
		}
	}

	// The destination's names and appkeys, to find those another ID holds.
	names, appkeys, users := map[string]string{}, map[string]string{}, map[string]string{}
	all := m.projects(m.to)
	for {
		p, ok, err := all.next(ctx)
		if err != nil {
			return 0, fmt.Errorf("read the destination's projects: %w", err)
		} else if !ok {
			break
		}
		names[p.Name], appkeys[p.AppKey] = p.ID, p.ID
	}
	allUsers := m.users(m.to)
	for {
		u, ok, err := allUsers.next(ctx)
		if err != nil {
			return 0, fmt.Errorf("read the destination's users: %w", err)
		} else if !ok {
			break
		}
		users[u.Name] = u.ID
	}

	sp, dp := m.projects(m.from), m.projects(m.to)
	for {
		p, ok, err := sp.next(ctx)
		if err != nil {
			return 0, fmt.Errorf("read the source's projects: %w", err)
		} else if !ok {
			break
		}
		have, found, err := dp.seek(ctx, p.ID)
		switch {
		case err != nil:
			return 0, fmt.Errorf("read the destination's projects: %w", err)
		case found && have.Diff(p) != "":
			conflict("project %s (%s) has a different %s", p.ID, p.Name, have.Diff(p))
		case !found && names[p.Name] != "":
			conflict("project %s: its name %q is another project's (%s)", p.ID, p.Name, names[p.Name])
		case !found && appkeys[p.AppKey] != "":
			conflict("project %s (%s): its appkey is another project's (%s)", p.ID, p.Name, appkeys[p.AppKey])
		}
	}
	su, du := m.users(m.from), m.users(m.to)
	for {
		u, ok, err := su.next(ctx)
		if err != nil {
			return 0, fmt.Errorf("read the source's users: %w", err)
		} else if !ok {
			break
		}
		have, found, err := du.seek(ctx, u.ID)
		switch {
		case err != nil:
			return 0, fmt.Errorf("read the destination's users: %w", err)
		case found && have.Diff(u) != "":
			conflict("user %s (%s) has a different %s", u.ID, u.Name, have.Diff(u))
		case !found && users[u.Name] != "":
			conflict("user %s: its name %q is another user's (%s)", u.ID, u.Name, users[u.Name])
		}
	}

	var bytes int64
	si, di := m.images(m.from), m.images(m.to)
	for {
		r, ok, err := si.next(ctx)
		if err != nil {
			return 0, fmt.Errorf("read the source's images: %w", err)
		} else if !ok {
			break
		}
		have, found, err := di.seek(ctx, r.Image.ID)
		switch {
		case err != nil:
			return 0, fmt.Errorf("read the destination's images: %w", err)
		case found && have.Diff(r) != "":
			conflict("image %s (%q) has a different %s", r.Image.ID, r.Image.Name, have.Diff(r))
		case !found && dataKey(r.Image) != "":
			bytes += *r.Image.Size
		}
	}
	if len(conflicts) > 0 {
		head := fmt.Errorf("the destination holds different data under the same IDs, names or appkeys "+
			"in %d places (%d listed); nothing was written", total, len(conflicts))
		return 0, errors.Join(append([]error{head}, conflicts...)...)
	}
	return bytes, nil
}

// copyIdentity copies projects, users and role assignments.
func (m *migration) copyIdentity(ctx context.Context) error {
	count := func(c *migrateCounts, wrote bool) {
		if wrote {
			c.Copied++
		} else {
			c.Skipped++
		}
	}
	sp := m.projects(m.from)
	for {
		p, ok, err := sp.next(ctx)
		if err != nil || !ok {
			if err != nil {
				return fmt.Errorf("read the source's projects: %w", err)
			}
			break
		}
		wrote, err := m.to.ImportProject(ctx, p)
		if err != nil {
			return fmt.Errorf("copy project %s: %w", p.ID, err)
		}
		count(&m.sum.Projects, wrote)
	}
	su := m.users(m.from)
	for {
		u, ok, err := su.next(ctx)
		if err != nil || !ok {
			if err != nil {
				return fmt.Errorf("read the source's users: %w", err)
			}
			break
		}
		wrote, err := m.to.ImportUser(ctx, u)
		if err != nil {
			return fmt.Errorf("copy user %s: %w", u.ID, err)
		}
		count(&m.sum.Users, wrote)
	}
	var after *cloudimage.RoleAssignment
	for {
		page, err := m.from.CatalogRoles(ctx, after, m.pageSize)
		if err != nil {
			return fmt.Errorf("read the source's role assignments: %w", err)
		}
		for _, a := range page {
			wrote, err := m.to.ImportRole(ctx, a)
			if err != nil {
				return fmt.Errorf("copy role %s of user %s in project %s: %w", a.Role, a.UserID, a.ProjectID, err)
			}
			count(&m.sum.Roles, wrote)
		}
		if len(page) < m.pageSize {
			break
		}
		after = &page[len(page)-1]
	}
	m.progress("projects: %d copied, %d skipped; users: %d copied, %d skipped",
		m.sum.Projects.Copied, m.sum.Projects.Skipped, m.sum.Users.Copied, m.sum.Users.Skipped)
	return nil
}

// copyImages copies every image, its data first.
func (m *migration) copyImages(ctx context.Context) error {
	si, di := m.images(m.from), m.images(m.to)
	for {
		r, ok, err := si.next(ctx)
		if err != nil {
			return fmt.Errorf("read the source's images: %w", err)
		} else if !ok {
			return nil
		}
		have, found, err := di.seek(ctx, r.Image.ID)
		if err != nil {
			return fmt.Errorf("read the destination's images: %w", err)
		}
		if found {
			if d := have.Diff(r); d != "" {
				return fmt.Errorf("image %s (%q) changed at the source or the destination during the "+
					"migration: its %s differs", r.Image.ID, r.Image.Name, d)
			}
			m.sum.Images.Skipped++
			if err := m.keepData(ctx, r.Image); err != nil {
				return err
			}
			continue
		}
		if err := m.copyData(ctx, r.Image); err != nil {
			return err
		}
		wrote, err := m.to.ImportImage(ctx, r)
		if err != nil {
			return fmt.Errorf("copy image %s: %w", r.Image.ID, err)
		} else if wrote {
			m.sum.Images.Copied++
		} else {
			m.sum.Images.Skipped++
		}
	}
}

// dataKey returns the key of the data img references that a migration
// carries: an image's data while it has any (the scrubber may still
// need to remove it), or the data staged for its import once its size is
// recorded. It is "" when img references none.
func dataKey(img *cloudimage.Image) string {
	switch img.Status {
	case cloudimage.StatusActive, cloudimage.StatusDeactivated, cloudimage.StatusPendingDelete:
		if img.Size != nil {
			return img.ID
		}
	case cloudimage.StatusUploading, cloudimage.StatusImporting:
		if img.Size != nil {
			return img.ID + ".staged"
		}
	}
	return ""
}

// dataRequired reports whether img is unusable without its data, so that
// a source without it is an error rather than a warning.
func dataRequired(img *cloudimage.Image) bool {
	return img.Status == cloudimage.StatusActive || img.Status == cloudimage.StatusDeactivated
}

// digest is what a migration learns of data as it streams by.
type digest struct {
	size   int64
	md5    hash.Hash
	sha512 hash.Hash
}

func newDigest() *digest {
	return &digest{md5: md5.New(), sha512: sha512.New()}
}

func (d *digest) Write(p []byte) (int, error) {
	d.md5.Write(p)
	d.sha512.Write(p)
	d.size += int64(len(p))
	return len(p), nil
}

func (d *digest) sums() (md5hex, sha512hex string) {
	return hex.EncodeToString(d.md5.Sum(nil)), hex.EncodeToString(d.sha512.Sum(nil))
}

// mismatch returns what of d differs from what img records of its data
// under key, or "".
func (d *digest) mismatch(img *cloudimage.Image, key string) string {
	md5hex, sha512hex := d.sums()
	switch {
	case img.Size != nil && d.size != *img.Size:
		return fmt.Sprintf("%d bytes, want %d", d.size, *img.Size)
	case key != img.ID: // staged data: only its size is recorded
		return ""
	case img.Checksum != "" && md5hex != img.Checksum:
		return fmt.Sprintf("MD5 %s, want %s", md5hex, img.Checksum)
	case img.HashAlgo == "sha512" && sha512hex != img.HashValue:
		return fmt.Sprintf("SHA-512 %s, want %s", sha512hex, img.HashValue)
	}
	return ""
}

// readDigest reads all of the data under key in s.
func readDigest(ctx context.Context, s cloudimage.BlobStore, key string) (*digest, error) {
	r, err := s.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	d := newDigest()
	if _, err := io.Copy(d, contextReader{ctx, r}); err != nil {
		return nil, err
	}
	return d, nil
}

// contextReader stops reading once its context is done.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// errorText is err's message as the command line shows it.
func errorText(err error) string {
	var de *cloudimage.Error
	if errors.As(err, &de) {
		return de.Message
	}
	return err.Error()
}

// copyData copies the data img references, if any, and verifies it: the
// bytes read from the source must be what img records, and the bytes
// read back from the destination the same. On a mismatch the copy is
// removed and the error names the image.
func (m *migration) copyData(ctx context.Context, img *cloudimage.Image) error {
	key := dataKey(img)
	if key == "" || m.blobsFrom == nil {
		return nil
	}
	src, err := m.blobsFrom.Open(ctx, key)
	if cloudimage.ErrorCode(err) == cloudimage.ENOTFOUND && !dataRequired(img) {
		m.sum.MissingData++
		m.warn("image %s (%s): the source holds no data under %s; copying its record only", img.ID, img.Status, key)
		return nil
	} else if cloudimage.ErrorCode(err) == cloudimage.ENOTFOUND {
		return fmt.Errorf("image %s (%q) is %s but the source holds no data for it", img.ID, img.Name, img.Status)
	} else if err != nil {
		return fmt.Errorf("image %s: open its data at the source: %s", img.ID, errorText(err))
	}
	defer src.Close()

	sent := newDigest()
	var w io.Writer = sent
	if m.bar != nil {
		w = io.MultiWriter(sent, m.bar)
	}
	if _, err := m.blobsTo.Put(ctx, key, io.TeeReader(src, w)); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("image %s: copy its data: %s", img.ID, errorText(err))
	}
	// The copy is removed even when ctx is done: its record is not written.
	remove := func() { m.blobsTo.Delete(context.WithoutCancel(ctx), key) }
	if d := sent.mismatch(img, key); d != "" {
		remove()
		return fmt.Errorf("image %s (%q): its data at the source does not match its record (%s): "+
			"the source's data is damaged; nothing of the image was written", img.ID, img.Name, d)
	}
	back, err := readDigest(ctx, m.blobsTo, key)
	if err != nil {
		remove()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("image %s: read its data back from the destination: %s", img.ID, errorText(err))
	}
	if back.size != sent.size || back.mismatch(img, key) != "" || !sameSums(back, sent) {
		remove()
		return fmt.Errorf("image %s (%q): its data read back from the destination differs from the "+
			"source's (%d bytes read back, %d sent); nothing of the image was written", img.ID, img.Name,
			back.size, sent.size)
	}
	m.sum.Blobs.Copied++
	m.sum.Bytes += sent.size
	what := "data"
	if key != img.ID {
		what = "staged data"
	}
	m.progress("image %s: %d bytes of %s copied and verified", img.ID, sent.size, what)
	return nil
}

func sameSums(a, b *digest) bool {
	am, as := a.sums()
	bm, bs := b.sums()
	return am == bm && as == bs
}

// keepData makes sure the destination holds the data of an image whose
// record it holds already: a run that stopped after the data was
// written but before the record was cannot have left the record, but
// the data may have been removed since. Data of the right size is kept,
// or with verifyExisting data whose hashes match; other data is copied
// again.
func (m *migration) keepData(ctx context.Context, img *cloudimage.Image) error {
	key := dataKey(img)
	if key == "" || m.blobsFrom == nil {
		return nil
	}
	ok, err := m.hasData(ctx, img, key)
	if err != nil {
		return err
	}
	if ok {
		m.sum.Blobs.Skipped++
		return nil
	}
	m.progress("image %s: the destination's data is missing or differs; copying it again", img.ID)
	return m.copyData(ctx, img)
}

// hasData reports whether the destination holds img's data under key.
func (m *migration) hasData(ctx context.Context, img *cloudimage.Image, key string) (bool, error) {
	if m.verifyExisting {
		d, err := readDigest(ctx, m.blobsTo, key)
		if cloudimage.ErrorCode(err) == cloudimage.ENOTFOUND {
			return false, nil
		} else if err != nil {
			return false, fmt.Errorf("image %s: read its data at the destination: %s", img.ID, errorText(err))
		}
		return d.mismatch(img, key) == "", nil
	}
	r, err := m.blobsTo.Open(ctx, key)
	if cloudimage.ErrorCode(err) == cloudimage.ENOTFOUND {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("image %s: open its data at the destination: %s", img.ID, errorText(err))
	}
	defer r.Close()
	size, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return false, fmt.Errorf("image %s: size its data at the destination: %w", img.ID, err)
	}
	return size == *img.Size, nil
}
