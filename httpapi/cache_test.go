package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/sqlite"
)

// countingImages counts the lists the image service asks the store for.
type countingImages struct {
	*sqlite.DB
	lists atomic.Int64
}

func (c *countingImages) ListImages(ctx context.Context, q cloudimage.ImageQuery) ([]*cloudimage.Image, error) {
	c.lists.Add(1)
	return c.DB.ListImages(ctx, q)
}

// newCountingEnv is an env whose image store counts its lists.
func newCountingEnv(t *testing.T, pageCacheBytes int) (*env, *countingImages) {
	t.Helper()
	var store *countingImages
	e := newEnvWith(t, envConfig{pageCacheBytes: pageCacheBytes, images: func(db *sqlite.DB) cloudimage.ImageStore {
		store = &countingImages{DB: db}
		return store
	}})
	return e, store
}

// get returns the body of a GET that must answer 200.
func (e *env) get(t *testing.T, path, token string) []byte {
	t.Helper()
	status, _, body := e.call(t, "GET", path, token, "")
	if status != http.StatusOK {
		t.Fatalf("GET %s: status %d; body %q", path, status, body)
	}
	return body
}

// TestPageCacheAnswersRepeats checks that a list asked again, with
// nothing changed, is answered with the same bytes without the store.
func TestPageCacheAnswersRepeats(t *testing.T) {
	e, store := newCountingEnv(t, 0)
	tok := e.token(t, e.a, cloudimage.RoleMember)
	for i := range 3 {
		e.newImage(t, tok, "img-"+string(rune('a'+i)))
	}
	for _, c := range []struct{ path, other string }{
		{imagesPath(e.a) + "?limit=2", imagesPath(e.a) + "?limit=1"},
		{"/v2/images?limit=2&sort=name:asc", "/v2/images?limit=1&sort=name:asc"},
	} {
		path := c.path
		before := store.lists.Load()
		first := e.get(t, path, tok)
		if store.lists.Load() == before {
			t.Fatalf("GET %s: the first list did not reach the store", path)
		}
		asked := store.lists.Load()
		for range 3 {
			if again := e.get(t, path, tok); !bytes.Equal(again, first) {
				t.Fatalf("GET %s again: body differs:\n%s\nthen\n%s", path, first, again)
			}
		}
		if n := store.lists.Load() - asked; n != 0 {
			t.Errorf("GET %s asked again 3 times: the store was asked %d more times, want 0", path, n)
		}
		// Another query is another page.
		e.get(t, c.other, tok)
		if store.lists.Load() == asked {
			t.Errorf("GET %s was answered from the cache of GET %s", c.other, path)
		}
	}
}

// TestPageCacheSeesEveryChange checks that a cached list never outlives a
// change: made through the API, or straight in the database by another
// process, as another replica or the CLI would.
func TestPageCacheSeesEveryChange(t *testing.T) {
	e, store := newCountingEnv(t, 0)
	ctx := context.Background()
	tok := e.token(t, e.a, cloudimage.RoleMember)
	id := e.newImage(t, tok, "before")
	other, err := sqlite.Open(ctx, e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	v1, v2 := imagesPath(e.a), "/v2/images"
	lists := func() (string, string) {
		return string(e.get(t, v1, tok)), string(e.get(t, v2, tok))
	}
	warm := func() {
		t.Helper()
		lists()
		n := store.lists.Load()
		lists()
		if store.lists.Load() != n {
			t.Fatal("the lists were not cached")
		}
	}

	warm()
	if _, err := other.UpdateImage(ctx, id, func(img *cloudimage.Image) error {
		img.Name = "renamed-elsewhere"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if a, b := lists(); !strings.Contains(a, "renamed-elsewhere") || !strings.Contains(b, "renamed-elsewhere") {
		t.Fatalf("a rename by another process is not in the lists:\n%s\n%s", a, b)
	}

	warm()
	status, _, body := e.call(t, "PATCH", "/v2/images/"+id, tok,
		`[{"op":"replace","path":"/name","value":"renamed-here"}]`,
		"Content-Type", "application/openstack-images-v2.1-json-patch")
	if status != http.StatusOK {
		t.Fatalf("PATCH: %d %s", status, body)
	}
	if a, b := lists(); !strings.Contains(a, "renamed-here") || !strings.Contains(b, "renamed-here") {
		t.Fatalf("a rename through the API is not in the lists:\n%s\n%s", a, b)
	}

	warm()
	added := e.newImage(t, tok, "added")
	if a, b := lists(); !strings.Contains(a, added) || !strings.Contains(b, added) {
		t.Fatalf("a new image is not in the lists:\n%s\n%s", a, b)
	}

	warm()
	if status, _, body := e.call(t, "DELETE", "/v2/images/"+added, tok, ""); status != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", status, body)
	}
	if a, b := lists(); strings.Contains(a, added) || strings.Contains(b, added) {
		t.Fatalf("a deleted image is still in the lists:\n%s\n%s", a, b)
	}

	// A token revoked in the database by another process is refused at
	// once, though the page it listed is cached.
	warm()
	if err := other.DeleteToken(ctx, cloudimage.HashToken(tok)); err != nil {
		t.Fatal(err)
	}
	if status, _, body := e.call(t, "GET", v2, tok, ""); status != http.StatusUnauthorized {
		t.Fatalf("GET %s with a revoked token: status %d, want 401; body %q", v2, status, body)
	}
	h, _ := e.nhn(t, "GET", v1, tok, "")
	if h.IsSuccessful {
		t.Fatalf("GET %s with a revoked token succeeded", v1)
	}
}

// TestPageCacheIsPerCaller checks that a page cached for one caller is
// never another's answer, even to the same URL.
func TestPageCacheIsPerCaller(t *testing.T) {
	e, _ := newCountingEnv(t, 0)
	ta := e.token(t, e.a, cloudimage.RoleMember)
	tb := e.token(t, e.b, cloudimage.RoleMember)
	private := e.newImage(t, ta, "a-private")
	for range 2 {
		if body := e.get(t, "/v2/images", ta); !strings.Contains(string(body), private) {
			t.Fatalf("project A does not see its own image: %s", body)
		}
	}
	if body := e.get(t, "/v2/images", tb); strings.Contains(string(body), private) {
		t.Fatalf("project B sees project A's private image from the same URL: %s", body)
	}
	// Project B's token on project A's appkey is refused, not answered
	// with A's cached page.
	e.get(t, imagesPath(e.a), ta)
	h, top := e.nhn(t, "GET", imagesPath(e.a), tb, "")
	if h.IsSuccessful || strings.Contains(string(top["images"]), private) {
		t.Fatalf("project B's token on project A's appkey: %+v %s", h, top["images"])
	}
}

// TestPageCacheKeepsOnlySmallPages checks that a page larger than the
// cache may hold is served from the store every time.
func TestPageCacheKeepsOnlySmallPages(t *testing.T) {
	e, store := newCountingEnv(t, 300)
	tok := e.token(t, e.a, cloudimage.RoleMember)
	for _, name := range []string{"one", "two", "three"} {
		e.newImage(t, tok, name)
	}
	path := imagesPath(e.a)
	first := e.get(t, path, tok)
	if len(first) <= 300 {
		t.Fatalf("the list is only %d bytes; the test needs more than the cache", len(first))
	}
	n := store.lists.Load()
	if again := e.get(t, path, tok); !bytes.Equal(again, first) {
		t.Fatal("the list changed with nothing written")
	}
	if store.lists.Load() == n {
		t.Error("a list larger than the whole cache was answered from it")
	}
}

// TestPageCacheBoundHoldsWithLongQueries checks that the cache's bound is
// on what it holds, not only on the bodies: queries padded with what the
// list ignores (v1.0 ignores unknown parameters, v2 answers for the last
// marker only) give small pages under long keys, and must not make the
// cache hold many times its size.
func TestPageCacheBoundHoldsWithLongQueries(t *testing.T) {
	const budget = 64 << 10
	e, _ := newCountingEnv(t, budget)
	tok := e.token(t, e.a, cloudimage.RoleReader)
	pad := strings.Repeat("x", 256<<10)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 100 {
		e.get(t, fmt.Sprintf("%s?pad%d=%s", imagesPath(e.a), i, pad), tok)
		e.get(t, fmt.Sprintf("/v2/images?limit=1&marker=%d%s&marker=", i, pad), tok)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	// 200 queries of 256 KiB are 50 MiB: kept as keys, they would show.
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 8<<20 {
		t.Errorf("a page cache of %d KiB grew the heap by %d MiB over 200 padded queries", budget>>10, grown>>20)
	}
}
