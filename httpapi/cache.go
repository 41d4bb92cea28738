package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"net/http"
	"strconv"

	"github.com/cloudimage/cloudimage"
)

// The page cache keeps the bodies of list responses, so that a list asked
// again by the same caller, with the same query, while nothing in the
// catalog has changed, is answered from memory: no query, no encoding.
// Clients poll lists (dashboards, Terraform refreshes, image pickers), and
// the first page is the one asked for most.
//
// It is exact, not a time-to-live: an entry is filed under the store's
// version (cloudimage.Versioner) read before the list was, and any change
// committed to the store since then, by this replica or another process,
// makes it unreachable. A store that is not a Versioner gets no page
// cache.

// DefaultPageCacheBytes is the size of the page cache unless configured
// otherwise: a few hundred first pages of 100 images.
const DefaultPageCacheBytes = 16 << 20

// maxCachedPage is the largest body kept: a v2 page of 200 images, five
// v1.0 pages of 100. Larger lists (no limit over a big catalog) stream as
// before; a request holds at most this much of its body aside.
const maxCachedPage = 256 << 10

// pageEntryOverhead is what an entry costs beyond its body: its key and
// its slot in the map.
const pageEntryOverhead = sha256.Size + 96

// jsonContentType is the content type of every list response.
const jsonContentType = "application/json; charset=UTF-8"

// cachedList answers r from the page cache when it holds the page for
// this caller and query at the store's current version, and otherwise
// has render write it, keeping a copy of the body when render succeeds
// with 200 and the body is small enough.
func (s *Server) cachedList(w http.ResponseWriter, r *http.Request, c *cloudimage.Caller,
	render func(http.ResponseWriter) error) error {
	if s.pages == nil {
		return render(w)
	}
	v, err := cloudimage.ReadVersion(r.Context(), s.versions)
	if err != nil {
		// Nothing read now could be filed under a version; the store is
		// asked anyway, and says for itself what is wrong.
		return render(w)
	}
	key := pageKey(r, c)
	if body, ok := s.pages.Get(v, key); ok {
		w.Header().Set("Content-Type", jsonContentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body) // a client gone by now cannot be told anything
		return nil
	}
	rec := &pageRecorder{ResponseWriter: w, max: s.pages.MaxCost()}
	if err := render(rec); err != nil {
		return err
	}
	if rec.keep() {
		s.pages.Put(v, key, bytes.Clone(rec.body.Bytes()), rec.body.Len()+pageEntryOverhead)
	}
	return nil
}

// pageKey is what a list response depends on besides the store: the
// path (with the v1.0 appkey), the query as sent, and who asks. It is the
// SHA-256 of those, each with its length before it, so that every key
// has the same small size however long the query (which a client may pad
// with parameters the list ignores) and no two differ only in where one
// part ends.
func pageKey(r *http.Request, c *cloudimage.Caller) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	field := func(s string) {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		io.WriteString(h, s)
	}
	for _, s := range []string{r.URL.Path, r.URL.RawQuery, c.UserID, c.ProjectID} {
		field(s)
	}
	for _, role := range c.Roles {
		field(string(role))
	}
	return string(h.Sum(nil))
}

// pageRecorder passes a response through and keeps a copy of its body,
// up to max bytes, when its status is 200.
type pageRecorder struct {
	http.ResponseWriter
	max      int
	body     bytes.Buffer
	status   int
	overflow bool
}

func (p *pageRecorder) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
	p.ResponseWriter.WriteHeader(status)
}

func (p *pageRecorder) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	n, err := p.ResponseWriter.Write(b)
	if err != nil {
		// A body the client did not get whole is not kept.
		p.overflow = true
	}
	if !p.overflow {
		if p.body.Len()+n > p.max {
			p.overflow = true
			p.body = bytes.Buffer{}
		} else {
			p.body.Write(b[:n])
		}
	}
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (p *pageRecorder) Unwrap() http.ResponseWriter {
	return p.ResponseWriter
}

// keep reports whether the body recorded is a whole 200 response worth
// keeping.
func (p *pageRecorder) keep() bool {
	return p.status == http.StatusOK && !p.overflow && p.body.Len() > 0 &&
		p.Header().Get("Content-Type") == jsonContentType
}
