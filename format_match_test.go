package cloudimage_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cloudimage/cloudimage"
)

// qemuCase is an image that qemu-img makes, and the disk format it is.
type qemuCase struct {
	name       string
	qemuFormat string // qemu-img's name of the format
	opts       []string
	diskFormat string
}

var qemuCases = []qemuCase{
	{"qcow2", "qcow2", nil, "qcow2"},
	{"vmdk monolithicSparse", "vmdk", []string{"-o", "subformat=monolithicSparse"}, "vmdk"},
	{"vmdk streamOptimized", "vmdk", []string{"-o", "subformat=streamOptimized"}, "vmdk"},
	{"vhd dynamic", "vpc", []string{"-o", "subformat=dynamic"}, "vhd"},
	{"vhd fixed", "vpc", []string{"-o", "subformat=fixed"}, "vhd"},
	{"vhdx", "vhdx", nil, "vhdx"},
	{"vdi", "vdi", nil, "vdi"},
	{"raw", "raw", nil, "raw"},
}

// sample is image data, the disk format it is, and the virtual size
// qemu-img gives it.
type sample struct {
	name        string
	diskFormat  string
	data        []byte
	virtualSize int64
}

// qemuSamples returns an image of each of qemuCases, made by qemu-img,
// and an ISO 9660 image made by isoImage; each with the virtual size
// that qemu-img info reports, read as the format it is.
func qemuSamples(t *testing.T) []sample {
	t.Helper()
	var out []sample
	for _, c := range qemuCases {
		path := qemuImage(t, c.qemuFormat, "3M", c.opts...)
		out = append(out, sample{c.name, c.diskFormat, readFile(t, path), qemuVirtualSize(t, path, c.qemuFormat)})
	}
	iso := filepath.Join(t.TempDir(), "disk.iso")
	if err := os.WriteFile(iso, isoImage(40), 0o600); err != nil {
		t.Fatal(err)
	}
	// qemu-img reads an ISO as raw.
	return append(out, sample{"iso", "iso", readFile(t, iso), qemuVirtualSize(t, iso, "raw")})
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// qemuVirtualSize returns the virtual size qemu-img info reports of the
// image at path, read as format.
func qemuVirtualSize(t *testing.T, path, format string) int64 {
	t.Helper()
	out, err := exec.Command(qemuImg, "info", "-f", format, "--output=json", path).Output()
	if err != nil {
		t.Fatalf("qemu-img info -f %s %s: %v", format, path, err)
	}
	var info struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	if err := json.Unmarshal(out, &info); err != nil || info.VirtualSize <= 0 {
		t.Fatalf("qemu-img info: %v in %s", err, out)
	}
	return info.VirtualSize
}

// isoImage returns a minimal ISO 9660 image of n sectors (n >= 18): the
// system area, a primary volume descriptor at sector 16 that gives the
// size (n blocks of 2048 bytes, each number both-endian), and the
// terminator of the descriptor set.
func isoImage(n int) []byte {
	const sector = 2048
	b := make([]byte, n*sector)
	pvd := b[16*sector:]
	copy(pvd, "\x01CD001\x01")
	binary.LittleEndian.PutUint32(pvd[80:], uint32(n))
	binary.BigEndian.PutUint32(pvd[84:], uint32(n))
	binary.LittleEndian.PutUint16(pvd[128:], sector)
	binary.BigEndian.PutUint16(pvd[130:], sector)
	copy(b[17*sector:], "\xffCD001\x01")
	return b
}

// vhdFooter returns a VHD footer of the given disk type (2 fixed, 3
// dynamic) and current size, with its checksum.
func vhdFooter(diskType uint32, size uint64) []byte {
	b := make([]byte, cloudimage.VHDFooterSize)
	copy(b, "conectix")
	be := binary.BigEndian
	be.PutUint32(b[8:], 2)        // features: reserved
	be.PutUint32(b[12:], 0x10000) // version 1.0
	be.PutUint64(b[16:], ^uint64(0))
	be.PutUint64(b[40:], size)
	be.PutUint64(b[48:], size)
	be.PutUint32(b[60:], diskType)
	var sum uint32
	for _, c := range b {
		sum += uint32(c)
	}
	be.PutUint32(b[64:], ^sum)
	return b
}

// syntheticSamples returns the smallest data each detected format is
// recognised by, with the virtual size it declares (or, for raw, has).
func syntheticSamples() []sample {
	le := binary.LittleEndian
	vmdk := make([]byte, 512)
	copy(vmdk, "KDMV\x01\x00\x00\x00")
	le.PutUint64(vmdk[12:], 2048) // capacity in sectors; no descriptor
	vdi := make([]byte, 512)
	copy(vdi, "<<< Oracle VM VirtualBox Disk Image >>>\n")
	copy(vdi[0x40:], "\x7f\x10\xda\xbe")
	le.PutUint64(vdi[0x170:], 3<<20)
	vhdx := make([]byte, 1024)
	copy(vhdx, "vhdxfile")
	return []sample{
		{"qcow2", "qcow2", qcow2Header(5 << 30), 5 << 30},
		{"vmdk", "vmdk", vmdk, 1 << 20},
		{"vhd dynamic", "vhd", append(vhdFooter(3, 7<<20), make([]byte, 1024)...), 7 << 20},
		{"vhd fixed", "vhd", append(make([]byte, 4096), vhdFooter(2, 4096)...), 4096},
		{"vhdx", "vhdx", vhdx, 0}, // no region table: no virtual size
		{"vdi", "vdi", vdi, 3 << 20},
		{"iso", "iso", isoImage(20), 20 * 2048},
		{"raw", "raw", make([]byte, 4096), 4096},
	}
}

// tail returns the last n bytes of b, or all of it.
func tail(b []byte, n int) []byte {
	return b[max(0, len(b)-n):]
}

// TestDetectQemuImages checks that every real image is recognised from
// its head and tail, and that only a fixed VHD needs the tail.
func TestDetectQemuImages(t *testing.T) {
	for _, s := range append(qemuSamples(t), syntheticSamples()...) {
		head := s.data[:min(len(s.data), cloudimage.DetectHeaderSize)]
		if got := cloudimage.DetectDiskFormatEnds(head, tail(s.data, 512)); got != s.diskFormat {
			t.Errorf("%s: DetectDiskFormatEnds = %q, want %q", s.name, got, s.diskFormat)
		}
		wantHead := s.diskFormat
		if s.name == "vhd fixed" {
			wantHead = "raw" // its footer is only at its end
		}
		if got := cloudimage.DetectDiskFormat(head); got != wantHead {
			t.Errorf("%s: DetectDiskFormat = %q, want %q", s.name, got, wantHead)
		}
	}
	// A footer whose checksum is wrong is no footer.
	data := append(make([]byte, 4096), vhdFooter(2, 4096)...)
	data[len(data)-1] ^= 1
	if got := cloudimage.DetectDiskFormatEnds(data[:4096], tail(data, 512)); got != "raw" {
		t.Errorf("a fixed VHD footer with a bad checksum: %q, want raw", got)
	}
}

// wrongFormats returns disk formats that data of format f is not.
func wrongFormats(f string) []string {
	switch f {
	case "raw":
		return []string{"qcow2", "iso", "vhd"}
	case "iso":
		return []string{"qcow2", "vhd"} // raw takes an ISO
	case "qcow2":
		return []string{"raw", "vmdk"}
	}
	return []string{"raw", "qcow2"}
}

// mismatchMessage is how the data of s is refused for an image of the
// declared disk_format. A fixed VHD is known only at its end, so when
// declared as neither raw nor vhd it is refused as raw, from its head.
func mismatchMessage(s sample, declared string) string {
	got := s.diskFormat
	if s.name == "vhd fixed" && declared != "raw" {
		got = "raw"
	}
	return fmt.Sprintf("Image data is %s but disk_format is %s.", got, declared)
}

// TestUploadQemuImages uploads real images: declared as what they are
// they become active with qemu-img's virtual size; declared as another
// format they are refused, on upload and on stage, and keep nothing.
func TestUploadQemuImages(t *testing.T) {
	t.Parallel()
	samples := qemuSamples(t)
	f := newFixture(t, nil)
	for _, s := range samples {
		t.Run(s.name, func(t *testing.T) {
			for _, declared := range wrongFormats(s.diskFormat) {
				img := f.create(t, f.memberA, cloudimage.ImageCreate{DiskFormat: declared})
				_, err := f.svc.Upload(f.ctx, f.memberA, img.ID, bytes.NewReader(s.data))
				wantCode(t, err, cloudimage.EINVALID)
				if want := mismatchMessage(s, declared); !strings.Contains(err.Error(), want) {
					t.Errorf("upload as %s: %v, want %q", declared, err, want)
				}
				wantStatus(t, f.stored(t, img.ID), cloudimage.StatusQueued)
				f.noBlob(t, img.ID)
				_, err = f.svc.Stage(f.ctx, f.memberA, img.ID, bytes.NewReader(s.data))
				wantCode(t, err, cloudimage.EINVALID)
				wantStatus(t, f.stored(t, img.ID), cloudimage.StatusQueued)
				for _, k := range f.blobKeys(t) {
					if strings.Contains(k, img.ID) {
						t.Errorf("a refused stage as %s left %s", declared, k)
					}
				}
			}
			img := f.create(t, f.memberA, cloudimage.ImageCreate{DiskFormat: s.diskFormat})
			got := f.upload(t, f.memberA, img.ID, s.data)
			wantStatus(t, got, cloudimage.StatusActive)
			if got.VirtualSize == nil || *got.VirtualSize != s.virtualSize {
				t.Errorf("virtual_size %s, want qemu-img's %d", fmtPtr(got.VirtualSize), s.virtualSize)
			}
			if !bytes.Equal(f.blob(t, img.ID), s.data) {
				t.Errorf("stored data differs from the image")
			}
		})
	}
	f.stagingEmpty(t)
}

// TestUploadQemuImagesUnchecked checks that with WithRequireFormatMatch
// off data is taken whatever its disk_format, with the virtual size of
// the declared format: raw's is the data's size, the others' unknown.
func TestUploadQemuImagesUnchecked(t *testing.T) {
	t.Parallel()
	samples := qemuSamples(t)
	f := newFixture(t, nil, cloudimage.WithRequireFormatMatch(false))
	for _, s := range samples {
		for _, declared := range wrongFormats(s.diskFormat) {
			img := f.create(t, f.memberA, cloudimage.ImageCreate{DiskFormat: declared})
			got := f.upload(t, f.memberA, img.ID, s.data)
			wantStatus(t, got, cloudimage.StatusActive)
			var want *int64
			if declared == "raw" {
				want = ptr(int64(len(s.data)))
			}
			if !equalPtr(got.VirtualSize, want) {
				t.Errorf("%s as %s: virtual_size %s, want %s", s.name, declared, fmtPtr(got.VirtualSize), fmtPtr(want))
			}
		}
	}
}

// TestFormatMatchRules uploads the data of each detected format under
// every disk format: raw takes raw and ISO data, ami, ari, aki and ploop
// take anything, every other format only its own data.
func TestFormatMatchRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	unchecked := []string{"ami", "ari", "aki", "ploop"}
	for _, s := range syntheticSamples() {
		for _, declared := range cloudimage.DiskFormats {
			name := s.name + " as " + declared
			in := cloudimage.ImageCreate{DiskFormat: declared}
			if slices.Contains([]string{"ami", "ari", "aki"}, declared) {
				in.ContainerFormat = declared // Glance wants these to match
			}
			img := f.create(t, f.memberA, in)
			got, err := f.svc.Upload(f.ctx, f.memberA, img.ID, bytes.NewReader(s.data))
			accept := declared == s.diskFormat || (declared == "raw" && s.diskFormat == "iso") ||
				slices.Contains(unchecked, declared)
			switch {
			case accept && err != nil:
				t.Errorf("%s: refused: %v", name, err)
			case !accept && cloudimage.ErrorCode(err) != cloudimage.EINVALID:
				t.Errorf("%s: got %v, want EINVALID", name, err)
			case !accept && !strings.Contains(err.Error(), mismatchMessage(s, declared)):
				t.Errorf("%s: %v, want %q", name, err, mismatchMessage(s, declared))
			case !accept:
				wantStatus(t, f.stored(t, img.ID), cloudimage.StatusQueued)
				f.noBlob(t, img.ID)
			case declared == s.diskFormat && s.virtualSize != 0 &&
				(got.VirtualSize == nil || *got.VirtualSize != s.virtualSize):
				t.Errorf("%s: virtual_size %s, want %d", name, fmtPtr(got.VirtualSize), s.virtualSize)
			case declared == "raw" && (got.VirtualSize == nil || *got.VirtualSize != int64(len(s.data))):
				t.Errorf("%s: virtual_size %s, want the size %d", name, fmtPtr(got.VirtualSize), len(s.data))
			}
		}
	}
}

// zeros reads as endless zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestFormatRefusedEarly checks that data not in its disk_format is
// refused as soon as its head shows it, before the rest is read; a
// fixed VHD, known only by its last bytes, is refused at its end, and
// nothing of it is kept.
func TestFormatRefusedEarly(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	const size = 64 << 20
	// What the store reads ahead of the inspector's verdict: a few
	// buffers of io.Copy.
	const slack = 256 << 10
	rest := func(head []byte) io.Reader {
		return io.MultiReader(bytes.NewReader(head), io.LimitReader(zeros{}, size-int64(len(head))))
	}
	tests := []struct {
		name, declared string
		data           io.Reader
		most           int
	}{
		{"qcow2 as raw", "raw", rest(qcow2Header(1 << 30)), slack},
		{"raw as qcow2", "qcow2", rest(nil), cloudimage.DetectHeaderSize + slack},
		{"raw as iso", "iso", rest(nil), cloudimage.DetectHeaderSize + slack},
		{"fixed vhd as raw", "raw",
			io.MultiReader(io.LimitReader(zeros{}, size), bytes.NewReader(vhdFooter(2, size))),
			size + cloudimage.VHDFooterSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := f.create(t, f.memberA, cloudimage.ImageCreate{DiskFormat: tt.declared})
			r := &countingReader{r: tt.data}
			_, err := f.svc.Upload(f.ctx, f.memberA, img.ID, r)
			wantCode(t, err, cloudimage.EINVALID)
			if r.n > tt.most {
				t.Errorf("read %d bytes before the refusal, want at most %d", r.n, tt.most)
			}
			wantStatus(t, f.stored(t, img.ID), cloudimage.StatusQueued)
			f.noBlob(t, img.ID)
		})
	}
	f.stagingEmpty(t)
}

// TestImportFormatMismatch checks that a web-download whose data is not
// in the image's disk_format fails, leaving the image queued with no
// data, and that the right data then imports with its virtual size.
func TestImportFormatMismatch(t *testing.T) {
	t.Parallel()
	qcow2 := qcow2Header(3 << 30)
	src := newSource(t, serve(qcow2))
	f := newFixture(t, nil, cloudimage.WithImportHosts(src.host(t)))
	req := cloudimage.ImportRequest{Method: cloudimage.ImportWebDownload, URI: src.URL + "/disk"}

	img := f.create(t, f.memberA, cloudimage.ImageCreate{DiskFormat: "raw", Properties: downloadable()})
	if err := f.svc.Import(f.ctx, f.memberA, img.ID, req); err != nil {
		t.Fatalf("Import: %v", err)
	}
	f.waitStatus(t, img.ID, cloudimage.StatusQueued)
	f.waitNoData(t)

	img = f.create(t, f.memberA, cloudimage.ImageCreate{DiskFormat: "qcow2", Properties: downloadable()})
	if err := f.svc.Import(f.ctx, f.memberA, img.ID, req); err != nil {
		t.Fatalf("Import: %v", err)
	}
	got := f.waitStatus(t, img.ID, cloudimage.StatusActive)
	if got.VirtualSize == nil || *got.VirtualSize != 3<<30 {
		t.Errorf("virtual_size %s, want the header's %d", fmtPtr(got.VirtualSize), int64(3<<30))
	}
}
