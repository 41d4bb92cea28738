package cloudimage_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudimage/cloudimage"
)

// unsafeImages returns qemu-img's own qcow2 and vmdk images of 1 MiB:
// plain ones, by the disk format they are, and ones that make a
// hypervisor open another file of the host.
func unsafeImages(t *testing.T) (safe map[string]sample, unsafe map[string][]byte) {
	t.Helper()
	base := qemuImage(t, "qcow2", "1M")
	baseVMDK := qemuImage(t, "vmdk", "1M")
	dataFile := filepath.Join(t.TempDir(), "data.raw")
	read := func(path string) []byte {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	safe = map[string]sample{
		"qcow2 v3": {diskFormat: "qcow2", data: read(base)},
		"qcow2 v2": {diskFormat: "qcow2",
			data: read(qemuImage(t, "qcow2", "1M", "-o", "compat=0.10"))},
		"vmdk monolithicSparse": {diskFormat: "vmdk", data: read(baseVMDK)},
		"vmdk streamOptimized": {diskFormat: "vmdk",
			data: read(qemuImage(t, "vmdk", "1M", "-o", "subformat=streamOptimized"))},
	}
	unsafe = map[string][]byte{
		"qcow2 with a backing file": read(qemuImage(t, "qcow2", "1M", "-b", base, "-F", "qcow2")),
		"qcow2 v2 with a backing file": read(qemuImage(t, "qcow2", "1M", "-o", "compat=0.10",
			"-b", base, "-F", "qcow2")),
		"qcow2 with an external data file": read(qemuImage(t, "qcow2", "1M", "-o", "data_file="+dataFile)),
		"vmdk with a parent":               read(qemuImage(t, "vmdk", "1M", "-b", baseVMDK, "-F", "vmdk")),
		"vmdk descriptor, monolithicFlat":  read(qemuImage(t, "vmdk", "1M", "-o", "subformat=monolithicFlat")),
		"vmdk descriptor, twoGbMaxExtentSparse": read(qemuImage(t, "vmdk", "1M",
			"-o", "subformat=twoGbMaxExtentSparse")),
	}
	return safe, unsafe
}

// head returns the first bytes of data UnsafeReason reads.
func head(data []byte) []byte {
	return data[:min(len(data), cloudimage.UnsafeHeadSize)]
}

func TestUnsafeReasonQemuImg(t *testing.T) {
	safe, unsafe := unsafeImages(t)
	for name, s := range safe {
		if r := cloudimage.UnsafeReason(head(s.data)); r != "" {
			t.Errorf("%s: refused as %q", name, r)
		}
	}
	for name, data := range unsafe {
		if r := cloudimage.UnsafeReason(head(data)); r == "" {
			t.Errorf("%s: not refused", name)
		}
	}
	// Headers too short to name another file are not images at all.
	for _, head := range [][]byte{nil, []byte("QFI\xfb"), []byte("QFI\xfb\x00\x00\x00\x03\x00\x00")} {
		if r := cloudimage.UnsafeReason(head); r != "" {
			t.Errorf("UnsafeReason(%q) = %q, want none", head, r)
		}
	}
}

// sparseVMDK returns a sparse vmdk header of the given capacity (in
// sectors) whose embedded descriptor, desc, is at sector descAt (0: none),
// padded with 1 KiB of zeros.
func sparseVMDK(capacity, descAt uint64, desc string) []byte {
	b := make([]byte, max(512, int(descAt)*512+len(desc))+1024)
	copy(b, "KDMV\x01\x00\x00\x00\x03\x00\x00\x00")
	binary.LittleEndian.PutUint64(b[12:], capacity)
	binary.LittleEndian.PutUint64(b[28:], descAt)
	binary.LittleEndian.PutUint64(b[36:], 20)
	copy(b[descAt*512:], desc)
	return b
}

// vmdkDescriptor returns an embedded descriptor of the given create
// type with the given extra lines.
func vmdkDescriptor(createType string, lines ...string) string {
	return "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n" +
		"createType=\"" + createType + "\"\n" + strings.Join(lines, "\n") + "\n"
}

// TestUnsafeReasonVMDK checks the vmdk images that would make QEMU open
// another file: a parent, an extent elsewhere, a descriptor of another
// type or out of reach; and that plain sparse ones pass.
func TestUnsafeReasonVMDK(t *testing.T) {
	extent := `RW 2048 SPARSE "disk.vmdk"`
	noNUL := sparseVMDK(2048, 1, vmdkDescriptor("monolithicSparse", extent))
	noNUL = append(noNUL, bytes.Repeat([]byte("#"), cloudimage.UnsafeHeadSize)...)
	for i := 512; i < len(noNUL); i++ {
		if noNUL[i] == 0 {
			noNUL[i] = ' '
		}
	}
	short := vmdkDescriptor("monolithicSparse")
	beyond := func(sector uint64) []byte {
		b := sparseVMDK(2048, 0, "")
		binary.LittleEndian.PutUint64(b[28:], sector)
		return b
	}
	cowd := make([]byte, 2048)
	copy(cowd, "COWD\x01\x00\x00\x00")
	cowdParent := bytes.Clone(cowd)
	copy(cowdParent[512:], `parentFileNameHint="/etc/shadow"`)
	// QEMU looks for a parent at byte 512 whatever the header says.
	parentAt512 := sparseVMDK(2048, 30, vmdkDescriptor("monolithicSparse", extent))
	copy(parentAt512[512:], `parentFileNameHint="/etc/shadow"`)
	tests := []struct {
		name   string
		data   []byte
		unsafe bool
	}{
		{"monolithicSparse", sparseVMDK(2048, 1, vmdkDescriptor("monolithicSparse", extent)), false},
		{"streamOptimized", sparseVMDK(2048, 1, vmdkDescriptor("streamOptimized", extent)), false},
		{"no descriptor", sparseVMDK(2048, 0, ""), false},
		{"descriptor deep in the head", sparseVMDK(2048, 70, vmdkDescriptor("monolithicSparse", extent)), false},
		{"ends with its descriptor", sparseVMDK(2048, 1, short)[:512+len(short)], false},
		{"hosted sparse", cowd, false},
		{"monolithicFlat", sparseVMDK(2048, 1, vmdkDescriptor("monolithicFlat",
			`RW 2048 FLAT "disk-flat.vmdk" 0`)), true},
		{"vmfs", sparseVMDK(2048, 1, vmdkDescriptor("vmfs", `RW 2048 VMFS "/dev/sda"`)), true},
		{"a parent", sparseVMDK(2048, 1, vmdkDescriptor("monolithicSparse", extent,
			`parentFileNameHint="/etc/shadow"`)), true},
		{"an extent by absolute path", sparseVMDK(2048, 1, vmdkDescriptor("monolithicSparse",
			`RW 2048 SPARSE "/etc/shadow"`)), true},
		{"an extent by relative path", sparseVMDK(2048, 1, vmdkDescriptor("monolithicSparse",
			`RDONLY 2048 SPARSE "../other/disk.vmdk"`)), true},
		{"an extent by a Windows path", sparseVMDK(2048, 1, vmdkDescriptor("monolithicSparse",
			`RW 2048 SPARSE "..\\disk.vmdk"`)), true},
		{"capacity left to the descriptor", sparseVMDK(0, 1, vmdkDescriptor("monolithicSparse", extent)), true},
		{"descriptor out of reach", sparseVMDK(2048, cloudimage.UnsafeHeadSize/512,
			vmdkDescriptor("monolithicSparse", extent)), true},
		{"descriptor without end", noNUL, true},
		{"descriptor beyond the data", beyond(100), true},
		{"descriptor beyond any data", beyond(1 << 61), true},
		{"a parent, descriptor deep in the head", sparseVMDK(2048, 30, vmdkDescriptor("monolithicSparse", extent,
			`parentFileNameHint="/etc/shadow"`)), true},
		{"parent at byte 512", parentAt512, true},
		{"hosted sparse with a parent", cowdParent, true},
		{"descriptor file", []byte(vmdkDescriptor("monolithicSparse", extent)), true},
	}
	for _, tt := range tests {
		r := cloudimage.UnsafeReason(head(tt.data))
		if (r != "") != tt.unsafe {
			t.Errorf("%s: UnsafeReason = %q, want unsafe %v", tt.name, r, tt.unsafe)
		}
		if tt.unsafe && !strings.Contains(r, "vmdk") {
			t.Errorf("%s: reason %q does not say vmdk", tt.name, r)
		}
	}
}

// TestUnsafeDataRefused checks that qcow2 or vmdk data naming a host file is
// refused on upload and on staging, whatever disk_format says, with the
// image queued again and nothing kept; safe qcow2 data is taken.
func TestUnsafeDataRefused(t *testing.T) {
	safe, unsafe := unsafeImages(t)
	f := newFixture(t, nil)
	for name, data := range unsafe {
		for _, format := range []string{"qcow2", "raw"} {
			img := f.create(t, f.memberA, cloudimage.ImageCreate{DiskFormat: format})
			_, err := f.svc.Upload(f.ctx, f.memberA, img.ID, bytes.NewReader(data))
			wantCode(t, err, cloudimage.EINVALID)
			wantStatus(t, f.stored(t, img.ID), cloudimage.StatusQueued)
			f.noBlob(t, img.ID)
			_, err = f.svc.Stage(f.ctx, f.memberA, img.ID, bytes.NewReader(data))
			wantCode(t, err, cloudimage.EINVALID)
			wantStatus(t, f.stored(t, img.ID), cloudimage.StatusQueued)
			t.Logf("%s as %s: %v", name, format, err)
		}
	}
	f.stagingEmpty(t)
	for name, s := range safe {
		img := f.create(t, f.memberA, cloudimage.ImageCreate{DiskFormat: s.diskFormat})
		got := f.upload(t, f.memberA, img.ID, s.data)
		if got.VirtualSize == nil || *got.VirtualSize != 1<<20 {
			t.Errorf("%s: virtual size %s, want 1 MiB", name, fmtPtr(got.VirtualSize))
		}
	}
}

// FuzzUnsafeReason checks that any header is judged without a panic, and
// that a qcow2 header naming a backing file is always refused.
func FuzzUnsafeReason(f *testing.F) {
	f.Add([]byte("QFI\xfb\x00\x00\x00\x03"), uint64(0))
	f.Add(make([]byte, 100), uint64(4096))
	f.Fuzz(func(t *testing.T, head []byte, backing uint64) {
		cloudimage.UnsafeReason(head)
		if len(head) < 16 || backing == 0 {
			return
		}
		h := append([]byte("QFI\xfb"), head[4:]...)
		binary.BigEndian.PutUint64(h[8:16], backing)
		if cloudimage.UnsafeReason(h) == "" {
			t.Errorf("a qcow2 header with backing file offset %d is not refused", backing)
		}
	})
}
