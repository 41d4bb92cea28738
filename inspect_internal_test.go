package cloudimage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// inspection is what an inspector made of some data.
type inspection struct {
	refusal     string
	format      string
	virtualSize string
}

// inspect feeds data to a fresh inspector for an image of declared, in
// the chunks that next chooses (nil: all at once), as hashingReader does:
// nothing more once the data is refused.
func inspect(data []byte, declared string, check bool, next func(rest int) (n int, eof bool)) inspection {
	h := headInspector{head: make([]byte, 0, UnsafeHeadSize), tail: make([]byte, 0, tailSize),
		declared: declared, check: check}
	size := int64(len(data))
	ok := true
	if next == nil {
		ok = h.see(data, true)
	} else {
		for ok {
			n, eof := next(len(data))
			ok = h.see(data[:n], eof)
			if data = data[n:]; eof {
				break
			}
		}
	}
	got := inspection{virtualSize: "nil"}
	if ok {
		got.format = h.format
	}
	if err := h.refusal(); err != nil {
		got.refusal = err.Error()
	}
	if ok != (got.refusal == "") {
		got.refusal += fmt.Sprintf(" (see said %v)", ok)
	}
	if v := h.virtualSize(declared, size); v != nil && ok {
		got.virtualSize = fmt.Sprint(*v)
	}
	return got
}

// randomChunks returns a chunk chooser for inspect: sizes from one byte
// to 64 KiB, and the end of the data given with the last bytes or after
// them, at random from seed.
func randomChunks(seed uint64) func(rest int) (int, bool) {
	r := rand.New(rand.NewPCG(seed, seed>>32|1))
	endApart := r.IntN(2) == 0
	done := false
	return func(rest int) (int, bool) {
		if done || rest == 0 {
			return 0, true
		}
		var n int
		switch r.IntN(3) {
		case 0:
			n = 1 + r.IntN(16)
		case 1:
			n = 1 + r.IntN(1024)
		default:
			n = 1 + r.IntN(64<<10)
		}
		n = min(n, rest)
		if n == rest && !endApart {
			done = true
			return n, true
		}
		return n, false
	}
}

var inspectFormats = []string{"raw", "qcow2", "vmdk", "vhd", "vhdx", "vdi", "iso", "ami", ""}

// inspectSeeds are small headers of every format the inspectors read.
func inspectSeeds() [][]byte {
	le := binary.LittleEndian
	qcow2 := make([]byte, 512)
	copy(qcow2, "QFI\xfb\x00\x00\x00\x03")
	qcow2[29] = 1
	vmdk := make([]byte, 2048)
	copy(vmdk, "KDMV\x01\x00\x00\x00")
	le.PutUint64(vmdk[12:], 2048)
	le.PutUint64(vmdk[28:], 1)
	copy(vmdk[512:], "# Disk DescriptorFile\ncreateType=\"monolithicSparse\"\nRW 2048 SPARSE \"d.vmdk\"\n")
	vdi := make([]byte, 0x200)
	copy(vdi[0x40:], "\x7f\x10\xda\xbe")
	le.PutUint64(vdi[0x170:], 1<<20)
	vhd := make([]byte, 1024)
	copy(vhd, "conectix")
	vhd[55] = 8
	iso := make([]byte, isoDescriptors+2*isoSector)
	copy(iso[isoDescriptors:], "\x01CD001\x01")
	le.PutUint32(iso[isoDescriptors+80:], 18)
	le.PutUint16(iso[isoDescriptors+128:], isoSector)
	copy(iso[isoDescriptors+isoSector:], "\xffCD001\x01")
	return [][]byte{nil, []byte("QFI\xfb"), qcow2, vmdk, vdi, vhd, iso, []byte("vhdxfile"),
		[]byte("# Disk DescriptorFile\n"), make([]byte, 600)}
}

// FuzzInspectStream checks that the inspector never panics and judges
// data the same however it is cut into reads: the refusal, the format and
// the virtual size.
func FuzzInspectStream(f *testing.F) {
	for i, seed := range inspectSeeds() {
		f.Add(seed, uint8(i), uint64(i), i%2 == 0)
	}
	f.Fuzz(func(t *testing.T, data []byte, format uint8, seed uint64, check bool) {
		declared := inspectFormats[int(format)%len(inspectFormats)]
		one := inspect(data, declared, check, nil)
		if got := inspect(data, declared, check, randomChunks(seed)); got != one {
			t.Fatalf("as %q: in chunks %+v, all at once %+v", declared, got, one)
		}
		// UnsafeReason needs no more than unsafeNeed says.
		head := data[:min(len(data), UnsafeHeadSize)]
		if need := unsafeNeed(head); need <= len(head) && UnsafeReason(head[:need]) != UnsafeReason(head) {
			t.Fatalf("UnsafeReason of %d bytes %q, of %d bytes %q", need, UnsafeReason(head[:need]),
				len(head), UnsafeReason(head))
		}
	})
}

// FuzzHeaderVirtualSize checks that no header or footer makes the
// virtual size readers panic or give a negative size.
func FuzzHeaderVirtualSize(f *testing.F) {
	for i, seed := range inspectSeeds() {
		f.Add(uint8(i), seed, seed)
	}
	f.Fuzz(func(t *testing.T, format uint8, head, tail []byte) {
		declared := inspectFormats[int(format)%len(inspectFormats)]
		if v := headerVirtualSize(declared, head, tail); v != nil && *v < 0 {
			t.Fatalf("%s: virtual size %d", declared, *v)
		}
	})
}

// vhdxTables returns a region table and a metadata region as a vhdx has
// them from the region table at base on, with the metadata region at
// metaAt (an offset from the region table) and the virtual size item in
// it, 64 KiB into the region as qemu-img puts it.
func vhdxTables(base, metaAt int, size uint64) []byte {
	return vhdxTablesItemAt(base, metaAt, 0x10000, size)
}

// vhdxTablesItemAt is vhdxTables with the item at itemAt in the region.
func vhdxTablesItemAt(base, metaAt, itemAt int, size uint64) []byte {
	le := binary.LittleEndian
	b := make([]byte, metaAt+itemAt+8)
	copy(b, "regi")
	le.PutUint32(b[8:], 2)
	e := b[16:]
	copy(e, msGUID("2DC27766-F623-4200-9D64-115E9BFD4A08")) // the BAT
	le.PutUint64(e[16:], 3<<20)
	copy(e[32:], vhdxMetadataRegion)
	le.PutUint64(e[48:], uint64(base+metaAt))
	m := b[metaAt:]
	copy(m, "metadata")
	le.PutUint16(m[10:], 2)
	copy(m[32:], msGUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")) // file parameters
	copy(m[64:], vhdxVirtualDiskSz)
	le.PutUint32(m[64+16:], uint32(itemAt))
	le.PutUint32(m[64+20:], 8)
	le.PutUint64(m[itemAt:], size)
	return b
}

// feedVHDX feeds b, found at vhdxRegionTable, to a new size reader in the
// chunks next chooses, and returns the size it found.
func feedVHDX(b []byte, next func(rest int) (int, bool)) string {
	r := newVHDXSizeReader()
	off := int64(vhdxRegionTable)
	for len(b) > 0 {
		n := len(b)
		if next != nil {
			if n, _ = next(len(b)); n == 0 {
				break
			}
		}
		r.feed(off, b[:n])
		off, b = off+int64(n), b[n:]
	}
	if r.size == nil {
		return "nil"
	}
	return fmt.Sprint(*r.size)
}

// FuzzVHDXSizeReader checks that the vhdx size reader never panics and
// finds the same size however the data is cut.
func FuzzVHDXSizeReader(f *testing.F) {
	// Small seeds: the fuzzer slows down on inputs of 64 KiB and more.
	f.Add(vhdxTablesItemAt(vhdxRegionTable, 0x100, 0x100, 5<<30), uint64(1))
	f.Add(vhdxTablesItemAt(vhdxRegionTable, 0x80, 0x60, 1<<20), uint64(2))
	f.Add([]byte("regi"), uint64(3))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		one := feedVHDX(data, nil)
		if got := feedVHDX(data, randomChunks(seed)); got != one {
			t.Fatalf("in chunks %s, all at once %s", got, one)
		}
	})
}

func TestVHDXSizeReader(t *testing.T) {
	// The reader only moves forward: a metadata region the data has
	// passed is out of reach.
	before := vhdxTables(vhdxRegionTable, 0x1000, 1<<20)
	binary.LittleEndian.PutUint64(before[16+32+16:], 1<<20)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"metadata after the tables", vhdxTables(vhdxRegionTable, 0x1000, 5<<30), fmt.Sprint(int64(5 << 30))},
		{"metadata far away", vhdxTables(vhdxRegionTable, 1<<20, 1<<20), fmt.Sprint(1 << 20)},
		{"item right after the metadata table", vhdxTablesItemAt(vhdxRegionTable, 0x80, 0x60, 3<<20),
			fmt.Sprint(3 << 20)},
		{"metadata before the region table", before, "nil"},
		{"no region table", make([]byte, 1<<17), "nil"},
		{"data ends first", vhdxTables(vhdxRegionTable, 0x1000, 1<<20)[:0x1000+0x100], "nil"},
	}
	for _, tt := range tests {
		if got := feedVHDX(tt.data, nil); got != tt.want {
			t.Errorf("%s: size %s, want %s", tt.name, got, tt.want)
		}
		for seed := range uint64(20) {
			if got := feedVHDX(tt.data, randomChunks(seed)); got != tt.want {
				t.Errorf("%s, chunks of seed %d: size %s, want %s", tt.name, seed, got, tt.want)
			}
		}
	}
	// The copy of the region table serves when the first is broken.
	b := append(make([]byte, vhdxRegionTable2-vhdxRegionTable), vhdxTables(vhdxRegionTable2, 0x1000, 7<<20)...)
	if got := feedVHDX(b, nil); got != fmt.Sprint(7<<20) {
		t.Errorf("from the copy of the region table: size %s, want %d", got, 7<<20)
	}
}

// TestInspectChunksQemuImg feeds real images to the inspector in reads
// of many sizes: the verdict and virtual size must not change.
func TestInspectChunksQemuImg(t *testing.T) {
	const qemuImg = "/usr/bin/qemu-img"
	if _, err := os.Stat(qemuImg); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("qemu-img is missing (%v); CI=true, so this is a failure, not a skip", err)
		}
		t.Skipf("qemu-img is missing (%v): install qemu-utils", err)
	}
	base := filepath.Join(t.TempDir(), "base.vmdk")
	if out, err := exec.Command(qemuImg, "create", "-q", "-f", "vmdk", base, "1M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v\n%s", err, out)
	}
	for _, tt := range []struct {
		qemuFormat, diskFormat, opt string
		unsafe                      bool
	}{
		{"qcow2", "qcow2", "", false}, {"vmdk", "vmdk", "", false},
		{"vmdk", "vmdk", "subformat=streamOptimized", false},
		{"vpc", "vhd", "subformat=dynamic", false}, {"vpc", "vhd", "subformat=fixed", false},
		{"vhdx", "vhdx", "", false}, {"vdi", "vdi", "", false}, {"raw", "raw", "", false},
		// Its parent is named in its descriptor, 512 bytes in.
		{"vmdk", "vmdk", "backing_file=" + base + ",backing_fmt=vmdk", true},
	} {
		path := filepath.Join(t.TempDir(), "disk")
		args := []string{"create", "-q", "-f", tt.qemuFormat}
		if tt.opt != "" {
			args = append(args, "-o", tt.opt)
		}
		if out, err := exec.Command(qemuImg, append(args, path, "2M")...).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, declared := range []string{tt.diskFormat, "raw", "qcow2"} {
			one := inspect(data, declared, true, nil)
			switch {
			case tt.unsafe && !strings.Contains(one.refusal, "parent"):
				t.Errorf("%s %s: %+v, want refused for its parent", tt.qemuFormat, tt.opt, one)
			case !tt.unsafe && declared == tt.diskFormat && (one.refusal != "" || one.virtualSize == "nil"):
				t.Errorf("%s %s: %+v, want accepted with a virtual size", tt.qemuFormat, tt.opt, one)
			}
			for seed := range uint64(10) {
				if got := inspect(data, declared, true, randomChunks(seed)); got != one {
					t.Errorf("%s %s as %s, seed %d: in chunks %+v, all at once %+v",
						tt.qemuFormat, tt.opt, declared, seed, got, one)
				}
			}
		}
	}
}

// TestInspectMemoryBounded checks that the inspector keeps no more than
// its bounds, whatever it is fed.
func TestInspectMemoryBounded(t *testing.T) {
	h := headInspector{head: make([]byte, 0, UnsafeHeadSize), tail: make([]byte, 0, tailSize),
		declared: "raw", check: true}
	chunk := bytes.Repeat([]byte{1}, 100_000)
	for range 50 {
		h.see(chunk, false)
		h.see(chunk[:7], false)
	}
	h.see(nil, true)
	if cap(h.head) != UnsafeHeadSize || cap(h.tail) != tailSize || len(h.tail) != tailSize {
		t.Errorf("head cap %d, tail len %d cap %d; want %d and %d", cap(h.head), len(h.tail), cap(h.tail),
			UnsafeHeadSize, tailSize)
	}
}

// TestVMDKFooterCapacity checks that a stream-optimized vmdk whose header
// defers to its footer (grain directory "at end") gets the footer's
// capacity, as QEMU reads it: the footer is the second of the last three
// sectors (footer marker, footer, end-of-stream marker).
func TestVMDKFooterCapacity(t *testing.T) {
	le := binary.LittleEndian
	header := func(capacity, gd uint64) []byte {
		h := make([]byte, 512)
		copy(h, "KDMV\x03\x00\x00\x00")
		le.PutUint64(h[12:], capacity)
		le.PutUint64(h[56:], gd)
		return h
	}
	data := append(header(2048, vmdkGDAtEnd), make([]byte, 4096)...)
	data = append(data, make([]byte, 512)...) // footer marker
	data = append(data, header(4096, 21)...)
	data = append(data, make([]byte, 512)...) // end of stream
	if got := inspect(data, "vmdk", true, nil); got.virtualSize != fmt.Sprint(4096*512) {
		t.Errorf("footer's capacity: %+v, want virtual size %d", got, 4096*512)
	}
	// Without the mark, the header's capacity counts.
	le.PutUint64(data[56:], 21)
	if got := inspect(data, "vmdk", true, nil); got.virtualSize != fmt.Sprint(2048*512) {
		t.Errorf("header's capacity: %+v, want virtual size %d", got, 2048*512)
	}
}

// TestCOWDCapacity checks the hosted sparse vmdk's size: sectors as a
// little-endian uint32 at byte 12.
func TestCOWDCapacity(t *testing.T) {
	h := make([]byte, 2048)
	copy(h, "COWD\x01\x00\x00\x00\x03\x00\x00\x00")
	binary.LittleEndian.PutUint32(h[12:], 6144)
	if got := inspect(h, "vmdk", true, nil); got.refusal != "" || got.virtualSize != fmt.Sprint(6144*512) {
		t.Errorf("%+v, want virtual size %d", got, 6144*512)
	}
}

// TestISOVolumeSize checks where the ISO's size comes from: the primary
// volume descriptor, which need not be the first of the set, and
// nothing past the set's terminator.
func TestISOVolumeSize(t *testing.T) {
	le := binary.LittleEndian
	iso := func(types ...byte) []byte {
		b := make([]byte, isoDescriptors+(len(types)+1)*isoSector)
		for i, typ := range types {
			d := b[isoDescriptors+i*isoSector:]
			copy(d, "\x00CD001\x01")
			d[0] = typ
			if typ == 1 {
				le.PutUint32(d[80:], 1000)
				le.PutUint16(d[128:], isoSector)
			}
		}
		return b
	}
	for _, tt := range []struct {
		name  string
		types []byte
		want  string
	}{
		{"primary first", []byte{1, 255}, fmt.Sprint(1000 * isoSector)},
		{"after a boot record", []byte{0, 1, 255}, fmt.Sprint(1000 * isoSector)},
		{"after the terminator", []byte{0, 255, 1}, "nil"},
		{"none", []byte{0, 2, 255}, "nil"},
	} {
		if got := inspect(iso(tt.types...), "iso", true, nil); got.virtualSize != tt.want {
			t.Errorf("%s: %+v, want virtual size %s", tt.name, got, tt.want)
		}
	}
}
