package cloudimage_test

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cloudimage/cloudimage"
)

// detectable is every result DetectDiskFormat may give.
var detectable = []string{"qcow2", "vmdk", "vhdx", "vhd", "vdi", "iso", "raw"}

// header returns size zero bytes with magic written at off.
func header(size, off int, magic string) []byte {
	b := make([]byte, size)
	copy(b[off:], magic)
	return b
}

func TestDetectDiskFormat(t *testing.T) {
	const vdiMagic = "\x7f\x10\xda\xbe"
	full := cloudimage.DetectHeaderSize
	vdi := header(512, 0, "<<< Oracle VM VirtualBox Disk Image >>>\n")
	copy(vdi[0x40:], vdiMagic)
	both := header(full, 0, "QFI\xfb")
	copy(both[0x8001:], "CD001")

	tests := []struct {
		name string
		head []byte
		want string
	}{
		{"qcow2", header(512, 0, "QFI\xfb\x00\x00\x00\x03"), "qcow2"},
		{"qcow2 magic only", []byte("QFI\xfb"), "qcow2"},
		{"qcow2 magic cut short", []byte("QFI"), "raw"},
		{"qcow2 magic off by one", header(512, 1, "QFI\xfb"), "raw"},
		{"qcow2 lower case", header(512, 0, "qfi\xfb"), "raw"},
		{"vmdk sparse KDMV", header(512, 0, "KDMV\x01\x00\x00\x00"), "vmdk"},
		{"vmdk hosted COWD", header(512, 0, "COWD\x01\x00\x00\x00"), "vmdk"},
		{"vmdk descriptor", []byte("# Disk DescriptorFile\nversion=1\nCID=fffffffe\n"), "vmdk"},
		{"vmdk descriptor cut short", []byte("# Disk Descriptor"), "raw"},
		{"vmdk other comment", []byte("# Disk descriptorfile\n"), "raw"},
		{"vhdx", header(512, 0, "vhdxfile"), "vhdx"},
		{"vhdx cut short", []byte("vhdxfil"), "raw"},
		{"vhd dynamic", header(512, 0, "conectix\x00\x00\x00\x02"), "vhd"},
		{"vhd footer not at 0", header(1024, 512, "conectix"), "raw"},
		{"vdi", vdi, "vdi"},
		{"vdi magic only", header(0x44, 0x40, vdiMagic), "vdi"},
		{"vdi magic cut short", header(0x43, 0x40, vdiMagic[:3]), "raw"},
		{"vdi magic elsewhere", header(512, 0x44, vdiMagic), "raw"},
		{"iso", header(full, 0x8001, "CD001"), "iso"},
		{"iso in a bigger head", header(full+4096, 0x8001, "CD001"), "iso"},
		{"iso exact fit", header(0x8001+5, 0x8001, "CD001"), "iso"},
		{"iso cut short", header(0x8001+4, 0x8001, "CD00"), "raw"},
		{"iso magic at 0", header(full, 0, "CD001"), "raw"},
		{"iso magic off by one", header(full, 0x8000, "CD001"), "raw"},
		{"qcow2 wins over iso", both, "qcow2"},
		{"zeros", make([]byte, full), "raw"},
		{"text", []byte("hello, world\n"), "raw"},
		{"mbr", header(512, 510, "\x55\xaa"), "raw"},
		{"one byte", []byte{'Q'}, "raw"},
		{"empty", []byte{}, "raw"},
		{"nil", nil, "raw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cloudimage.DetectDiskFormat(tt.head); got != tt.want {
				t.Errorf("DetectDiskFormat = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDetectHeaderSize(t *testing.T) {
	// The ISO volume descriptor magic is the farthest thing the detector
	// looks at; the advertised size must cover it.
	if got, min := cloudimage.DetectHeaderSize, 0x8001+len("CD001"); got < min {
		t.Errorf("DetectHeaderSize = %d, want at least %d", got, min)
	}
}

func TestDetectableAreDiskFormats(t *testing.T) {
	for _, f := range detectable {
		if !slices.Contains(cloudimage.DiskFormats, f) {
			t.Errorf("detector result %q is not in DiskFormats %v", f, cloudimage.DiskFormats)
		}
	}
}

func FuzzDetectDiskFormat(f *testing.F) {
	for _, seed := range [][]byte{
		nil,
		[]byte("QFI\xfb"),
		[]byte("KDMV"),
		[]byte("COWD"),
		[]byte("# Disk DescriptorFile"),
		[]byte("vhdxfile"),
		[]byte("conectix"),
		header(0x44, 0x40, "\x7f\x10\xda\xbe"),
		header(cloudimage.DetectHeaderSize, 0x8001, "CD001"),
		header(cloudimage.DetectHeaderSize+1, 0x8001, "CD001"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := cloudimage.DetectDiskFormat(data)
		if !slices.Contains(detectable, got) {
			t.Fatalf("DetectDiskFormat(%q) = %q, want one of %v", data, got, detectable)
		}
		// Bytes past DetectHeaderSize must never matter, so a caller may
		// pass exactly that many.
		if len(data) > cloudimage.DetectHeaderSize {
			if cut := cloudimage.DetectDiskFormat(data[:cloudimage.DetectHeaderSize]); cut != got {
				t.Fatalf("head of %d bytes gives %q, whole input gives %q",
					cloudimage.DetectHeaderSize, cut, got)
			}
		}
		// A format recognised from a head stays recognised when more data
		// follows it.
		if got != "raw" {
			if more := cloudimage.DetectDiskFormat(append(slices.Clip(data), 0, 1, 2)); more != got {
				t.Fatalf("extending the input turned %q into %q", got, more)
			}
		}
	})
}

// readHead returns up to DetectHeaderSize leading bytes of the file.
func readHead(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, cloudimage.DetectHeaderSize)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF {
		t.Fatalf("read %s: %v", path, err)
	}
	return head[:n]
}

const qemuImg = "/usr/bin/qemu-img"

// needQemuImg skips the test when qemu-img is missing, or fails it when
// CI=true says that everything must be tested.
func needQemuImg(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(qemuImg); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("qemu-img is missing at %s (%v); CI=true, so this is a failure, not a skip", qemuImg, err)
		}
		t.Skipf("qemu-img not available at %s (%v): real images not tested; install qemu-utils", qemuImg, err)
	}
}

// qemuImage creates an image of the given qemu-img format and size and
// returns its path; see needQemuImg for when qemu-img is missing.
func qemuImage(t *testing.T, format, size string, opts ...string) string {
	t.Helper()
	needQemuImg(t)
	path := filepath.Join(t.TempDir(), "disk."+format)
	args := append([]string{"create", "-q", "-f", format}, opts...)
	out, err := exec.Command(qemuImg, append(args, path, size)...).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img create -f %s: %v\n%s", format, err, out)
	}
	return path
}

func TestDetectDiskFormatQemuImg(t *testing.T) {
	tests := []struct {
		qemuFormat string
		opts       []string
		want       string
	}{
		{"qcow2", nil, "qcow2"},
		{"vmdk", nil, "vmdk"},
		{"vmdk", []string{"-o", "subformat=monolithicFlat"}, "vmdk"},
		{"vhdx", nil, "vhdx"},
		{"vpc", nil, "vhd"},
		{"vdi", nil, "vdi"},
		{"raw", nil, "raw"},
	}
	for _, tt := range tests {
		t.Run(tt.qemuFormat+"/"+tt.want+fmtOpts(tt.opts), func(t *testing.T) {
			path := qemuImage(t, tt.qemuFormat, "1M", tt.opts...)
			if got := cloudimage.DetectDiskFormat(readHead(t, path)); got != tt.want {
				t.Errorf("DetectDiskFormat(qemu-img -f %s) = %q, want %q", tt.qemuFormat, got, tt.want)
			}
		})
	}
}

func fmtOpts(opts []string) string {
	if len(opts) == 0 {
		return ""
	}
	return "/" + opts[len(opts)-1]
}

func TestDetectDiskFormatISO(t *testing.T) {
	const iso = "/usr/lib/ipxe/ipxe.iso"
	if _, err := os.Stat(iso); err != nil {
		t.Skipf("no ISO at %s (%v): real ISO detection not tested", iso, err)
	}
	head := readHead(t, iso)
	if got := cloudimage.DetectDiskFormat(head); got != "iso" {
		t.Errorf("DetectDiskFormat(%s) = %q, want iso", iso, got)
	}
	// The ISO's magic is beyond a short head: only all of it tells.
	if got := cloudimage.DetectDiskFormat(head[:0x8000]); got == "iso" {
		t.Errorf("DetectDiskFormat(first 32 KiB of %s) = iso, want anything else", iso)
	}
	if !bytes.Equal(head[0x8001:0x8006], []byte("CD001")) {
		t.Errorf("%s has no CD001 at 0x8001; the fixture is not what the test assumes", iso)
	}
}
