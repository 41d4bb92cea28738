package cloudimage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
)

// DetectHeaderSize is how many leading bytes DetectDiskFormat needs to see
// to recognise every format it knows (an ISO's volume descriptor sits at
// 32 KiB).
const DetectHeaderSize = 0x8001 + 5

// VHDFooterSize is the size of a VHD footer. A fixed VHD has it only as
// its last bytes; a dynamic one also has a copy as its first.
const VHDFooterSize = 512

// UnsafeHeadSize is how many leading bytes UnsafeReason reads at most: a
// vmdk's descriptor must end within them to be checked.
const UnsafeHeadSize = isoDescriptors + 4*isoSector

// qcow2HeaderSize is how much of a qcow2 header UnsafeReason reads: up to
// and including the incompatible-features field of version 3. It covers
// the vmdk sparse header's fields too.
const qcow2HeaderSize = 80

// Where ISO 9660 keeps its volume descriptors, each one sector long.
const (
	isoDescriptors = 0x8000
	isoSector      = 2048
)

// UnsafeReason says why the image data whose first bytes are head must
// not be served to a hypervisor, or returns "" if nothing is wrong with
// it. Images that make the hypervisor open a file of the host's choosing
// let the guest read that file, so they are refused whatever disk_format
// says:
//   - a qcow2 image that names a backing file or an external data file;
//   - a vmdk descriptor file, whose extents are other files;
//   - a sparse vmdk (KDMV, or hosted COWD) that names a parent
//     (parentFileNameHint) in the text at byte 512, where QEMU looks for
//     one, or in its embedded descriptor;
//   - a KDMV whose embedded descriptor is of a type other than
//     monolithicSparse or streamOptimized, or names an extent by a path,
//     or whose header leaves its capacity to the descriptor's extents
//     (QEMU then opens those);
//   - a KDMV whose descriptor does not start and end (with a NUL) within
//     the first UnsafeHeadSize bytes, where it cannot be checked.
//
// head must hold UnsafeHeadSize bytes, or all of the data if it is
// shorter; data too short to hold a field in question cannot point
// anywhere, being no image a hypervisor would open.
func UnsafeReason(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte("QFI\xfb")):
		return unsafeQcow2(head)
	case bytes.HasPrefix(head, []byte(vmdkDescriptorMagic)):
		return "the data is a vmdk descriptor, whose extents are other files"
	case bytes.HasPrefix(head, []byte("KDMV")), bytes.HasPrefix(head, []byte("COWD")):
		return unsafeVMDK(head)
	}
	return ""
}

func unsafeQcow2(head []byte) string {
	if len(head) < 16 {
		return ""
	}
	be := binary.BigEndian
	if be.Uint64(head[8:16]) != 0 {
		return "the data is a qcow2 image with a backing file"
	}
	// Version 3 adds feature bits; bit 2 of the incompatible ones is an
	// external data file.
	if be.Uint32(head[4:8]) >= 3 && len(head) >= qcow2HeaderSize && be.Uint64(head[72:80])&(1<<2) != 0 {
		return "the data is a qcow2 image with an external data file"
	}
	return ""
}

const vmdkDescriptorMagic = "# Disk DescriptorFile"

// vmdkParentDesc is where QEMU looks for a sparse vmdk's parent, whatever
// the header says: a NUL-terminated text from byte 512, of at most 20
// sectors.
const (
	vmdkParentDesc    = 512
	vmdkParentDescMax = 20 * 512
)

func unsafeVMDK(head []byte) string {
	// QEMU searches this text for a parent in both sparse formats.
	text, _ := cString(head, vmdkParentDesc, vmdkParentDesc+vmdkParentDescMax)
	if strings.Contains(text, "parentFileNameHint") {
		return "the data is a vmdk image with a parent (backing) file"
	}
	if !bytes.HasPrefix(head, []byte("KDMV")) || len(head) < qcow2HeaderSize {
		return ""
	}
	le := binary.LittleEndian
	descOff := le.Uint64(head[28:36])
	if descOff == 0 {
		return ""
	}
	if descOff >= UnsafeHeadSize/512 {
		return "the data is a vmdk image whose descriptor lies too deep to be checked"
	}
	desc, ended := cString(head, int(descOff)*512, UnsafeHeadSize)
	if !ended && len(head) >= UnsafeHeadSize {
		// No NUL within the bytes kept: QEMU would read on.
		return "the data is a vmdk image whose descriptor is too long to be checked"
	}
	if le.Uint64(head[12:20]) == 0 {
		return "the data is a vmdk image that leaves its extents to its descriptor"
	}
	return unsafeVMDKDescriptor(desc)
}

// unsafeVMDKDescriptor judges the descriptor embedded in a sparse vmdk.
func unsafeVMDKDescriptor(desc string) string {
	if strings.Contains(desc, "parentFileNameHint") {
		return "the data is a vmdk image with a parent (backing) file"
	}
	for line := range strings.Lines(desc) {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "createType"); ok {
			v = strings.Trim(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), "=")), `"`)
			if v != "monolithicSparse" && v != "streamOptimized" {
				return fmt.Sprintf("the data is a vmdk image of type %q, whose extents are other files", v)
			}
		}
		// An extent: access, size in sectors, type, "file name".
		f := strings.Fields(line)
		if len(f) >= 4 && slices.Contains([]string{"RW", "RDONLY", "NOACCESS"}, f[0]) &&
			strings.ContainsAny(line, `/\`) {
			return "the data is a vmdk image with an extent in another file"
		}
	}
	return ""
}

// unsafeNeed returns how many leading bytes UnsafeReason needs to judge
// data that starts with head: it gives the same answer for any longer
// head. A result above len(head) asks for more.
func unsafeNeed(head []byte) int {
	if len(head) < qcow2HeaderSize {
		return qcow2HeaderSize
	}
	if !bytes.HasPrefix(head, []byte("KDMV")) && !bytes.HasPrefix(head, []byte("COWD")) {
		return qcow2HeaderSize
	}
	// A text ends at its first NUL, or at its limit.
	textEnd := func(off, end int) int {
		if off < len(head) {
			if i := bytes.IndexByte(head[off:min(end, len(head))], 0); i >= 0 {
				return off + i + 1
			}
		}
		return end
	}
	need := textEnd(vmdkParentDesc, vmdkParentDesc+vmdkParentDescMax)
	if descOff := binary.LittleEndian.Uint64(head[28:36]); head[0] == 'K' && descOff != 0 &&
		descOff < UnsafeHeadSize/512 {
		need = max(need, textEnd(int(descOff)*512, UnsafeHeadSize))
	}
	return need
}

// cString returns the text of b from off up to its first NUL, looking no
// further than end, and whether it found the NUL.
func cString(b []byte, off, end int) (string, bool) {
	if off >= len(b) {
		return "", false
	}
	s := b[off:min(end, len(b))]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		return string(s[:i]), true
	}
	return string(s), false
}

// DetectDiskFormat guesses a disk format from the leading bytes of image
// data: qcow2, vmdk (sparse, hosted sparse or descriptor file), vhdx, vhd
// (dynamic or differencing: a copy of the footer at byte 0), vdi or iso
// (a volume descriptor at 32 KiB) from their magic numbers, and raw for
// anything else. A shorter head only recognises what fits in it; a
// format recognised stays so whatever follows. A fixed VHD has its
// footer only at the end: see DetectDiskFormatEnds.
func DetectDiskFormat(head []byte) string {
	at := func(off int, magic string) bool {
		return len(head) >= off+len(magic) && bytes.Equal(head[off:off+len(magic)], []byte(magic))
	}
	switch {
	case at(0, "QFI\xfb"):
		return "qcow2"
	case at(0, "KDMV"), at(0, "COWD"), at(0, vmdkDescriptorMagic):
		return "vmdk"
	case at(0, "vhdxfile"):
		return "vhdx"
	case at(0, "conectix"):
		return "vhd"
	case at(0x40, "\x7f\x10\xda\xbe"):
		return "vdi"
	case at(0x8001, "CD001"):
		return "iso"
	}
	return "raw"
}

// DetectDiskFormatEnds is DetectDiskFormat for data whose last bytes,
// tail, are known too: data that its head calls raw is a fixed VHD if its
// last VHDFooterSize bytes are a VHD footer (magic and checksum).
func DetectDiskFormatEnds(head, tail []byte) string {
	f := DetectDiskFormat(head)
	if f == "raw" && len(tail) >= VHDFooterSize && isVHDFooter(tail[len(tail)-VHDFooterSize:]) {
		return "vhd"
	}
	return f
}

// isVHDFooter reports whether b starts with a VHD footer: the magic and
// a checksum (the ones' complement of the sum of its other bytes) that
// matches.
func isVHDFooter(b []byte) bool {
	if len(b) < VHDFooterSize || !bytes.HasPrefix(b, []byte("conectix")) {
		return false
	}
	var sum uint32
	for i, c := range b[:VHDFooterSize] {
		if i < 64 || i >= 68 {
			sum += uint32(c)
		}
	}
	return ^sum == binary.BigEndian.Uint32(b[64:68])
}

// formatChecked reports whether data declared as diskFormat is checked
// against it (see formatAccepts): ami, ari, aki and ploop are not.
func formatChecked(diskFormat string) bool {
	switch diskFormat {
	case "raw", "iso", "qcow2", "vmdk", "vhd", "vhdx", "vdi":
		return true
	}
	return false
}

// formatAccepts reports whether data detected as format got may be
// stored as an image whose disk_format is declared. Declared raw accepts
// raw and iso data, since an ISO is a valid raw disk, but no other image
// format: a hypervisor that probes would take the data for that format.
// Every other checked format accepts its own data only. Formats that are
// not checked (see formatChecked) accept anything.
func formatAccepts(declared, got string) bool {
	return !formatChecked(declared) || declared == got || (declared == "raw" && got == "iso")
}

// headerVirtualSize returns the size a guest sees of data in format,
// read from its header (head, the first bytes) or its footer (tail, the
// last bytes), or nil when the header does not tell. A vhdx's size is in
// its metadata region, far from the head: see vhdxSizeReader.
func headerVirtualSize(format string, head, tail []byte) *int64 {
	le, be := binary.LittleEndian, binary.BigEndian
	field := func(b []byte, off int, get func([]byte) uint64, width int, unit uint64) *int64 {
		if len(b) < off+width {
			return nil
		}
		v := get(b[off : off+width])
		if v > math.MaxInt64/unit {
			return nil
		}
		n := int64(v * unit)
		return &n
	}
	u16 := func(b []byte) uint64 { return uint64(le.Uint16(b)) }
	u32 := func(b []byte) uint64 { return uint64(le.Uint32(b)) }
	switch format {
	case "qcow2":
		return field(head, 24, be.Uint64, 8, 1)
	case "vmdk":
		return vmdkVirtualSize(head, tail)
	case "vhd":
		// The current size, of the copy at the start or of the footer.
		if DetectDiskFormat(head) == "vhd" {
			return field(head, 48, be.Uint64, 8, 1)
		}
		if len(tail) >= VHDFooterSize && isVHDFooter(tail[len(tail)-VHDFooterSize:]) {
			return field(tail[len(tail)-VHDFooterSize:], 48, be.Uint64, 8, 1)
		}
	case "vdi":
		return field(head, 0x170, le.Uint64, 8, 1)
	case "iso":
		// The primary volume descriptor's volume space size, in logical
		// blocks; both are stored both-endian, little first.
		for off := isoDescriptors; off+isoSector <= len(head); off += isoSector {
			d := head[off : off+isoSector]
			if string(d[1:6]) != "CD001" || d[0] == 255 {
				break
			}
			if d[0] != 1 {
				continue
			}
			blocks, block := field(d, 80, u32, 4, 1), field(d, 128, u16, 2, 1)
			if blocks == nil || block == nil || *blocks*(*block) == 0 {
				return nil
			}
			n := *blocks * *block
			return &n
		}
	}
	return nil
}

// vmdkGDAtEnd in a stream-optimized vmdk's header says that the real
// header is the footer near the end of the data.
const vmdkGDAtEnd = math.MaxUint64

// vmdkVirtualSize returns the capacity of a sparse vmdk: from its header,
// or from its footer when the header defers to it (as QEMU does).
func vmdkVirtualSize(head, tail []byte) *int64 {
	le := binary.LittleEndian
	sectors := func(v uint64) *int64 {
		if v == 0 || v > math.MaxInt64/512 {
			return nil
		}
		n := int64(v * 512)
		return &n
	}
	switch {
	case bytes.HasPrefix(head, []byte("COWD")) && len(head) >= 16:
		return sectors(uint64(le.Uint32(head[12:16])))
	case !bytes.HasPrefix(head, []byte("KDMV")) || len(head) < 64:
		return nil
	}
	h := head
	// The end of the data is a footer marker, the footer and an
	// end-of-stream marker, a sector each.
	if le.Uint64(head[56:64]) == vmdkGDAtEnd && len(tail) >= 3*512 {
		if f := tail[len(tail)-2*512:]; bytes.HasPrefix(f, []byte("KDMV")) {
			h = f
		}
	}
	return sectors(le.Uint64(h[12:20]))
}

// errFormatMismatch is what a caller gets for data that is not in the
// image's disk format.
func errFormatMismatch(got, declared string) error {
	return Errorf(EINVALID, "Image data is %s but disk_format is %s.", got, declared)
}
