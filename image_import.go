package cloudimage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Import methods of Glance's interoperable import.
const (
	ImportGlanceDirect = "glance-direct" // data staged with Stage first
	ImportWebDownload  = "web-download"  // data fetched from a URL
)

// ImportRequest is what POST /v2/images/{id}/import asks for.
type ImportRequest struct {
	Method string
	URI    string // web-download only
}

// stagingKey is the blob key under which an image's staged data waits for
// its import.
func stagingKey(id string) string {
	return id + ".staged"
}

// ImportMethods returns the import methods the service offers:
// web-download only when some source hosts are allowed.
func (s *ImageService) ImportMethods() []string {
	if len(s.importHosts) == 0 {
		return []string{ImportGlanceDirect}
	}
	return []string{ImportGlanceDirect, ImportWebDownload}
}

// Stage stores data for a later glance-direct import: the image moves
// from queued to uploading and stays there, with its data staged, until
// Import. If the data cannot be staged the image is queued again.
func (s *ImageService) Stage(ctx context.Context, c *Caller, id string, r io.Reader) (*Image, error) {
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
	t, err := s.beginTransfer(ctx, id)
	if err != nil {
		return nil, err
	}
	defer t.end()
	ctx, unbind := t.bind(ctx)
	defer unbind()
	if img, err = s.images.UpdateImage(ctx, id, func(img *Image) error {
		return img.SetStatus(StatusUploading, s.now())
	}); err != nil {
		return nil, err
	}
	cr := &errorReader{r: qr, headInspector: s.newInspector(img.DiskFormat)}
	size, err := s.blobs.Put(ctx, stagingKey(id), cr)
	if lost := t.lostErr(); lost != nil {
		return nil, lost
	}
	stored := err == nil
	if stored {
		// Staged data counts toward the byte quota from here on.
		within := Quotas{Bytes: s.quotas.Bytes}
		img, err = s.images.UpdateImageWithin(context.WithoutCancel(ctx), id, within, func(img *Image) error {
			if img.Status != StatusUploading {
				return Errorf(ECONFLICT, "Image %s was changed while its data was staged", id)
			}
			img.Size = &size
			img.UpdatedAt = s.now()
			return nil
		})
		if err == nil {
			s.audit(c, "stage", id, "size", size)
			return img, nil
		}
	}
	s.unstage(ctx, id, StatusUploading)
	if stored {
		// The data came whole; recording it failed, whatever the client
		// did after sending it.
		return nil, fmt.Errorf("record staged data of image %s: %w", id, err)
	}
	if err := cr.refusal(); err != nil {
		return nil, err
	}
	if qr.refused != nil {
		return nil, qr.refused
	}
	if cr.err != nil || ctx.Err() != nil {
		return nil, Errorf(EINVALID, "Error reading image data: %v", errors.Join(cr.err, ctx.Err()))
	}
	return nil, s.storeFailed("stage", id, err)
}

// unstage removes an image's staged data and, if it is still in status
// from, returns it to queued.
func (s *ImageService) unstage(ctx context.Context, id string, from Status) {
	ctx = context.WithoutCancel(ctx)
	if err := s.blobs.Delete(ctx, stagingKey(id)); err != nil && ErrorCode(err) != ENOTFOUND {
		s.logger.Error("remove staged data", "image", id, "err", err)
	}
	_, err := s.images.UpdateImage(ctx, id, func(img *Image) error {
		if img.Status != from {
			return errNoChange
		}
		img.Size = nil
		return img.SetStatus(StatusQueued, s.now())
	})
	if err != nil && !errors.Is(err, errNoChange) {
		s.logger.Error("return image to queued after a failed import", "image", id, "err", err)
	}
}

// Import starts importing an image's data by the requested method and
// returns once the image is importing; the data moves in the background,
// and the image becomes active when it is stored, or queued again if it
// cannot be.
func (s *ImageService) Import(ctx context.Context, c *Caller, id string, req ImportRequest) error {
	img, err := s.Get(ctx, c, id)
	if err != nil {
		return err
	}
	if img.Owner != c.ProjectID || !c.CanWrite() {
		return Errorf(EFORBIDDEN, "You are not permitted to import data to image %s.", id)
	}
	if !slices.Contains(s.ImportMethods(), req.Method) {
		return Errorf(EINVALID, "Import method %q is not available: use one of %s",
			req.Method, strings.Join(s.ImportMethods(), ", "))
	}
	if s.bg.Err() != nil {
		return Errorf(ECONFLICT, "The server is shutting down; retry the import.")
	}
	var source func(context.Context) (io.ReadCloser, error)
	var from Status
	switch req.Method {
	case ImportGlanceDirect:
		from = StatusUploading
		source = func(ctx context.Context) (io.ReadCloser, error) {
			return s.blobs.Open(ctx, stagingKey(id))
		}
	case ImportWebDownload:
		from = StatusQueued
		u, err := s.checkImportURI(req.URI)
		if err != nil {
			return err
		}
		source = func(ctx context.Context) (io.ReadCloser, error) { return s.fetch(ctx, u) }
	}
	// Held from before the image is importing to the end of the import.
	t, err := s.beginTransfer(ctx, id)
	if err != nil {
		return err
	}
	_, err = s.images.UpdateImage(ctx, id, func(img *Image) error {
		if img.DiskFormat == "" || img.ContainerFormat == "" {
			return errNoFormats("importing")
		}
		// A staged image has its size once all of its data is staged;
		// until then its stage request is still streaming.
		if img.Status != from || (req.Method == ImportGlanceDirect && img.Size == nil) {
			if req.Method == ImportGlanceDirect {
				return Errorf(ECONFLICT, "Image needs to be staged before 'glance-direct' method can be used")
			}
			return Errorf(ECONFLICT, "Image status transition from %s to importing is not allowed", img.Status)
		}
		return img.SetStatus(StatusImporting, s.now())
	})
	if err != nil {
		t.end()
		return err
	}
	if !s.startImport(id, t, source) {
		// Closing began after the check above. The image stays importing:
		// at the next start RecoverUploads resumes a staged import and
		// queues a web-download again.
		t.end()
		return Errorf(ECONFLICT, "The server is shutting down; retry the import once it is back.")
	}
	s.audit(c, "import", id, "method", req.Method)
	return nil
}

// startImport moves an importing image's data from source into the blob
// store in the background, under the image's transfer t, and reports
// whether it started; if it did, it ends t when done.
//
// Once Close has begun no import starts: the image stays importing, and
// RecoverUploads resumes it at the next start if its data is staged.
//
// Deleting the image stops its import (see stopImport).
func (s *ImageService) startImport(id string, t *transfer,
	source func(context.Context) (io.ReadCloser, error)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.logger.Warn("import not started: the service is closing", "image", id)
		return false
	}
	ctx, cancel := context.WithCancel(s.bg)
	if s.running == nil {
		s.running = map[string]context.CancelFunc{}
	}
	s.running[id] = cancel
	s.imports.Add(1)
	go func() {
		defer s.imports.Done()
		defer t.end() // before Close returns
		bound, unbind := t.bind(ctx)
		err := s.importData(bound, t, source)
		unbind()
		// Read before cancel below, which would make it true: was the
		// import stopped (by a delete) rather than failed?
		stopped := ctx.Err() != nil
		s.mu.Lock()
		delete(s.running, id)
		s.mu.Unlock()
		cancel()
		var se *sourceError
		switch {
		case err == nil:
		case t.lostErr() != nil:
			// The image is the recovery's now, here or on another replica.
			s.logger.Warn("import stopped: its transfer lease was lost", "image", id)
		case s.bg.Err() != nil:
			// Stopped by Close: the image stays importing with its staged
			// data, and RecoverUploads resumes it at the next start.
			s.logger.Warn("import interrupted by shutdown", "image", id)
		case stopped:
			s.logger.Info("import stopped: the image was deleted", "image", id)
			s.unstage(s.bg, id, StatusImporting)
		case errors.As(err, &se):
			// The source's fault, not the server's: worth a warning only.
			s.logger.Warn("import failed; image returned to queued", "image", id, "err", err)
			s.unstage(s.bg, id, StatusImporting)
		default:
			s.logger.Error("import failed; image returned to queued", "image", id, "err", err)
			s.unstage(s.bg, id, StatusImporting)
		}
	}()
	return true
}

// stopImport cancels the import of the image with the given ID, if one is
// running here.
func (s *ImageService) stopImport(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cancel, ok := s.running[id]; ok {
		cancel()
	}
}

// sourceError is a failure of the place an import reads from: a URL that
// answers an error, a redirect to a host not allowed, a source that
// stalls or breaks off.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

func (s *ImageService) importData(ctx context.Context, t *transfer,
	source func(context.Context) (io.ReadCloser, error)) error {
	id := t.id
	src, err := source(ctx)
	if err != nil {
		return err
	}
	defer src.Close()
	img, err := s.images.Image(ctx, id)
	if err != nil {
		return err
	}
	qr, err := s.quotaReader(ctx, img, src)
	if err != nil {
		return err
	}
	hr := s.newHashingReader(qr, img.DiskFormat)
	size, err := s.blobs.Put(ctx, id, hr)
	if refused := hr.refusal(); refused != nil {
		return &sourceError{refused}
	} else if qr.refused != nil {
		return &sourceError{qr.refused}
	} else if hr.err != nil && ctx.Err() == nil {
		return &sourceError{hr.err}
	} else if err != nil {
		return err
	}
	if _, err := s.activate(ctx, t, StatusImporting, size, hr); ErrorCode(err) == ETOOLARGE {
		return &sourceError{err} // the data, not the server, is at fault
	} else if err != nil {
		return err
	}
	if err := s.blobs.Delete(context.WithoutCancel(ctx), stagingKey(id)); err != nil && ErrorCode(err) != ENOTFOUND {
		s.logger.Error("remove staged data of an imported image", "image", id, "err", err)
	}
	return nil
}

// checkImportURI returns the URL of a web-download if it is http or https
// on an allowed host.
func (s *ImageService) checkImportURI(uri string) (*url.URL, error) {
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, Errorf(EINVALID, "web-download needs an http or https URI, not %q", uri)
	}
	if !s.hostAllowed(u) {
		return nil, Errorf(EINVALID, "URI for web-download does not pass filtering: %s", u.Redacted())
	}
	return u, nil
}

// hostAllowed reports whether u's host, or host:port, is on the allow-list.
func (s *ImageService) hostAllowed(u *url.URL) bool {
	return slices.Contains(s.importHosts, u.Hostname()) || slices.Contains(s.importHosts, u.Host) ||
		slices.Contains(s.importHosts, net.JoinHostPort(u.Hostname(), u.Port()))
}

// importIdleTimeout is how long a web-download may go without receiving a
// byte before it is abandoned. A download may take as long as it needs
// while data flows.
const importIdleTimeout = time.Minute

// fetch GETs u, following redirects only to allowed hosts. The response
// body fails if the source sends nothing for importIdleTimeout.
func (s *ImageService) fetch(ctx context.Context, u *url.URL) (rc io.ReadCloser, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	idle := time.AfterFunc(s.importIdle, func() {
		cancel(fmt.Errorf("no data from %s for %s", u.Redacted(), s.importIdle))
	})
	defer func() {
		if err != nil {
			idle.Stop()
			cancel(nil)
			err = &sourceError{err}
		}
	}()
	client := *s.httpClient
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		if !s.hostAllowed(req.URL) {
			return fmt.Errorf("redirect to %s, which is not an allowed host", req.URL.Host)
		}
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", u.Redacted(), resp.Status)
	}
	return &idleBody{ctx: ctx, r: resp.Body, idle: idle, d: s.importIdle, cancel: cancel}, nil
}

// idleBody is a response body whose request is cancelled when no byte has
// come for d.
type idleBody struct {
	ctx    context.Context
	r      io.ReadCloser
	idle   *time.Timer
	d      time.Duration
	cancel context.CancelCauseFunc
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.idle.Reset(b.d)
	}
	if err != nil && err != io.EOF {
		if cause := context.Cause(b.ctx); cause != nil && b.ctx.Err() != nil {
			err = cause
		}
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.idle.Stop()
	b.cancel(nil)
	return b.r.Close()
}

// Close stops the imports running in the background and waits for them;
// an interrupted import's image returns to queued, or is resumed by
// RecoverUploads at the next start.
func (s *ImageService) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.stopBG()
	s.imports.Wait()
}

// errorReader remembers a read error of its source, so that a client
// that went away can be told from a store that failed.
type errorReader struct {
	r   io.Reader
	err error
	headInspector
}

func (c *errorReader) Read(p []byte) (int, error) {
	if c.unsafe != "" {
		return 0, errUnsafeData
	}
	n, err := c.r.Read(p)
	if !c.see(p[:n], err == io.EOF) {
		return n, errUnsafeData
	}
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}
