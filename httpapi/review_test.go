package httpapi_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudimage/cloudimage"
	"github.com/google/uuid"
)

// repeatParam returns n parameters made by f(i), joined with &.
func repeatParam(n int, f func(i int) string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = f(i)
	}
	return strings.Join(parts, "&")
}

// inList returns "in:" followed by n values made by f(i).
func inList(n int, f func(i int) string) string {
	vals := make([]string, n)
	for i := range vals {
		vals[i] = f(i)
	}
	return "in:" + strings.Join(vals, ",")
}

// listStatus sends a list that must answer status, with a message that
// contains want when it fails. Only the start of a long query is shown.
func listStatus(t *testing.T, e *env, token, query string, status int, want string) {
	t.Helper()
	shown := query
	if len(shown) > 80 {
		shown = fmt.Sprintf("%s... (%d bytes)", shown[:80], len(query))
	}
	code, hdr, b := e.call(t, "GET", "/v2/images?"+query, token, "")
	if len(b) > 300 {
		b = b[:300]
	}
	if code != status || !strings.Contains(string(b), want) {
		t.Errorf("GET /v2/images?%s: %d %q, want %d with %q", shown, code, b, status, want)
		return
	}
	if status != http.StatusOK {
		checkPlainError(t, code, hdr, b)
	}
}

// TestListFilterCaps checks that a list with as many filters as the caps
// allow is answered, and one with more is refused with 400, never a 500
// from the database (the env fails the test on any logged error).
func TestListFilterCaps(t *testing.T) {
	e := newEnv(t)
	member := e.token(t, e.a, cloudimage.RoleMember)
	admin := e.token(t, e.a, cloudimage.RoleAdmin)
	id := e.newImage(t, member, "capped", "tags", []string{"t0"}, "k0", "v")

	tags := func(n int) string { return repeatParam(n, func(i int) string { return fmt.Sprintf("tag=t%d", i) }) }
	props := func(n int) string { return repeatParam(n, func(i int) string { return fmt.Sprintf("k%d=v", i) }) }
	times := func(key string, n int) string {
		return repeatParam(n, func(i int) string { return fmt.Sprintf("%s=gt:%04d-01-01T00:00:00Z", key, 1900+i) })
	}
	ids := func(n int) string {
		return "id=" + inList(n, func(i int) string {
			if i == 0 {
				return id
			}
			return uuid.NewString()
		})
	}
	short := func(key string, n int) string {
		return key + "=" + inList(n, func(i int) string { return fmt.Sprintf("v%d", i) })
	}
	const maxTimes, maxIn = 10, 1000
	for _, tc := range []struct {
		name, under, over, msg string
	}{
		{"tags", tags(cloudimage.MaxTags), tags(cloudimage.MaxTags + 1),
			fmt.Sprintf("Too many tag filters: at most %d", cloudimage.MaxTags)},
		{"tags, 1000", tags(1), tags(1000), "Too many tag filters"},
		{"properties", props(cloudimage.MaxProperties), props(cloudimage.MaxProperties + 1),
			fmt.Sprintf("Too many property filters: at most %d", cloudimage.MaxProperties)},
		{"properties, 1000", props(1), props(1000), "Too many property filters"},
		{"created_at", times("created_at", maxTimes), times("created_at", maxTimes+1),
			fmt.Sprintf("Too many created_at filters: at most %d", maxTimes)},
		{"created_at, 1000", times("created_at", 1), times("created_at", 1000), "Too many created_at filters"},
		{"updated_at", times("updated_at", maxTimes), times("updated_at", maxTimes+1),
			fmt.Sprintf("Too many updated_at filters: at most %d", maxTimes)},
		{"id in", ids(maxIn), ids(maxIn + 1),
			fmt.Sprintf("Too many values in the id filter: at most %d", maxIn)},
		{"id in, 40000", short("id", 1), short("id", 40000), "Too many values in the id filter"},
		{"name in", short("name", maxIn), short("name", maxIn+1), "Too many values in the name filter"},
		{"status in", short("status", maxIn), short("status", maxIn+1), "Too many values in the status filter"},
		{"disk_format in", short("disk_format", maxIn), short("disk_format", maxIn+1),
			"Too many values in the disk_format filter"},
		{"container_format in", short("container_format", maxIn), short("container_format", maxIn+1),
			"Too many values in the container_format filter"},
		{"everything at its cap",
			strings.Join([]string{tags(cloudimage.MaxTags), props(cloudimage.MaxProperties),
				times("created_at", maxTimes), times("updated_at", maxTimes), ids(maxIn), short("name", maxIn),
				short("status", maxIn), short("disk_format", maxIn), short("container_format", maxIn)}, "&"),
			tags(cloudimage.MaxTags) + "&" + props(cloudimage.MaxProperties+1), "Too many property filters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, tok := range []string{member, admin} {
				for _, vis := range []string{"", "&visibility=all"} {
					listStatus(t, e, tok, tc.under+vis, http.StatusOK, "")
					listStatus(t, e, tok, tc.over+vis, http.StatusBadRequest, tc.msg)
				}
			}
		})
	}
	// A repeated tag is one filter.
	listStatus(t, e, member, repeatParam(1000, func(int) string { return "tag=t0" }), http.StatusOK, "")
	// Under the caps the filters still filter.
	if got := e.listV2(t, member, "tag=t0&k0=v&"+ids(maxIn)).ids(); len(got) != 1 || got[0] != id {
		t.Errorf("filtered at the caps: %v, want [%s]", got, id)
	}
}

// checkAllow checks a 405's Allow header.
func checkAllow(t *testing.T, what string, hdr http.Header, want string) {
	t.Helper()
	if got := hdr.Get("Allow"); got != want {
		t.Errorf("%s: Allow %q, want %q", what, got, want)
	}
}

// TestUnknownRoutes checks that routes no handler serves, and methods a
// route does not take, are answered in the face's own error format.
func TestUnknownRoutes(t *testing.T) {
	e := newEnv(t)
	member := e.token(t, e.a, cloudimage.RoleMember)
	id := e.newImage(t, member, "routes")
	img := "/v2/images/" + id
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/v2/nope", 404, ""},
		{"GET", img + "/", 404, ""},
		{"PUT", img + "/tags/", 404, ""},
		{"POST", img + "/actions/bogus", 404, ""},
		{"GET", "/nope", 404, ""},
		{"GET", "/v1.0x", 404, ""},
		{"GET", "/identityx", 404, ""},
		{"DELETE", "/v2/images", 405, "GET, HEAD, POST"},
		{"PUT", img, 405, "DELETE, GET, HEAD, PATCH"},
		{"GET", img + "/tags/t1", 405, "DELETE, PUT"},
		{"POST", "/versions", 405, "GET, HEAD"},
	} {
		what := tc.method + " " + tc.path
		status, hdr, b := e.call(t, tc.method, tc.path, member, "")
		expectError(t, what, status, hdr, b, tc.status, "")
		if strings.Contains(string(b), "page not found") || strings.Contains(string(b), "\nMethod Not Allowed\n") {
			t.Errorf("%s: Go's default body %q", what, b)
		}
		if hdr.Get("X-Openstack-Request-Id") == "" {
			t.Errorf("%s: no request ID", what)
		}
		checkAllow(t, what, hdr, tc.allow)
	}

	// The v1.0 face: the envelope with -7; an unknown route keeps HTTP
	// 404 (digest §7 #10).
	for _, path := range []string{"/v1.0/nope", "/v1.0/", "/v1.0", "/v1.0/appkeys/" + e.a.AppKey + "/flavors"} {
		status, _, b := e.call(t, "GET", path, member, "")
		if status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, status)
		}
		h, top, err := parseEnvelope(http.StatusOK, b)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
			continue
		}
		if h.ResultCode != -7 || !strings.HasPrefix(h.ResultMessage, "Not supported: ") || len(top) != 1 {
			t.Errorf("GET %s: header %+v, keys %v; want -7 Not supported: ..., only header", path, h, keys(top))
		}
	}

	// The identity face: Keystone's JSON error.
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/identity/nope", 404, ""},
		{"GET", "/identity/v3/nope", 404, ""},
		{"POST", "/identity/v3", 405, "GET, HEAD"},
		{"PUT", "/identity/v3/auth/tokens", 405, "DELETE, GET, HEAD, POST"},
	} {
		what := tc.method + " " + tc.path
		status, hdr, b := e.call(t, tc.method, tc.path, member, "")
		if status != tc.status {
			t.Errorf("%s: %d, want %d; body %q", what, status, tc.status, b)
			continue
		}
		if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: Content-Type %q", what, ct)
		}
		keystoneError(t, status, hdr, b)
		checkAllow(t, what, hdr, tc.allow)
	}

	// What the mux answers itself other than 404 and 405 (a redirect to
	// the clean path) is passed through.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/v2//images?limit=1", nil)
	e.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusTemporaryRedirect || rec.Header().Get("Location") != "/v2/images?limit=1" {
		t.Errorf("GET /v2//images: %d Location %q, want 307 to /v2/images?limit=1", rec.Code, rec.Header().Get("Location"))
	}
}

// TestRangeNotSatisfiable checks that every range the data cannot satisfy
// is answered 416 in Glance's format with the data's size.
func TestRangeNotSatisfiable(t *testing.T) {
	e := newEnv(t)
	member := e.token(t, e.a, cloudimage.RoleMember)
	id := e.newImage(t, member, "ranged")
	data := testData(1000)
	e.upload(t, member, id, data)
	path := "/v2/images/" + id + "/file"
	for _, rng := range []string{"bytes=99999999-", "bytes=1000-", "bytes=1000-2000,3000-", "bytes=-0",
		"bytes=5-1", "bytes=abc", "bytes=0-1,abc"} {
		status, hdr, b := e.call(t, "GET", path, member, "", "Range", rng)
		what := "Range " + rng
		expectError(t, what, status, hdr, b, http.StatusRequestedRangeNotSatisfiable, "")
		if got := hdr.Get("Content-Range"); got != "bytes */1000" {
			t.Errorf("%s: Content-Range %q, want bytes */1000", what, got)
		}
		if strings.Contains(string(b), "invalid range") {
			t.Errorf("%s: Go's default body %q", what, b)
		}
		if hdr.Get("Content-MD5") != "" || hdr.Get("Content-Length") != fmt.Sprint(len(b)) {
			t.Errorf("%s: Content-MD5 %q, Content-Length %q for %d bytes", what,
				hdr.Get("Content-MD5"), hdr.Get("Content-Length"), len(b))
		}
	}
	// A satisfiable range still gets its bytes.
	if status, _, b := e.call(t, "GET", path, member, "", "Range", "bytes=990-"); status != 206 || string(b) != string(data[990:]) {
		t.Errorf("bytes=990-: %d with %d bytes, want 206 with 10", status, len(b))
	}
}

// TestImageNameNull checks that an image without a name shows null.
func TestImageNameNull(t *testing.T) {
	forProfiles(t, func(t *testing.T, e *env, p cloudimage.Profile) {
		member := e.token(t, e.a, cloudimage.RoleMember)
		img := e.createImage(t, member, map[string]any{"os_type": "linux"})
		if v, ok := img["name"]; !ok || v != nil {
			t.Errorf("created without a name: name %#v (present %v), want null", v, ok)
		}
		id := img["id"].(string)
		if v, ok := e.getImage(t, member, id)["name"]; !ok || v != nil {
			t.Errorf("shown: name %#v, want null", v)
		}
		if got := e.listV2(t, member, "id="+id); len(got.Images) != 1 || got.Images[0]["name"] != nil {
			t.Errorf("listed: %v, want one image with name null", got.Images)
		}
		named := e.newImage(t, member, "named")
		status, b := e.patchImage(t, member, named, `[{"op":"add","path":"/name","value":null}]`)
		if status != http.StatusOK {
			t.Fatalf("PATCH add /name null: %d; body %q", status, b)
		}
		if v, ok := decodeObject(t, b)["name"]; !ok || v != nil {
			t.Errorf("after PATCH add /name null: name %#v, want null", v)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil || string(raw["name"]) != "null" {
			t.Errorf("after PATCH: name %s, want null", raw["name"])
		}
	})
}

// TestListEmptyFilters checks the empty filters Glance refuses, and that
// the others keep their meaning.
func TestListEmptyFilters(t *testing.T) {
	e := newEnv(t)
	member := e.token(t, e.a, cloudimage.RoleMember)
	id := e.newImage(t, member, "empty-filters")
	e.listError(t, member, "visibility=", http.StatusBadRequest, "Invalid visibility value: \n")
	e.listError(t, member, "visibility=public&visibility=", http.StatusBadRequest, "Invalid visibility value: ")
	e.listError(t, member, "member_status=", http.StatusBadRequest, "Invalid status: \n")
	// An empty owner is no owner filter; an empty name is the name "",
	// which no image here has.
	if got := e.listV2(t, member, "owner=").ids(); len(got) != 1 || got[0] != id {
		t.Errorf("owner=: %v, want [%s]", got, id)
	}
	if got := e.listV2(t, member, "name=").ids(); len(got) != 0 {
		t.Errorf("name=: %v, want none", got)
	}
	unnamed := e.createImage(t, member, map[string]any{"os_type": "linux"})["id"].(string)
	if got := e.listV2(t, member, "name=").ids(); len(got) != 1 || got[0] != unnamed {
		t.Errorf("name= with an unnamed image: %v, want [%s]", got, unnamed)
	}
}

// brokenWriter is a client that went away: every write of the body fails.
// It counts the status lines the handler tries to send.
type brokenWriter struct {
	header   http.Header
	statuses []int
}

func (w *brokenWriter) Header() http.Header         { return w.header }
func (w *brokenWriter) WriteHeader(status int)      { w.statuses = append(w.statuses, status) }
func (w *brokenWriter) Write(b []byte) (int, error) { return 0, errors.New("connection reset by peer") }

// TestListToAGoneClient checks that a list whose client has gone away is
// answered with one status line, not a second one and an error page
// appended to the images, and that nothing is logged as an error.
func TestListToAGoneClient(t *testing.T) {
	e := newEnv(t)
	token := e.token(t, e.a, cloudimage.RoleMember)
	e.newImage(t, token, "listed")
	for _, path := range []string{"/v2/images", "/v1.0/appkeys/" + e.a.AppKey + "/images", "/v2/schemas/image"} {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("X-Auth-Token", token)
		w := &brokenWriter{header: http.Header{}}
		e.handler.ServeHTTP(w, req)
		if len(w.statuses) > 1 {
			t.Errorf("GET %s to a gone client: status lines %v, want one", path, w.statuses)
		}
	}
}

// TestUploadUnsafeQcow2 checks the HTTP face of the refusal of qcow2 data
// that names a backing file: 400 in Glance's format, and the image still
// queued, ready for other data.
func TestUploadUnsafeQcow2(t *testing.T) {
	const qemuImg = "/usr/bin/qemu-img"
	if _, err := os.Stat(qemuImg); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("qemu-img is missing (%v); CI=true, so this is a failure, not a skip", err)
		}
		t.Skipf("qemu-img is missing (%v): install qemu-utils", err)
	}
	dir := t.TempDir()
	base, overlay := filepath.Join(dir, "base.qcow2"), filepath.Join(dir, "overlay.qcow2")
	for _, args := range [][]string{
		{"create", "-q", "-f", "qcow2", base, "1M"},
		{"create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", overlay},
	} {
		if out, err := exec.Command(qemuImg, args...).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
		}
	}
	data, err := os.ReadFile(overlay)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	token := e.token(t, e.a, cloudimage.RoleMember)
	id := e.newImage(t, token, "overlay", "disk_format", "qcow2")
	status, hdr, body := e.call(t, "PUT", "/v2/images/"+id+"/file", token, string(data),
		"Content-Type", "application/octet-stream")
	if status != http.StatusBadRequest || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") ||
		!strings.Contains(string(body), "backing file") {
		t.Errorf("PUT a qcow2 with a backing file: %d %s %q, want 400 naming the backing file", status, hdr.Get("Content-Type"), body)
	}
	if got := e.getImage(t, token, id)["status"]; got != "queued" {
		t.Errorf("after the refusal the image is %v, want queued", got)
	}
	safe, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	e.upload(t, token, id, safe)
}

// TestUploadTooLarge checks the HTTP face of the per-image maximum: 413
// in Glance's format, and the image still queued.
func TestUploadTooLarge(t *testing.T) {
	e := newEnv(t, cloudimage.WithMaxImageSize(10))
	token := e.token(t, e.a, cloudimage.RoleMember)
	id := e.newImage(t, token, "big")
	status, hdr, body := e.call(t, "PUT", "/v2/images/"+id+"/file", token, "eleven bytes",
		"Content-Type", "application/octet-stream")
	if status != http.StatusRequestEntityTooLarge || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Errorf("PUT 12 bytes over a 10-byte maximum: %d %q, want 413", status, body)
	}
	if got := e.getImage(t, token, id)["status"]; got != "queued" {
		t.Errorf("after the refusal the image is %v, want queued", got)
	}
	e.upload(t, token, id, []byte("ten bytes!"))
}
