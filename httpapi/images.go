package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudimage/cloudimage"
)

// The OpenStack Image API v2 face (Glance's shapes and statuses): images
// here, the list in list.go, PATCH in patch.go, version discovery and
// schemas in versions.go and schemas.go.

func (s *Server) imageRoutes(mux *routeMux) {
	s.versionRoutes(mux)
	s.schemaRoutes(mux)
	mux.Handle("GET /v2/images", s.image(s.listImages))
	mux.Handle("POST /v2/images", s.image(s.createImage))
	mux.Handle("GET /v2/images/{id}", s.image(s.showImage))
	mux.Handle("PATCH /v2/images/{id}", s.image(s.updateImage))
	mux.Handle("DELETE /v2/images/{id}", s.image(s.deleteImage))
	mux.Handle("PUT /v2/images/{id}/file", s.image(s.uploadImage))
	mux.Handle("GET /v2/images/{id}/file", s.image(s.downloadImage))
}

// image adapts a v2 handler that returns an error.
func (s *Server) image(h func(http.ResponseWriter, *http.Request, *cloudimage.Caller) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := s.identity.Validate(r.Context(), r.Header.Get("X-Auth-Token"))
		if err == nil {
			err = h(w, r, t.Caller())
		}
		if err != nil {
			s.writeImageError(w, r, err)
		}
	})
}

// v2Time is the v2 time format: RFC 3339 in UTC, whole seconds.
const v2Time = "2006-01-02T15:04:05Z"

// v2Image returns the Glance v2 representation of img: the core
// attributes, then every extra property as a top-level string. It is the
// definition of the object; responses are written by appendV2Image
// (v2encode.go), which its tests hold to json.Marshal of this map.
func v2Image(img *cloudimage.Image) map[string]any {
	m := make(map[string]any, 22+len(img.Properties))
	for k, v := range img.Properties {
		m[k] = v
	}
	tags := img.Tags
	if tags == nil {
		tags = []string{}
	}
	m["id"] = img.ID
	m["name"] = nullString(img.Name) // Glance's name is null until one is given
	m["status"] = img.Status
	m["visibility"] = img.Visibility
	m["protected"] = img.Protected
	m["os_hidden"] = img.Hidden
	m["disk_format"] = nullString(img.DiskFormat)
	m["container_format"] = nullString(img.ContainerFormat)
	m["min_disk"] = img.MinDisk
	m["min_ram"] = img.MinRAM
	m["size"] = img.Size
	m["virtual_size"] = img.VirtualSize
	m["checksum"] = nullString(img.Checksum)
	m["os_hash_algo"] = nullString(img.HashAlgo)
	m["os_hash_value"] = nullString(img.HashValue)
	m["owner"] = img.Owner
	m["tags"] = tags
	m["created_at"] = img.CreatedAt.UTC().Format(v2Time)
	m["updated_at"] = img.UpdatedAt.UTC().Format(v2Time)
	m["self"] = "/v2/images/" + img.ID
	m["file"] = "/v2/images/" + img.ID + "/file"
	m["schema"] = "/v2/schemas/image"
	return m
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// readOnlyAttributes may be read but never set by a caller.
var readOnlyAttributes = map[string]bool{
	"status": true, "size": true, "virtual_size": true, "checksum": true, "os_hash_algo": true,
	"os_hash_value": true, "owner": true, "created_at": true, "updated_at": true, "self": true,
	"file": true, "schema": true, "direct_url": true,
}

// parseImageCreate reads a POST /v2/images body: the core attributes with
// their JSON types checked, and every other key as a string property.
func parseImageCreate(body []byte) (cloudimage.ImageCreate, error) {
	var in cloudimage.ImageCreate
	var raw map[string]json.RawMessage
	if !utf8.Valid(body) {
		// encoding/json would quietly turn bad bytes into U+FFFD.
		return in, cloudimage.Errorf(cloudimage.EINVALID, "Malformed JSON in request body: it is not UTF-8.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil || raw == nil || trailingData(dec) {
		return in, cloudimage.Errorf(cloudimage.EINVALID, "Malformed JSON in request body.")
	}
	field := func(key string, dst any) error {
		v := raw[key]
		if v == nil || string(v) == "null" {
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return cloudimage.Errorf(cloudimage.EINVALID,
				"Provided object does not match schema 'image': %s has the wrong type", key)
		}
		return nil
	}
	var visibility string
	core := map[string]any{
		"id": &in.ID, "name": &in.Name, "disk_format": &in.DiskFormat,
		"container_format": &in.ContainerFormat, "min_disk": &in.MinDisk, "min_ram": &in.MinRAM,
		"protected": &in.Protected, "os_hidden": &in.Hidden, "visibility": &visibility,
		"tags": &in.Tags,
	}
	for key, v := range raw {
		if readOnlyAttributes[key] {
			return in, cloudimage.Errorf(cloudimage.EFORBIDDEN, "Attribute '%s' is read-only.", key)
		}
		if dst, ok := core[key]; ok {
			if err := field(key, dst); err != nil {
				return in, err
			}
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil || string(v) == "null" {
			return in, cloudimage.Errorf(cloudimage.EINVALID,
				"Provided object does not match schema 'image': %s is not of type 'string'", key)
		}
		if in.Properties == nil {
			in.Properties = map[string]string{}
		}
		in.Properties[key] = s
	}
	in.Visibility = cloudimage.Visibility(visibility)
	return in, nil
}

func (s *Server) createImage(w http.ResponseWriter, r *http.Request, c *cloudimage.Caller) error {
	body, err := io.ReadAll(limitedBody(w, r))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return cloudimage.Errorf(cloudimage.ETOOLARGE, "request body is larger than %d bytes", maxBodyBytes)
		}
		return cloudimage.Errorf(cloudimage.EINVALID, "Error reading request body.")
	}
	in, err := parseImageCreate(body)
	if err != nil {
		return err
	}
	img, err := s.images.Create(r.Context(), c, in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", s.publicURL+"/v2/images/"+img.ID)
	w.Header().Set("OpenStack-Image-Import-Methods", strings.Join(s.images.ImportMethods(), ","))
	writeV2Image(w, http.StatusCreated, img)
	return nil
}

func (s *Server) showImage(w http.ResponseWriter, r *http.Request, c *cloudimage.Caller) error {
	img, err := s.images.Get(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeV2Image(w, http.StatusOK, img)
	return nil
}

func (s *Server) deleteImage(w http.ResponseWriter, r *http.Request, c *cloudimage.Caller) error {
	if err := s.images.Delete(r.Context(), c, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// uploadImage streams the request body into the image: it is never held
// in memory whole, whether it comes with a Content-Length or chunked.
func (s *Server) uploadImage(w http.ResponseWriter, r *http.Request, c *cloudimage.Caller) error {
	if err := requireOctetStream(r); err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	defer rc.SetReadDeadline(time.Time{}) // the connection may serve more requests
	body := &idleReader{r: r.Body, rc: rc}
	if _, err := s.images.Upload(r.Context(), c, r.PathValue("id"), body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// downloadImage sends the image's data; Range requests are answered with
// 206 or 416. An image without data yet answers 204.
func (s *Server) downloadImage(w http.ResponseWriter, r *http.Request, c *cloudimage.Caller) error {
	img, data, err := s.images.Download(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	if data == nil {
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	defer data.Close()
	size, err := data.Seek(0, io.SeekEnd)
	if err == nil {
		_, err = data.Seek(0, io.SeekStart)
	}
	if err != nil {
		return fmt.Errorf("size of image %s data: %w", img.ID, err)
	}
	if rg := r.Header.Get("Range"); rg != "" {
		r.Header.Set("Range", satisfiableRanges(rg, size))
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", strconv.Quote(img.Checksum))
	rc := http.NewResponseController(w)
	defer rc.SetWriteDeadline(time.Time{}) // the connection may serve more requests
	dw := &downloadWriter{ResponseWriter: w, rc: rc, md5: img.Checksum, size: size, unsatisfiable: func(w http.ResponseWriter) {
		s.writeImageError(w, r, errStatus(http.StatusRequestedRangeNotSatisfiable,
			"The requested range is not satisfiable: the image data is %d bytes long.", size))
	}}
	http.ServeContent(dw, r, "", time.Time{}, data)
	return nil
}

// satisfiableRanges drops the suffix ranges of length zero ("bytes=-0")
// from a Range header: RFC 9110 calls them unsatisfiable, but net/http
// would answer them with an empty 206. When no range is left, the header
// becomes one that starts at the end of the data, which net/http answers
// with 416 (and still ignores when If-Range says the data changed);
// downloadWriter then writes that 416 as every other one.
func satisfiableRanges(header string, size int64) string {
	specs, ok := strings.CutPrefix(header, "bytes=")
	if !ok {
		return header
	}
	var kept []string
	dropped := false
	for spec := range strings.SplitSeq(specs, ",") {
		start, end, _ := strings.Cut(strings.TrimSpace(spec), "-")
		n, err := strconv.ParseInt(strings.TrimSpace(end), 10, 64)
		if strings.TrimSpace(start) == "" && err == nil && n == 0 {
			dropped = true
			continue
		}
		kept = append(kept, spec)
	}
	switch {
	case !dropped:
		return header
	case len(kept) == 0:
		return "bytes=" + strconv.FormatInt(size, 10) + "-"
	}
	return "bytes=" + strings.Join(kept, ",")
}

// downloadWriter adds Content-MD5 to a 200 response: Glance's clients
// read it as the md5 of the whole image, so a 206 or 416 must not carry
// it. It also answers every 416 of http.ServeContent (a range past the
// end, a malformed one, and those satisfiableRanges turned into one) in
// the face's own format, with the Content-Range RFC 9110 asks for, in
// place of net/http's plain-text body. The 416 is recognised only once
// ServeContent has weighed the preconditions and If-Range, so that a
// stale If-Range still gets the whole image.
//
// Each write must go out within transferIdleTimeout: a client that stops
// reading must not hold its connection and the image's data open for ever.
type downloadWriter struct {
	http.ResponseWriter
	rc            *http.ResponseController
	md5           string
	size          int64
	unsatisfiable func(http.ResponseWriter) // writes the 416
	wroteHeader   bool
	discard       bool // net/http's own 416 body, which is dropped
}

func (w *downloadWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	switch {
	case code == http.StatusRequestedRangeNotSatisfiable:
		w.discard = true
		h := w.Header()
		h.Del("Content-Length")
		h.Set("Content-Range", "bytes */"+strconv.FormatInt(w.size, 10))
		w.unsatisfiable(w.ResponseWriter)
		return
	case code == http.StatusOK && w.md5 != "":
		w.Header().Set("Content-MD5", w.md5)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *downloadWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.discard {
		return len(b), nil
	}
	// Writers that cannot set deadlines (in tests) are written as they are.
	_ = w.rc.SetWriteDeadline(time.Now().Add(transferIdleTimeout))
	return w.ResponseWriter.Write(b)
}

// sendChunk is how much of a download goes out under one write deadline
// when it is sent with sendfile: a client must take at least this much
// every transferIdleTimeout.
const sendChunk = 256 << 10

// ReadFrom keeps net/http's sendfile path (through recorder.ReadFrom to
// the connection) for the body http.ServeContent copies, which is the
// image's file under an io.LimitedReader. The file goes out sendChunk
// bytes at a time, each under a fresh write deadline, as Write's would.
func (w *downloadWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.discard {
		return io.Copy(io.Discard, src)
	}
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	if !ok {
		return io.Copy(writeOnly{w}, src)
	}
	// Unwrap ServeContent's limit, so that each chunk is one
	// io.LimitedReader around the file, which is what sendfile takes.
	r, remain := src, int64(-1)
	if lr, ok := src.(*io.LimitedReader); ok {
		r, remain = lr.R, lr.N
		defer func() { lr.N = remain }()
	}
	var total int64
	for remain != 0 {
		n := int64(sendChunk)
		if remain > 0 && remain < n {
			n = remain
		}
		_ = w.rc.SetWriteDeadline(time.Now().Add(transferIdleTimeout))
		m, err := rf.ReadFrom(&io.LimitedReader{R: r, N: n})
		total += m
		if remain > 0 {
			remain -= m
		}
		if err != nil {
			return total, err
		}
		if m < n { // the end of the source
			break
		}
	}
	return total, nil
}

// writeOnly hides a writer's ReadFrom, so that io.Copy calls its Write.
type writeOnly struct{ io.Writer }

// Unwrap lets http.ResponseController reach the connection.
func (w *downloadWriter) Unwrap() http.ResponseWriter {
	return w.ResponseWriter
}

// transferIdleTimeout is how long an upload may go without receiving a
// byte, or a download without sending one, before it is abandoned: a
// stalled client must not hold its image in saving, its connection, or a
// shutdown, for ever.
const transferIdleTimeout = 60 * time.Second

// idleReader moves the connection's read deadline forward before each read.
type idleReader struct {
	r  io.Reader
	rc *http.ResponseController
}

func (ir *idleReader) Read(p []byte) (int, error) {
	// Writers that cannot set deadlines (in tests) are read as they are.
	_ = ir.rc.SetReadDeadline(time.Now().Add(transferIdleTimeout))
	return ir.r.Read(p)
}
