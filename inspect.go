package cloudimage

import (
	"crypto/md5"
	"crypto/sha512"
	"errors"
	"hash"
	"io"
	"sync"
	"sync/atomic"
)

// hashingReader hashes what it reads, inspects the data's format as it
// streams (see headInspector), and remembers a read error of the source
// so that the service can tell a client that went away from a store that
// failed.
type hashingReader struct {
	r      io.Reader
	md5    hash.Hash
	sha512 hash.Hash
	err    error
	headInspector
}

// tailSize is how many of the last bytes of the data an inspector keeps:
// a stream-optimized vmdk ends with a footer marker, its footer and an
// end-of-stream marker, a sector each; a VHD ends with its 512-byte footer.
const tailSize = 3 * 512

func (s *ImageService) newHashingReader(r io.Reader, diskFormat string) *hashingReader {
	return &hashingReader{r: r, md5: md5.New(), sha512: sha512.New(), headInspector: s.newInspector(diskFormat)}
}

// WithRequireFormatMatch sets whether image data must be in the format
// its image's disk_format declares (see formatAccepts), as detected from
// its header; data that is not is refused with EINVALID. It is on by
// default. Unsafe data (see UnsafeReason) is refused either way.
func WithRequireFormatMatch(on bool) ServiceOption {
	return func(s *ImageService) { s.allowFormatMismatch = !on }
}

// newInspector returns a headInspector for data of an image whose
// disk_format is diskFormat, with the service's size limit and format
// rule.
func (s *ImageService) newInspector(diskFormat string) headInspector {
	return headInspector{head: make([]byte, 0, UnsafeHeadSize), tail: make([]byte, 0, tailSize),
		max: s.maxSize, declared: diskFormat, check: !s.allowFormatMismatch}
}

// Read hashes in the caller's goroutine, md5 then sha512; WriteTo, which
// io.Copy prefers, hashes both at once.
func (h *hashingReader) Read(p []byte) (int, error) {
	if h.unsafe != "" {
		return 0, errUnsafeData
	}
	n, err := h.r.Read(p)
	if n > 0 {
		h.md5.Write(p[:n])
		h.sha512.Write(p[:n])
	}
	if !h.see(p[:n], err == io.EOF) {
		return n, errUnsafeData
	}
	if err != nil && err != io.EOF {
		h.err = err
	}
	return n, err
}

// hashChunkSize is the size of the chunks WriteTo hands its hashers, and
// hashChunks how many it has: while the hashers work on some, the source
// is read into another. One upload holds hashChunks*hashChunkSize bytes,
// whatever its size.
const (
	hashChunkSize = 1 << 20
	hashChunks    = 4
)

// hashChunk is a buffer of WriteTo's, back in its pool once both hashers
// are done with it.
type hashChunk struct {
	buf     [hashChunkSize]byte
	n       int
	pending atomic.Int32
}

// hashChunkPool keeps chunks between uploads.
var hashChunkPool = sync.Pool{New: func() any { return new(hashChunk) }}

// WriteTo copies the data to w, hashing and inspecting it as Read does,
// with md5 and sha512 each in a goroutine of its own, so that both hashes
// and the writes run at once. The source is read straight into a chunk
// and each read is inspected and written at once, as with Read; a chunk
// goes to the hashers once full (or at the end), in order. WriteTo
// returns only once the hashers are done, so the hashes are complete
// when it returns nil, and nothing is left running when it fails.
func (h *hashingReader) WriteTo(w io.Writer) (written int64, err error) {
	if h.unsafe != "" {
		return 0, errUnsafeData
	}
	free := make(chan *hashChunk, hashChunks)
	for range hashChunks {
		free <- hashChunkPool.Get().(*hashChunk)
	}
	var wg sync.WaitGroup
	var work [2]chan *hashChunk
	for i, sum := range []hash.Hash{h.md5, h.sha512} {
		work[i] = make(chan *hashChunk, hashChunks)
		wg.Go(func() {
			for c := range work[i] {
				sum.Write(c.buf[:c.n])
				if c.pending.Add(-1) == 0 {
					free <- c
				}
			}
		})
	}
	defer func() {
		close(work[0])
		close(work[1])
		wg.Wait()
		// Every chunk is back, but one this goroutine held if the
		// source or w panicked: that one is left to the collector.
		for len(free) > 0 {
			hashChunkPool.Put(<-free)
		}
	}()
	for {
		c := <-free
		c.n = 0
		n, done, err := h.fill(c, w)
		written += n
		if c.n > 0 {
			c.pending.Store(2)
			work[0] <- c
			work[1] <- c
		} else {
			free <- c
		}
		if done {
			return written, err
		}
	}
}

// headReadSize is the most WriteTo reads at a time while the head of the
// data is still coming: as much as io.Copy reads through Read, so that
// data refused for its head is refused as early.
const headReadSize = 32 << 10

// fill reads the source into c until c is full, writing each read to w
// once inspected. It returns the bytes written, and done with WriteTo's
// result once the copy is over. Reads are no larger than headReadSize
// while the inspector still takes the head, and go no further than one
// byte past the size limit.
func (h *hashingReader) fill(c *hashChunk, w io.Writer) (written int64, done bool, err error) {
	for c.n < len(c.buf) {
		want := len(c.buf) - c.n
		if len(h.head) < cap(h.head) {
			want = min(want, headReadSize)
		}
		if h.max > 0 {
			want = int(min(int64(want), h.max-h.seen+1))
		}
		n, rerr := h.r.Read(c.buf[c.n : c.n+want])
		p := c.buf[c.n : c.n+n]
		c.n += n
		if !h.see(p, rerr == io.EOF) {
			return written, true, errUnsafeData
		}
		if rerr != nil && rerr != io.EOF {
			h.err = rerr
		}
		if n > 0 {
			k, werr := w.Write(p)
			if written += int64(k); werr == nil && k < n {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return written, true, werr
			}
		}
		if rerr == io.EOF {
			return written, true, nil
		} else if rerr != nil {
			return written, true, rerr
		}
	}
	return written, false, nil
}

// headInspector judges image data as it streams by, so that data it
// refuses is refused before the rest of it is stored:
//   - data that UnsafeReason refuses, as soon as enough of the head has
//     come (80 bytes, or a sparse vmdk's descriptor);
//   - when check is on, data whose format differs from the declared one
//     (see formatAccepts), once that is judged: as soon as the head shows
//     a format's magic, or 32 KiB of it show none (an ISO's mark is
//     there); raw data declared raw or vhd only at its end, since a fixed
//     VHD's footer is its last 512 bytes;
//   - data beyond max bytes (when max is positive).
//
// It also reads the virtual size the data's header gives (virtualSize).
// Its memory is bounded whatever the data: the first UnsafeHeadSize
// bytes, the last tailSize, and for a vhdx one table of at most 64 KiB at
// a time.
type headInspector struct {
	head      []byte
	tail      []byte
	inspected bool   // UnsafeReason has judged the head
	unsafe    string // why the data is refused, if it is
	max, seen int64

	declared   string // the image's disk_format
	check      bool   // refuse data not in the declared format
	headFormat string // the format the head shows, once it is known
	format     string // the format of the data, once all of it has come
	settled    bool   // the format check is done
	mismatch   string // the format of data refused for it
	vhdx       *vhdxSizeReader
}

// see takes the next bytes of the data, eof telling whether they are the
// last; it returns false once the data is refused.
func (h *headInspector) see(p []byte, eof bool) bool {
	off := h.seen
	if h.seen += int64(len(p)); h.max > 0 && h.seen > h.max {
		h.unsafe = errTooLargeReason
		return false
	}
	if k := min(len(p), cap(h.head)-len(h.head)); k > 0 {
		h.head = append(h.head, p[:k]...)
	}
	h.keepTail(p)
	if h.headFormat == "" {
		if f := DetectDiskFormat(h.head); f != "raw" || len(h.head) >= DetectHeaderSize || eof {
			h.headFormat = f
		}
		if h.headFormat == "vhdx" {
			h.vhdx = newVHDXSizeReader()
		}
	}
	if h.vhdx != nil {
		h.vhdx.feed(off, p)
	}
	if !h.inspected && (len(h.head) >= unsafeNeed(h.head) || eof) {
		h.inspected = true
		if h.unsafe = UnsafeReason(h.head); h.unsafe != "" {
			return false
		}
	}
	if eof {
		h.format = DetectDiskFormatEnds(h.head, h.tail)
	}
	// After UnsafeReason, so that unsafe data is refused as unsafe
	// however it streams.
	if h.inspected {
		h.checkFormat(eof)
	}
	return h.unsafe == ""
}

// keepTail keeps the last tailSize bytes seen.
func (h *headInspector) keepTail(p []byte) {
	if len(p) >= tailSize {
		h.tail = append(h.tail[:0], p[len(p)-tailSize:]...)
		return
	}
	if drop := len(h.tail) + len(p) - tailSize; drop > 0 {
		h.tail = append(h.tail[:0], h.tail[drop:]...)
	}
	h.tail = append(h.tail, p...)
}

// checkFormat refuses data not in the declared format, once that is
// known (see headInspector).
func (h *headInspector) checkFormat(eof bool) {
	if h.settled || !h.check || !formatChecked(h.declared) || h.headFormat == "" {
		return
	}
	got := h.headFormat
	if got == "raw" && (h.declared == "raw" || h.declared == "vhd") {
		if !eof {
			return
		}
		got = h.format
	}
	h.settled = true
	if !formatAccepts(h.declared, got) {
		h.mismatch = got
		h.unsafe = "format mismatch"
	}
}

// errUnsafeData stops the store from taking data that the inspector
// refuses.
var errUnsafeData = errors.New("unsafe image data")

// errTooLargeReason marks data refused for its size rather than its
// content.
const errTooLargeReason = "too large"

// refusal returns the error a caller gets for data h refused, or nil.
func (h *headInspector) refusal() error {
	switch {
	case h.unsafe == "":
		return nil
	case h.unsafe == errTooLargeReason:
		return Errorf(ETOOLARGE, "Image data is larger than the %d bytes an image may have.", h.max)
	case h.mismatch != "":
		return errFormatMismatch(h.mismatch, h.declared)
	}
	return Errorf(EINVALID, "Image data refused: %s, which would let a guest read the host's files.", h.unsafe)
}

// virtualSize returns the size a guest sees of all the data, stored as
// an image of diskFormat, size bytes long: the data's own size for raw;
// for the other formats with a header that tells (qcow2, vmdk, vhd, vhdx,
// vdi, iso) the header's, if the data is in that format; nil where it is
// not known. A vhdx whose metadata region comes before its region table
// (the data has passed it when the table tells where it is), or an ISO
// whose primary volume descriptor is not among the first four of its
// set, has no size known here.
func (h *headInspector) virtualSize(diskFormat string, size int64) *int64 {
	switch {
	case diskFormat == "raw":
		return &size
	case h.format != diskFormat:
		return nil
	case diskFormat == "vhdx":
		if h.vhdx == nil {
			return nil
		}
		return h.vhdx.size
	}
	return headerVirtualSize(diskFormat, h.head, h.tail)
}
