package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
)

// checkV2Image fails t unless appendV2Image writes exactly what
// json.Marshal writes for v2Image(img), also after bytes already in dst.
func checkV2Image(t *testing.T, img *cloudimage.Image) {
	t.Helper()
	want, err := json.Marshal(v2Image(img))
	if err != nil {
		t.Fatal(err)
	}
	if got := appendV2Image(nil, img); !bytes.Equal(got, want) {
		t.Fatalf("appendV2Image\n got %s\nwant %s", got, want)
	}
	if got := appendV2Image([]byte("[1,"), img); !bytes.Equal(got, append([]byte("[1,"), want...)) {
		t.Fatalf("appendV2Image after other bytes\n got %s\nwant [1,%s", got, want)
	}
}

// awkward holds strings encoding/json escapes, or might be thought to.
var awkward = []string{
	"", " ", "plain", "한국어 이미지", "emoji \U0001F600", "<script>alert('x')</script>", "a&b",
	"\"quoted\"",
	`back\slash`, "/slash/", "\x00\x01\x07\x1f", "\b\f\n\r\t", "\x7f", "\u2028\u2029", "x\u2028y",
	"\xff", "bad \xfe\xff bytes", "\xe2\x80", "cut rune \xe2\x80", "\xed\xa0\x80", "\xc0\xaf", "\x80x",
	"\ufffd", "\u00e9\u0301", "\u00a0", "\uffff", "\U0010ffff",
}

func TestAppendV2ImageMatchesMarshal(t *testing.T) {
	size, vsize, zero, neg := int64(1<<40), int64(10<<30), int64(0), int64(-7)
	seoul := time.FixedZone("KST", 9*3600)
	full := benchPage()[3]
	many := map[string]string{}
	for i := range 70 { // more than appendV2Image keeps on the stack
		many[fmt.Sprintf("p%02d", 69-i)] = fmt.Sprint(i)
	}
	allKeys := map[string]string{}
	for _, f := range v2Fields {
		allKeys[f.key] = "property " + f.key
		allKeys[f.key+"_"] = "after " + f.key
		allKeys[f.key[:len(f.key)-1]] = "before " + f.key
	}
	for _, tc := range []struct {
		name string
		img  *cloudimage.Image
	}{
		{"zero", &cloudimage.Image{}},
		{"queued", &cloudimage.Image{ID: "0f8a2c4e-6b1d-4e3f-9a7c-5d2b8e1f4a6c", Status: cloudimage.StatusQueued,
			Visibility: cloudimage.VisibilityPrivate, Owner: "p",
			CreatedAt: time.Unix(1, 0), UpdatedAt: time.Unix(2, 0)}},
		{"full", full},
		{"zone and fractions", &cloudimage.Image{ID: "z", Name: "n", Protected: true, Hidden: true,
			CreatedAt: time.Date(2017, 5, 16, 11, 17, 50, 999999999, seoul),
			UpdatedAt: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)}},
		{"far years", &cloudimage.Image{CreatedAt: time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC),
			UpdatedAt: time.Date(12345, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"sizes", &cloudimage.Image{Size: &zero, VirtualSize: &neg, MinDisk: -1, MinRAM: 1 << 62}},
		{"one size", &cloudimage.Image{Size: &size}},
		{"other size", &cloudimage.Image{VirtualSize: &vsize}},
		{"tags nil", &cloudimage.Image{Tags: nil}},
		{"tags empty", &cloudimage.Image{Tags: []string{}}},
		{"tags", &cloudimage.Image{Tags: []string{"a", "", "<b>", "\xff", "a"}}},
		{"properties nil", &cloudimage.Image{Properties: nil}},
		{"properties empty", &cloudimage.Image{Properties: map[string]string{}}},
		{"property keys around core keys", &cloudimage.Image{Name: "n", Properties: map[string]string{
			"": "empty key", "A": "upper", "a": "first", "checksum0": "x", "d": "between", "id_": "x",
			"min": "x", "min_disk_": "x", "os_hidden_x": "between os_hidden and owner", "p": "x",
			"self0": "x", "tag": "x", "tagsx": "x", "visibility_": "x", "zz": "last", "~": "after all",
			"\xff": "bad key", "<&>": "html key", "ключ": "unicode key", "\u2028": "separator key",
			"os_distro": "", "os_type": "",
		}}},
		{"properties named like core keys", &cloudimage.Image{ID: "real-id", Status: cloudimage.StatusActive,
			Properties: map[string]string{"name": "not the name", "status": "not the status", "id": "x",
				"self": "x", "schema": "x", "tags": "x", "size": "1", "created_at": "x", "visibility": "x"}}},
		{"every core key as a property, and its neighbours", &cloudimage.Image{Name: "n", Properties: allKeys}},
		{"many properties", &cloudimage.Image{Properties: many}},
		{"awkward ID", &cloudimage.Image{ID: "<id>&\"\\\xff\xe2\x80"}},
		{"awkward status", &cloudimage.Image{Status: "<status>", Visibility: "vis\u2028"}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkV2Image(t, tc.img) })
	}
	for i, s := range awkward {
		t.Run(fmt.Sprintf("awkward %d", i), func(t *testing.T) {
			checkV2Image(t, &cloudimage.Image{
				ID: s, Name: s, Status: cloudimage.Status(s), Visibility: cloudimage.Visibility(s),
				DiskFormat: s, ContainerFormat: s, Checksum: s, HashAlgo: s, HashValue: s, Owner: s,
				Tags: []string{s, s}, Properties: map[string]string{s: s, "k" + s: s + "v", "name" + s: s},
			})
		})
	}
}

// TestV2FieldsAreV2Image pins v2Fields to v2Image: the same keys, sorted.
func TestV2FieldsAreV2Image(t *testing.T) {
	var keys, want []string
	for _, f := range v2Fields {
		keys = append(keys, f.key)
	}
	for k := range v2Image(&cloudimage.Image{}) {
		want = append(want, k)
	}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("v2Fields %q, want %q", keys, want)
	}
}

// TestAppendV2ImageAllocations: an image with a catalog's handful of
// properties costs nothing but room in the output buffer.
func TestAppendV2ImageAllocations(t *testing.T) {
	img := benchPage()[0]
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { buf = appendV2Image(buf[:0], img) }); n != 0 {
		t.Errorf("appendV2Image: %v allocations, want 0", n)
	}
}

// TestWriteV2Image: show, create and update answer what writeJSON would
// with v2Image.
func TestWriteV2Image(t *testing.T) {
	img := benchPage()[1]
	img.Properties["note"] = "<b>&\u2028"
	want := httptest.NewRecorder()
	writeJSON(want, 201, v2Image(img))
	got := httptest.NewRecorder()
	writeV2Image(got, 201, img)
	if got.Code != want.Code || !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) ||
		got.Header().Get("Content-Type") != want.Header().Get("Content-Type") ||
		len(got.Header()) != len(want.Header()) {
		t.Errorf("writeV2Image: %d %v %s\nwriteJSON: %d %v %s", got.Code, got.Header(), got.Body.Bytes(),
			want.Code, want.Header(), want.Body.Bytes())
	}
}

// FuzzAppendV2Image compares appendV2Image with json.Marshal of v2Image
// on images whose strings, properties and tags the fuzzer makes up.
func FuzzAppendV2Image(f *testing.F) {
	f.Add("0f8a2c4e-6b1d-4e3f-9a7c-5d2b8e1f4a6c", "ubuntu", "active", "os_type", "linux", "name", "x<y",
		"owner", "lts", uint8(0), int64(1<<30))
	f.Add("", "", "", "", "", "", "", "", "", uint8(0xff), int64(-1))
	f.Add("id", "n", "active", "zeta", "1", "alpha", "2", "os_x", "t", uint8(32|16|4), int64(5))
	f.Add("id", "n", "active", "name", "<1>", "", "\xff", "status", "t", uint8(32|64|8|1), int64(1e9))
	for _, s := range awkward {
		f.Add(s, s, s, s, s, "k"+s, s, s+"z", s, uint8(len(s)), int64(len(s)))
	}
	f.Fuzz(func(t *testing.T, id, name, status, k1, v1, k2, v2, k3, tag string, flags uint8, n int64) {
		img := &cloudimage.Image{
			ID: id, Name: name, Status: cloudimage.Status(status), Visibility: cloudimage.Visibility(v1),
			Protected: flags&1 != 0, Hidden: flags&2 != 0, DiskFormat: k3, Owner: v2,
			MinDisk: int(n), MinRAM: int(n >> 7), CreatedAt: time.Unix(n, n).In(time.FixedZone("y", -int(flags)*61)),
			UpdatedAt: time.Unix(n>>3, 0).In(time.FixedZone("x", int(flags)*97)),
		}
		if flags&4 != 0 {
			img.Size = &n
		}
		if flags&8 != 0 {
			img.Tags = []string{}
		}
		if flags&16 != 0 {
			img.Tags = append(img.Tags, tag, name, k1)
		}
		if flags&32 != 0 {
			img.Properties = map[string]string{k1: v1, k2: v2, k3: tag, strings.ToUpper(k1): name}
		}
		if flags&64 != 0 {
			if img.Properties == nil {
				img.Properties = map[string]string{}
			}
			img.Properties[v2Fields[int(flags)%len(v2Fields)].key] = v2
			img.Properties[v2Fields[int(n&0xff)%len(v2Fields)].key+k2] = v1
		}
		want, err := json.Marshal(v2Image(img))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendV2Image(nil, img); !bytes.Equal(got, want) {
			t.Fatalf("appendV2Image\n got %s\nwant %s", got, want)
		}
	})
}
