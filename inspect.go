package cloudimage

import (
	"crypto/md5"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"hash"
	"io"
)

// hashingReader hashes what it reads, keeps the first bytes for the format
// header, and remembers a read error of the source so that the service can
// tell a client that went away from a store that failed.
type hashingReader struct {
	r      io.Reader
	md5    hash.Hash
	sha512 hash.Hash
	err    error
	headInspector
}

const headSize = 512

func (s *ImageService) newHashingReader(r io.Reader) *hashingReader {
	return &hashingReader{r: r, md5: md5.New(), sha512: sha512.New(), headInspector: s.newInspector()}
}

// newInspector returns a headInspector with the service's size limit.
func (s *ImageService) newInspector() headInspector {
	return headInspector{head: make([]byte, 0, headSize), max: s.maxSize}
}

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

// headInspector keeps the first bytes of image data as they stream by and
// judges them with UnsafeReason as soon as enough have come, so that
// unsafe data is refused before the rest of it is stored.
//
// It also counts the bytes, and refuses data beyond max bytes (when max
// is positive).
type headInspector struct {
	head      []byte
	inspected bool   // the header has been judged
	unsafe    string // why the data is refused, if it is
	max, seen int64
}

// see takes the next bytes of the data, eof telling whether they are the
// last; it returns false once the data is refused.
func (h *headInspector) see(p []byte, eof bool) bool {
	if h.seen += int64(len(p)); h.max > 0 && h.seen > h.max {
		h.unsafe = errTooLargeReason
		return false
	}
	if k := min(len(p), headSize-len(h.head)); k > 0 {
		h.head = append(h.head, p[:k]...)
	}
	if !h.inspected && (len(h.head) >= qcow2HeaderSize || eof) {
		h.inspected = true
		h.unsafe = UnsafeReason(h.head)
	}
	return h.unsafe == ""
}

// errUnsafeData stops the store from taking data that UnsafeReason refuses.
var errUnsafeData = errors.New("unsafe image data")

// errTooLargeReason marks data refused for its size rather than its
// content.
const errTooLargeReason = "too large"

// refusal returns the error a caller gets for data h refused, or nil.
func (h *headInspector) refusal() error {
	switch h.unsafe {
	case "":
		return nil
	case errTooLargeReason:
		return Errorf(ETOOLARGE, "Image data is larger than the %d bytes an image may have.", h.max)
	}
	return Errorf(EINVALID, "Image data refused: %s, which would let a guest read the host's files.", h.unsafe)
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
