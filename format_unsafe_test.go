package cloudimage_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/cloudimage/cloudimage"
)

// unsafeImages returns qemu-img's own qcow2 images: plain ones, and ones
// that make a hypervisor open another file of the host.
func unsafeImages(t *testing.T) (safe, unsafe map[string][]byte) {
	t.Helper()
	base := qemuImage(t, "qcow2", "1M")
	dataFile := filepath.Join(t.TempDir(), "data.raw")
	read := func(path string) []byte {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	safe = map[string][]byte{
		"qcow2 v3": read(base),
		"qcow2 v2": read(qemuImage(t, "qcow2", "1M", "-o", "compat=0.10")),
	}
	unsafe = map[string][]byte{
		"qcow2 with a backing file": read(qemuImage(t, "qcow2", "1M", "-b", base, "-F", "qcow2")),
		"qcow2 v2 with a backing file": read(qemuImage(t, "qcow2", "1M", "-o", "compat=0.10",
			"-b", base, "-F", "qcow2")),
		"qcow2 with an external data file": read(qemuImage(t, "qcow2", "1M", "-o", "data_file="+dataFile)),
	}
	return safe, unsafe
}

func TestUnsafeReasonQemuImg(t *testing.T) {
	safe, unsafe := unsafeImages(t)
	for name, data := range safe {
		if r := cloudimage.UnsafeReason(data[:512]); r != "" {
			t.Errorf("%s: refused as %q", name, r)
		}
	}
	for name, data := range unsafe {
		if r := cloudimage.UnsafeReason(data[:512]); r == "" {
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

// TestUnsafeDataRefused checks that qcow2 data naming a host file is
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
	for name, data := range safe {
		img := f.create(t, f.memberA, cloudimage.ImageCreate{DiskFormat: "qcow2"})
		got := f.upload(t, f.memberA, img.ID, data)
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
