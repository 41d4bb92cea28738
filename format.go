package cloudimage

import "bytes"

// DetectHeaderSize is how many leading bytes DetectDiskFormat needs to see
// to recognise every format it knows (an ISO's volume descriptor sits at
// 32 KiB).
const DetectHeaderSize = 0x8001 + 5

// DetectDiskFormat guesses a disk format from the leading bytes of image
// data: qcow2, vmdk, vhdx, vhd, vdi or iso from their magic numbers, and
// raw for anything else. A shorter head only recognises what fits in it.
func DetectDiskFormat(head []byte) string {
	at := func(off int, magic string) bool {
		return len(head) >= off+len(magic) && bytes.Equal(head[off:off+len(magic)], []byte(magic))
	}
	switch {
	case at(0, "QFI\xfb"):
		return "qcow2"
	case at(0, "KDMV"), at(0, "COWD"), at(0, "# Disk DescriptorFile"):
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
