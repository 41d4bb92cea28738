package cloudimage

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math"
	"slices"
	"strings"
)

// A vhdx keeps its virtual size in its metadata region, which its region
// table (at 192 KiB, a copy at 256 KiB) locates anywhere in the file;
// the region's table of items locates the size within the region.
const (
	vhdxRegionTable  = 192 << 10
	vhdxRegionTable2 = 256 << 10
	vhdxMaxEntries   = 2047 // of a region or metadata table (64 KiB each)
	vhdxEntrySize    = 32
)

var (
	vhdxMetadataRegion = msGUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
	vhdxVirtualDiskSz  = msGUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
)

// msGUID returns the bytes of a GUID as Microsoft stores it: its first
// three fields little-endian.
func msGUID(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		panic("bad GUID " + s)
	}
	for _, r := range [][2]int{{0, 3}, {1, 2}, {4, 5}, {6, 7}} {
		b[r[0]], b[r[1]] = b[r[1]], b[r[0]]
	}
	return b
}

// vhdxSizeReader finds a vhdx's virtual size as its data streams by,
// keeping only the piece of the data it wants next (at most a 64 KiB
// table): the region table, then the metadata table, then the size.
// Data only moves forward, so a piece that lies before one already read
// is out of reach and the size stays unknown, as it does when the data
// ends first. Checksums are not verified.
type vhdxSizeReader struct {
	want int64  // offset of the piece wanted
	buf  []byte // of the piece, what has come; its capacity is its size
	next func(*vhdxSizeReader, []byte)
	done bool
	size *int64

	second   bool  // reading the copy of the region table
	metadata int64 // offset of the metadata region
}

func newVHDXSizeReader() *vhdxSizeReader {
	r := &vhdxSizeReader{}
	r.expect(vhdxRegionTable, 16, (*vhdxSizeReader).regionHeader)
	return r
}

// expect asks for n bytes at off, to be handed to next; a piece that
// starts before the end of the last one is out of reach.
func (r *vhdxSizeReader) expect(off int64, n int, next func(*vhdxSizeReader, []byte)) {
	if end := r.want + int64(cap(r.buf)); off < end || n <= 0 {
		r.done = true
		return
	}
	r.want, r.buf, r.next = off, make([]byte, 0, n), next
}

// feed takes the data p found at offset off; p follows what came before.
func (r *vhdxSizeReader) feed(off int64, p []byte) {
	for !r.done {
		pos := r.want + int64(len(r.buf)) // next byte wanted
		if pos < off {
			r.done = true // cannot happen: pieces only move forward
			return
		}
		if pos >= off+int64(len(p)) {
			return
		}
		i := int(pos - off)
		r.buf = append(r.buf, p[i:min(len(p), i+cap(r.buf)-len(r.buf))]...)
		if len(r.buf) < cap(r.buf) {
			return
		}
		r.next(r, r.buf)
	}
}

func (r *vhdxSizeReader) regionHeader(b []byte) {
	le := binary.LittleEndian
	if n := le.Uint32(b[8:12]); string(b[:4]) == "regi" && n > 0 && n <= vhdxMaxEntries {
		r.expect(r.want+16, int(n)*vhdxEntrySize, (*vhdxSizeReader).regionEntries)
		return
	}
	r.tryCopy()
}

// tryCopy turns to the copy of the region table, once.
func (r *vhdxSizeReader) tryCopy() {
	if r.second {
		r.done = true
		return
	}
	r.second = true
	r.expect(vhdxRegionTable2, 16, (*vhdxSizeReader).regionHeader)
}

func (r *vhdxSizeReader) regionEntries(b []byte) {
	for e := range slices.Chunk(b, vhdxEntrySize) {
		if bytes.Equal(e[:16], vhdxMetadataRegion) {
			off := binary.LittleEndian.Uint64(e[16:24])
			if off > math.MaxInt64 {
				break
			}
			r.metadata = int64(off)
			r.expect(r.metadata, 32, (*vhdxSizeReader).metadataHeader)
			return
		}
	}
	r.tryCopy()
}

func (r *vhdxSizeReader) metadataHeader(b []byte) {
	n := binary.LittleEndian.Uint16(b[10:12])
	if string(b[:8]) != "metadata" || n == 0 || n > vhdxMaxEntries {
		r.done = true
		return
	}
	r.expect(r.metadata+32, int(n)*vhdxEntrySize, (*vhdxSizeReader).metadataEntries)
}

func (r *vhdxSizeReader) metadataEntries(b []byte) {
	le := binary.LittleEndian
	for e := range slices.Chunk(b, vhdxEntrySize) {
		if bytes.Equal(e[:16], vhdxVirtualDiskSz) && le.Uint32(e[20:24]) >= 8 {
			r.expect(r.metadata+int64(le.Uint32(e[16:20])), 8, (*vhdxSizeReader).virtualSize)
			return
		}
	}
	r.done = true
}

func (r *vhdxSizeReader) virtualSize(b []byte) {
	r.done = true
	if v := binary.LittleEndian.Uint64(b); v <= math.MaxInt64 {
		n := int64(v)
		r.size = &n
	}
}
