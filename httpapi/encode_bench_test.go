package httpapi

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
)

// encodePageSize is the page the encoding benchmarks write: the v1.0
// list's limit=100 and the v2 list's default.
const encodePageSize = 100

// benchPage is encodePageSize active images as a catalog holds them: data,
// both hashes, two tags and a handful of properties each.
func benchPage() []*cloudimage.Image {
	base := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	imgs := make([]*cloudimage.Image, encodePageSize)
	for i := range imgs {
		size, vsize := int64(1<<30+i), int64(10<<30)
		imgs[i] = &cloudimage.Image{
			ID:   fmt.Sprintf("0f8a2c4e-6b1d-4e3f-9a7c-%012d", i),
			Name: fmt.Sprintf("ubuntu-24.04-server-%d", i), Status: cloudimage.StatusActive,
			Visibility: cloudimage.VisibilityShared, DiskFormat: "qcow2", ContainerFormat: "bare",
			MinDisk: 20, MinRAM: 1024, Size: &size, VirtualSize: &vsize,
			Checksum: "672169e48c33b85d96a6336636cc8d27", HashAlgo: "sha512",
			HashValue: "15af76e14b02ae983c77c04919408bef37dc7899b9aa3279e5447ada21b5e833" +
				"8915c6b70c5207a33a4c941109bdc0567a2baa89e12f1c8fd13c43733f9eb0d8",
			Owner: "67b098d8bb008faf793c9ff5c0f91734", Tags: []string{"x", "lts"},
			Properties: map[string]string{"os_type": "linux", "os_distro": "ubuntu", "os_version": "24.04",
				"hypervisor_type": "kvm", "nhncloud_allow_download": "true"},
			CreatedAt: base.Add(time.Duration(i) * time.Second), UpdatedAt: base.Add(time.Hour),
		}
	}
	return imgs
}

// BenchmarkEncodeV2Page writes one v2 list page of 100 images as
// listImages does (its loop, without the store): the envelope, each
// image's appendV2Image, the first and next links.
func BenchmarkEncodeV2Page(b *testing.B) {
	imgs := benchPage()
	l, err := parseV2List(fmt.Sprintf("limit=%d", encodePageSize), cloudimage.ProfileNHN)
	if err != nil {
		b.Fatal(err)
	}
	cw := &countWriter{}
	bw := bufio.NewWriterSize(cw, 32<<10)
	var obj []byte
	b.ReportAllocs()
	for b.Loop() {
		bw.WriteString(`{"images":[`)
		for i, img := range imgs {
			if i > 0 {
				bw.WriteByte(',')
			}
			obj = appendV2Image(obj[:0], img)
			bw.Write(obj)
		}
		bw.WriteString(`],"first":`)
		bw.Write(jsonString(l.firstLink()))
		bw.WriteString(`,"next":`)
		bw.Write(jsonString(l.nextLink(imgs[len(imgs)-1].ID)))
		bw.WriteString(`,"schema":"/v2/schemas/images"}` + "\n")
		bw.Flush()
	}
	b.SetBytes(cw.n / int64(b.N))
}

// BenchmarkEncodeNHNPage writes one v1.0 list page of 100 images as
// nhnListImages does: the header, each image's json.Marshal of toNHNImage.
func BenchmarkEncodeNHNPage(b *testing.B) {
	imgs := benchPage()
	cw := &countWriter{}
	bw := bufio.NewWriterSize(cw, 32<<10)
	b.ReportAllocs()
	for b.Loop() {
		bw.WriteString(`{"header":{"isSuccessful":true,"resultCode":0,"resultMessage":"SUCCESS"},"images":[`)
		for i, img := range imgs {
			j, err := json.Marshal(toNHNImage(img))
			if err != nil {
				b.Fatal(err)
			}
			if i > 0 {
				bw.WriteByte(',')
			}
			bw.Write(j)
		}
		bw.WriteString("]}\n")
		bw.Flush()
	}
	b.SetBytes(cw.n / int64(b.N))
}

// countWriter discards what it is written and counts it.
type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

var _ io.Writer = (*countWriter)(nil)
