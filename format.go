package cloudimage

import (
	"bytes"
	"encoding/binary"
)

// DetectHeaderSize is how many leading bytes DetectDiskFormat needs to see
// to recognise every format it knows (an ISO's volume descriptor sits at
// 32 KiB).
const DetectHeaderSize = 0x8001 + 5

// qcow2HeaderSize is how much of a qcow2 header UnsafeReason reads: up to
// and including the incompatible-features field of version 3.
const qcow2HeaderSize = 80

// UnsafeReason says why the image data whose first bytes are head must
// not be served to a hypervisor, or returns "" if nothing is wrong with
// it. A qcow2 image that names a backing file or an external data file
// makes the hypervisor open a file of the host's choosing, which lets the
// guest read it: such images are refused whatever disk_format says. head
// must hold qcow2HeaderSize bytes, or all of the data if it is shorter.
func UnsafeReason(head []byte) string {
	// Data too short to hold the field in question is no image a
	// hypervisor would open, so it cannot point anywhere.
	if !bytes.HasPrefix(head, []byte("QFI\xfb")) || len(head) < 16 {
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
