package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/httpapi"
	"github.com/google/uuid"
)

const (
	benchImages = 100_000 // images in project A's view
	benchDeep   = 90_000  // how deep the deep page's marker is
	benchLimit  = 100
)

// benchOK starts every successful v1.0 answer.
var benchOK = []byte(`{"header":{"isSuccessful":true,"resultCode":0`)

// benchCatalog is a server whose project A sees benchImages images: its
// own, and every twentieth one public from project B.
type benchCatalog struct {
	e      *env         // without a page cache: every list reaches the store
	cached http.Handler // the same server with the page cache on
	token  string       // of a member of A
	ids    []string     // A's view, newest first
	base   time.Time
	pool   int // delete-pool images made so far
}

// BenchmarkNHNList measures the v1.0 list and delete through the whole
// handler, authentication included, over 100,000 images in SQLite. The
// catalog is seeded once, here, and shared by the sub-benchmarks.
func BenchmarkNHNList(b *testing.B) {
	c := seedCatalog(b)

	b.Run("FirstPage", func(b *testing.B) {
		path := fmt.Sprintf("%s?limit=%d", imagesPath(c.e.a), benchLimit)
		c.checkPage(b, path, c.ids[:benchLimit])
		for b.Loop() {
			c.serve(b, "GET", path)
		}
	})
	b.Run("DeepPage", func(b *testing.B) {
		path := fmt.Sprintf("%s?limit=%d&marker=%s", imagesPath(c.e.a), benchLimit, c.ids[benchDeep-1])
		c.checkPage(b, path, c.ids[benchDeep:benchDeep+benchLimit])
		for b.Loop() {
			c.serve(b, "GET", path)
		}
	})
	// The first page asked again with nothing changed, from the page cache.
	b.Run("FirstPageCached", func(b *testing.B) {
		path := fmt.Sprintf("%s?limit=%d", imagesPath(c.e.a), benchLimit)
		want := c.serve(b, "GET", path).Body.Bytes()
		for b.Loop() {
			if got := c.serveWith(b, c.cached, "GET", path).Body.Bytes(); !bytes.Equal(got, want) {
				b.Fatalf("the cached page differs from the store's:\n%.300s\n%.300s", got, want)
			}
		}
	})
	b.Run("Delete", func(b *testing.B) {
		// Each iteration deletes an image of its own, made for it beforehand
		// and older than the whole catalog, so the pages above stay as they
		// were and the catalog never runs out.
		ids := c.deletePool(b, b.N)
		b.ResetTimer()
		for i := range b.N {
			c.serve(b, "DELETE", imagesPath(c.e.a)+"?id="+ids[i])
		}
	})
}

func seedCatalog(b *testing.B) *benchCatalog {
	b.Helper()
	start := time.Now()
	e := buildEnvWith(b, "http://cloudimage.test", envConfig{pageCacheBytes: -1})
	c := &benchCatalog{
		e: e,
		cached: httpapi.New(httpapi.Config{Images: e.images, Identity: e.identity, PublicURL: e.url,
			Versions: e.db, PageCacheBytes: httpapi.DefaultPageCacheBytes}).Handler(),
		token: e.token(b, e.a, cloudimage.RoleMember),
		base:  time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC),
	}
	imgs := make([]*cloudimage.Image, benchImages)
	for i := range imgs {
		owner, vis := e.a.ID, cloudimage.VisibilityPrivate
		switch {
		case i%20 == 0:
			owner, vis = e.b.ID, cloudimage.VisibilityPublic
		case i%2 == 0:
			vis = cloudimage.VisibilityShared
		}
		imgs[i] = benchImage(owner, vis, c.base.Add(time.Duration(i)*time.Microsecond), i)
	}
	if err := e.db.InsertImages(context.Background(), imgs); err != nil {
		b.Fatal(err)
	}
	// The view is newest first: the last inserted comes first.
	c.ids = make([]string, len(imgs))
	for i, img := range imgs {
		c.ids[len(imgs)-1-i] = img.ID
	}
	b.Logf("seeded %d images in %v", len(imgs), time.Since(start).Round(time.Millisecond))
	return c
}

func benchImage(owner string, vis cloudimage.Visibility, at time.Time, i int) *cloudimage.Image {
	size := int64(1<<30 + i)
	return &cloudimage.Image{
		ID:              uuid.NewString(),
		Name:            fmt.Sprintf("image-%06d", i),
		Status:          cloudimage.StatusActive,
		Visibility:      vis,
		DiskFormat:      "qcow2",
		ContainerFormat: "bare",
		MinDisk:         20,
		MinRAM:          1024,
		Size:            &size,
		VirtualSize:     &size,
		Checksum:        "0123456789abcdef0123456789abcdef",
		HashAlgo:        "sha512",
		HashValue:       "00",
		Owner:           owner,
		Properties:      map[string]string{"os_type": "linux", "os_distro": "ubuntu"},
		CreatedAt:       at,
		UpdatedAt:       at,
	}
}

// deletePool makes n more images of A, older than the whole catalog.
func (c *benchCatalog) deletePool(b *testing.B, n int) []string {
	b.Helper()
	imgs := make([]*cloudimage.Image, n)
	ids := make([]string, n)
	for i := range imgs {
		c.pool++
		at := c.base.Add(-time.Second - time.Duration(c.pool)*time.Microsecond)
		imgs[i] = benchImage(c.e.a.ID, cloudimage.VisibilityPrivate, at, -c.pool)
		ids[i] = imgs[i].ID
	}
	if err := c.e.db.InsertImages(context.Background(), imgs); err != nil {
		b.Fatal(err)
	}
	return ids
}

// serve sends one v1.0 request through the handler and fails the
// benchmark unless it succeeded.
func (c *benchCatalog) serve(b *testing.B, method, path string) *httptest.ResponseRecorder {
	return c.serveWith(b, c.e.handler, method, path)
}

// serveWith is serve through h.
func (c *benchCatalog) serveWith(b *testing.B, h http.Handler, method, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	req.Header.Set("X-Auth-Token", c.token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !bytes.HasPrefix(rec.Body.Bytes(), benchOK) {
		b.Fatalf("%s %s: %d %.300s", method, path, rec.Code, rec.Body.Bytes())
	}
	return rec
}

// checkPage checks once, in full, that path lists exactly want.
func (c *benchCatalog) checkPage(b *testing.B, path string, want []string) {
	b.Helper()
	rec := c.serve(b, "GET", path)
	h, top, err := parseEnvelope(rec.Code, rec.Body.Bytes())
	if err != nil || !h.IsSuccessful {
		b.Fatalf("GET %s: %v %+v", path, err, h)
	}
	var page []struct{ ID string }
	if err := json.Unmarshal(top["images"], &page); err != nil {
		b.Fatal(err)
	}
	got := make([]string, len(page))
	for i, img := range page {
		got[i] = img.ID
	}
	if !slices.Equal(got, want) {
		b.Fatalf("GET %s: listed %d images, not the %d expected (first %v)", path, len(got), len(want), got[:min(3, len(got))])
	}
}

// BenchmarkV2List measures the v2 list through the whole handler over the
// same 100,000 images: the default order from the start and deep in the
// list, a filtered page, and pages in orders with and without an index.
func BenchmarkV2List(b *testing.B) {
	c := seedCatalog(b)
	for _, bc := range []struct {
		name, query string
		first       string // the ID the page must start with
	}{
		{"FirstPage", fmt.Sprintf("limit=%d", benchLimit), c.ids[0]},
		{"DeepPage", fmt.Sprintf("limit=%d&marker=%s", benchLimit, c.ids[benchDeep-1]), c.ids[benchDeep]},
		{"Filtered", fmt.Sprintf("limit=%d&visibility=shared&os_distro=ubuntu&size_min=1", benchLimit), c.ids[1]},
		{"SortedByName", fmt.Sprintf("limit=%d&sort=name:asc", benchLimit), c.ids[len(c.ids)-1]},
		// No index has this order: the branches sort their images.
		{"SortedBySize", fmt.Sprintf("limit=%d&sort=size:desc", benchLimit), c.ids[0]},
	} {
		b.Run(bc.name, func(b *testing.B) {
			path := "/v2/images?" + bc.query
			var page struct {
				Images []struct{ ID string }
			}
			if err := json.Unmarshal(c.serveV2(b, path).Body.Bytes(), &page); err != nil {
				b.Fatal(err)
			}
			if len(page.Images) != benchLimit || page.Images[0].ID != bc.first {
				b.Fatalf("GET %s: %d images, the first %v; want %d from %s", path, len(page.Images),
					page.Images[:min(1, len(page.Images))], benchLimit, bc.first)
			}
			for b.Loop() {
				c.serveV2(b, path)
			}
		})
	}
}

// serveV2 sends one v2 GET through the handler and fails the benchmark
// unless it answered 200.
func (c *benchCatalog) serveV2(b *testing.B, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("X-Auth-Token", c.token)
	rec := httptest.NewRecorder()
	c.e.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("GET %s: %d %.300s", path, rec.Code, rec.Body.Bytes())
	}
	return rec
}
