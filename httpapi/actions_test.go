package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cloudimage/cloudimage"
	"github.com/google/uuid"
)

// tagsOf returns the image's tags as the owner reads them.
func tagsOf(t *testing.T, e *env, token, id string) []string {
	t.Helper()
	var tags []string
	for _, v := range e.getImage(t, token, id)["tags"].([]any) {
		tags = append(tags, v.(string))
	}
	return tags
}

// expectNoContent checks that a request answered 204 with no body.
func expectNoContent(t *testing.T, what string, status int, body []byte) {
	t.Helper()
	if status != http.StatusNoContent || len(body) != 0 {
		t.Errorf("%s: %d with body %q, want 204 and none", what, status, body)
	}
}

func TestTags(t *testing.T) {
	forEachProfile(t, func(t *testing.T, e *env) {
		owner := e.token(t, e.a, cloudimage.RoleMember)
		adminA := e.token(t, e.a, cloudimage.RoleAdmin)
		readerA := e.token(t, e.a, cloudimage.RoleReader)
		memberB := e.token(t, e.b, cloudimage.RoleMember)
		id := usableImage(t, e, owner, "tagged", "tags", []string{"old"})
		tags := "/v2/images/" + id + "/tags/"

		status, _, b := e.call(t, "PUT", tags+"new", owner, "")
		expectNoContent(t, "add a tag", status, b)
		status, _, b = e.call(t, "PUT", tags+"new", owner, "")
		expectNoContent(t, "add it again", status, b)
		// A tag is one path segment, unescaped.
		spaced := "with space/and slash é"
		status, _, b = e.call(t, "PUT", tags+url.PathEscape(spaced), owner, "")
		expectNoContent(t, "add an escaped tag", status, b)
		if got, want := tagsOf(t, e, owner, id), []string{"new", "old", spaced}; !slices.Equal(sortedCopy(got), sortedCopy(want)) {
			t.Errorf("tags %v, want %v", got, want)
		}

		status, _, b = e.call(t, "DELETE", tags+"old", owner, "")
		expectNoContent(t, "remove a tag", status, b)
		status, _, b = e.call(t, "DELETE", tags+url.PathEscape(spaced), owner, "")
		expectNoContent(t, "remove the escaped tag", status, b)
		status, hdr, b := e.call(t, "DELETE", tags+"old", owner, "")
		expectError(t, "remove an absent tag", status, hdr, b, http.StatusNotFound, "")
		if got := tagsOf(t, e, owner, id); !slices.Equal(got, []string{"new"}) {
			t.Errorf("tags %v, want [new]", got)
		}

		public := usableImage(t, e, adminA, "public", "visibility", "public", "tags", []string{"p"})
		for _, tc := range []struct {
			name, method, path, token string
			status                    int
		}{
			{"reader adds", "PUT", tags + "r", readerA, http.StatusForbidden},
			{"reader removes", "DELETE", tags + "new", readerA, http.StatusForbidden},
			{"another project adds to a public image", "PUT", "/v2/images/" + public + "/tags/b", memberB, http.StatusForbidden},
			{"another project removes from a public image", "DELETE", "/v2/images/" + public + "/tags/p", memberB, http.StatusForbidden},
			{"tag too long", "PUT", tags + strings.Repeat("t", cloudimage.MaxTagLength+1), owner, http.StatusBadRequest},
			{"unknown image", "PUT", "/v2/images/" + uuid.NewString() + "/tags/x", owner, http.StatusNotFound},
			{"unknown image, remove", "DELETE", "/v2/images/" + uuid.NewString() + "/tags/x", owner, http.StatusNotFound},
			{"no token", "PUT", tags + "x", "", http.StatusUnauthorized},
			{"no token, remove", "DELETE", tags + "new", "", http.StatusUnauthorized},
		} {
			status, hdr, b := e.call(t, tc.method, tc.path, tc.token, "")
			expectError(t, tc.name, status, hdr, b, tc.status, "")
		}
		if got := tagsOf(t, e, owner, id); !slices.Equal(got, []string{"new"}) {
			t.Errorf("after refused requests tags are %v, want [new]", got)
		}
		if got := tagsOf(t, e, adminA, public); !slices.Equal(got, []string{"p"}) {
			t.Errorf("public image's tags are %v, want [p]", got)
		}
		status, _, b = e.call(t, "PUT", tags+strings.Repeat("t", cloudimage.MaxTagLength), owner, "")
		expectNoContent(t, "a tag of the longest length", status, b)
	})
}

// TestTagsReserved: NHN keeps tags starting with '_' to the operator
// (digest §7 #31); upstream Glance has no such rule.
func TestTagsReserved(t *testing.T) {
	for _, tc := range []struct {
		profile cloudimage.Profile
		status  int
	}{
		{cloudimage.ProfileNHN, http.StatusBadRequest},
		{cloudimage.ProfileOpenStack, http.StatusNoContent},
	} {
		t.Run(tc.profile.Name, func(t *testing.T) {
			e := newEnv(t, cloudimage.WithProfile(tc.profile))
			member := e.token(t, e.a, cloudimage.RoleMember)
			admin := e.token(t, e.a, cloudimage.RoleAdmin)
			id := usableImage(t, e, member, "x")
			status, _, b := e.call(t, "PUT", "/v2/images/"+id+"/tags/_AVAILABLE_", member, "")
			if status != tc.status {
				t.Errorf("member adds _AVAILABLE_: %d, want %d; body %q", status, tc.status, b)
			}
			if got := slices.Contains(tagsOf(t, e, member, id), "_AVAILABLE_"); got != (tc.status == http.StatusNoContent) {
				t.Errorf("after %d the image has the tag: %v", status, got)
			}
			status, _, b = e.call(t, "PUT", "/v2/images/"+id+"/tags/_OPERATOR_", admin, "")
			expectNoContent(t, "admin adds _OPERATOR_", status, b)
		})
	}
}

// TestTagsLimit: an image has at most cloudimage.MaxTags tags, and one
// more is 413 as in Glance.
func TestTagsLimit(t *testing.T) {
	e := newEnv(t)
	owner := e.token(t, e.a, cloudimage.RoleMember)
	var tags []string
	for i := range cloudimage.MaxTags - 1 {
		tags = append(tags, fmt.Sprintf("t%03d", i))
	}
	id := usableImage(t, e, owner, "many tags", "tags", tags)
	status, _, b := e.call(t, "PUT", "/v2/images/"+id+"/tags/last", owner, "")
	expectNoContent(t, "the last tag there is room for", status, b)
	status, hdr, b := e.call(t, "PUT", "/v2/images/"+id+"/tags/one-too-many", owner, "")
	expectError(t, "one tag too many", status, hdr, b, http.StatusRequestEntityTooLarge, "")
	// A tag the image has is no new tag.
	status, _, b = e.call(t, "PUT", "/v2/images/"+id+"/tags/t000", owner, "")
	expectNoContent(t, "a tag the full image has", status, b)
	if got := len(tagsOf(t, e, owner, id)); got != cloudimage.MaxTags {
		t.Errorf("%d tags, want %d", got, cloudimage.MaxTags)
	}
}

func TestDeactivate(t *testing.T) {
	forEachProfile(t, func(t *testing.T, e *env) {
		owner := e.token(t, e.a, cloudimage.RoleMember)
		adminA := e.token(t, e.a, cloudimage.RoleAdmin)
		readerA := e.token(t, e.a, cloudimage.RoleReader)
		memberB := e.token(t, e.b, cloudimage.RoleMember)
		id := activeImage(t, e, owner, "switch")
		actions := "/v2/images/" + id + "/actions/"

		status, _, b := e.call(t, "POST", actions+"deactivate", owner, "")
		expectNoContent(t, "deactivate", status, b)
		if got := e.getImage(t, owner, id)["status"]; got != "deactivated" {
			t.Errorf("after deactivate: status %v", got)
		}
		status, hdr, b := e.call(t, "GET", "/v2/images/"+id+"/file", owner, "")
		expectError(t, "download a deactivated image", status, hdr, b, http.StatusForbidden, "deactivated")
		status, _, b = e.call(t, "POST", actions+"deactivate", owner, "")
		expectNoContent(t, "deactivate again", status, b)

		status, _, b = e.call(t, "POST", actions+"reactivate", owner, "")
		expectNoContent(t, "reactivate", status, b)
		if got := e.getImage(t, owner, id)["status"]; got != "active" {
			t.Errorf("after reactivate: status %v", got)
		}
		status, _, b = e.call(t, "GET", "/v2/images/"+id+"/file", owner, "")
		if status != http.StatusOK || string(b) != "data of switch" {
			t.Errorf("download after reactivate: %d %q", status, b)
		}
		status, _, b = e.call(t, "POST", actions+"reactivate", owner, "")
		expectNoContent(t, "reactivate an active image", status, b)

		queued := usableImage(t, e, owner, "empty")
		public := activeImage(t, e, adminA, "public", "visibility", "public")
		for _, tc := range []struct {
			name, action, id, token string
			status                  int
			msg                     string
		}{
			{"deactivate a queued image", "deactivate", queued, owner, http.StatusForbidden,
				"Not allowed to deactivate image in status 'queued'"},
			{"reactivate a queued image", "reactivate", queued, owner, http.StatusForbidden,
				"Not allowed to reactivate image in status 'queued'"},
			{"reader deactivates", "deactivate", id, readerA, http.StatusForbidden, ""},
			{"another project deactivates a public image", "deactivate", public, memberB, http.StatusForbidden, ""},
			{"unknown image", "deactivate", uuid.NewString(), owner, http.StatusNotFound, ""},
			{"unknown image, reactivate", "reactivate", uuid.NewString(), owner, http.StatusNotFound, ""},
			{"no token", "deactivate", id, "", http.StatusUnauthorized, ""},
		} {
			status, hdr, b := e.call(t, "POST", "/v2/images/"+tc.id+"/actions/"+tc.action, tc.token, "")
			expectError(t, tc.name, status, hdr, b, tc.status, tc.msg)
		}
		for img, want := range map[string]string{id: "active", queued: "queued", public: "active"} {
			if got := e.getImage(t, adminA, img)["status"]; got != want {
				t.Errorf("after refused actions image %s is %v, want %s", img, got, want)
			}
		}
		if status, _, b := e.call(t, "POST", actions+"bogus", owner, ""); status != http.StatusNotFound {
			t.Errorf("an unknown action: %d, want 404; body %q", status, b)
		}

		// The admin of the project deactivates too.
		status, _, b = e.call(t, "POST", actions+"deactivate", adminA, "")
		expectNoContent(t, "admin deactivates", status, b)
	})
}

// stage stages data for an image, which must answer 204.
func (e *env) stage(t *testing.T, token, id string, data []byte) {
	t.Helper()
	status, _, b := e.call(t, "PUT", "/v2/images/"+id+"/stage", token, string(data),
		"Content-Type", "application/octet-stream")
	expectNoContent(t, "stage "+id, status, b)
}

// importImage asks for an import, which must answer 202.
func (e *env) importImage(t *testing.T, token, id, body string) {
	t.Helper()
	status, _, b := e.jsonCall(t, "POST", "/v2/images/"+id+"/import", token, body)
	if status != http.StatusAccepted || len(b) != 0 {
		t.Fatalf("import %s: %d with body %q, want 202 and none", id, status, b)
	}
}

// download reads an image's data, which must answer 200.
func (e *env) download(t *testing.T, token, id string) []byte {
	t.Helper()
	status, _, b := e.call(t, "GET", "/v2/images/"+id+"/file", token, "")
	if status != http.StatusOK {
		t.Fatalf("download %s: %d, want 200; body %q", id, status, b)
	}
	return b
}

func TestImportGlanceDirect(t *testing.T) {
	forEachProfile(t, func(t *testing.T, e *env) {
		owner := e.token(t, e.a, cloudimage.RoleMember)
		id := usableImage(t, e, owner, "direct")
		path := "/v2/images/" + id + "/stage"

		status, hdr, b := e.call(t, "PUT", path, owner, "{}", "Content-Type", "application/json")
		expectError(t, "stage as application/json", status, hdr, b, http.StatusUnsupportedMediaType, "")
		status, hdr, b = e.call(t, "PUT", path, owner, "data")
		expectError(t, "stage without a Content-Type", status, hdr, b, http.StatusUnsupportedMediaType, "")
		if got := e.getImage(t, owner, id)["status"]; got != "queued" {
			t.Errorf("after refused stages: status %v, want queued", got)
		}
		status, hdr, b = e.jsonCall(t, "POST", "/v2/images/"+id+"/import", owner, `{"method":{"name":"glance-direct"}}`)
		expectError(t, "import before staging", status, hdr, b, http.StatusConflict, "staged")

		data := testData(200_000)
		e.stage(t, owner, id, data)
		if got := e.getImage(t, owner, id)["status"]; got != "uploading" {
			t.Errorf("after stage: status %v, want uploading", got)
		}
		status, hdr, b = e.call(t, "PUT", path, owner, "more", "Content-Type", "application/octet-stream")
		expectError(t, "stage twice", status, hdr, b, http.StatusConflict, "")

		// Tempest sends all_stores; with one store it chooses nothing.
		e.importImage(t, owner, id, `{"method":{"name":"glance-direct"},"all_stores":true}`)
		waitStatus(t, e, owner, id, "active")
		img := e.getImage(t, owner, id)
		if img["checksum"] != md5Hex(data) || img["os_hash_value"] != sha512Hex(data) ||
			fmt.Sprint(img["size"]) != fmt.Sprint(len(data)) {
			t.Errorf("imported image: checksum %v size %v, want %s %d", img["checksum"], img["size"], md5Hex(data), len(data))
		}
		if got := e.download(t, owner, id); !bytes.Equal(got, data) {
			t.Errorf("downloaded %d bytes, not the %d staged", len(got), len(data))
		}
		status, hdr, b = e.call(t, "PUT", path, owner, "again", "Content-Type", "application/octet-stream")
		expectError(t, "stage an active image", status, hdr, b, http.StatusConflict, "")
	})
}

func TestImportRefusals(t *testing.T) {
	forEachProfile(t, func(t *testing.T, e *env) {
		owner := e.token(t, e.a, cloudimage.RoleMember)
		readerA := e.token(t, e.a, cloudimage.RoleReader)
		adminA := e.token(t, e.a, cloudimage.RoleAdmin)
		memberB := e.token(t, e.b, cloudimage.RoleMember)
		id := usableImage(t, e, owner, "refused")
		public := usableImage(t, e, adminA, "public", "visibility", "public")
		imp := "/v2/images/" + id + "/import"

		for _, tc := range []struct {
			name, path, token, body string
			status                  int
			msg                     string
		}{
			{"unknown method", imp, owner, `{"method":{"name":"bogus"}}`, http.StatusBadRequest,
				"Unknown import method name 'bogus'."},
			{"web-download not offered", imp, owner, `{"method":{"name":"web-download","uri":"http://127.0.0.1/x"}}`,
				http.StatusBadRequest, "Unknown import method name 'web-download'."},
			{"no method", imp, owner, `{"name":"glance-direct"}`, http.StatusBadRequest,
				"Import request requires a 'method' field."},
			{"method a string", imp, owner, `{"method":"glance-direct"}`, http.StatusBadRequest, "'method'"},
			{"no name", imp, owner, `{"method":{}}`, http.StatusBadRequest, "Import request requires a 'name' field."},
			{"name a number", imp, owner, `{"method":{"name":1}}`, http.StatusBadRequest, "'name'"},
			{"all_stores not boolean", imp, owner, `{"method":{"name":"glance-direct"},"all_stores":"yes"}`,
				http.StatusBadRequest, "'all_stores' must be boolean value only"},
			{"all_stores_must_succeed not boolean", imp, owner,
				`{"method":{"name":"glance-direct"},"all_stores_must_succeed":1}`,
				http.StatusBadRequest, "'all_stores_must_succeed' must be boolean value only"},
			{"all_stores_must_succeed false", imp, owner,
				`{"method":{"name":"glance-direct"},"all_stores_must_succeed":false}`,
				http.StatusBadRequest, "All_stores_must_succeed can only be set with enabled_backends"},
			{"not JSON", imp, owner, `method=glance-direct`, http.StatusBadRequest, "Malformed JSON in request body."},
			{"array", imp, owner, `[]`, http.StatusBadRequest, ""},
			{"no body", imp, owner, ``, http.StatusBadRequest, "Body expected in request."},
			{"reader", imp, readerA, `{"method":{"name":"glance-direct"}}`, http.StatusForbidden, ""},
			{"another project's public image", "/v2/images/" + public + "/import", memberB,
				`{"method":{"name":"glance-direct"}}`, http.StatusForbidden, ""},
			{"unknown image", "/v2/images/" + uuid.NewString() + "/import", owner,
				`{"method":{"name":"glance-direct"}}`, http.StatusNotFound, ""},
			{"no token", imp, "", `{"method":{"name":"glance-direct"}}`, http.StatusUnauthorized, ""},
		} {
			status, hdr, b := e.jsonCall(t, "POST", tc.path, tc.token, tc.body)
			expectError(t, "import: "+tc.name, status, hdr, b, tc.status, tc.msg)
		}

		for _, tc := range []struct {
			name, path, token string
			status            int
		}{
			{"reader", "/v2/images/" + id + "/stage", readerA, http.StatusForbidden},
			{"another project's public image", "/v2/images/" + public + "/stage", memberB, http.StatusForbidden},
			{"unknown image", "/v2/images/" + uuid.NewString() + "/stage", owner, http.StatusNotFound},
			{"no token", "/v2/images/" + id + "/stage", "", http.StatusUnauthorized},
		} {
			status, hdr, b := e.call(t, "PUT", tc.path, tc.token, "data", "Content-Type", "application/octet-stream")
			expectError(t, "stage: "+tc.name, status, hdr, b, tc.status, "")
		}
		for img, want := range map[string]string{id: "queued", public: "queued"} {
			if got := e.getImage(t, adminA, img)["status"]; got != want {
				t.Errorf("after refused requests image %s is %v, want %s", img, got, want)
			}
		}
	})
}

// TestImportWebDownload imports from a test server on an allowed host.
func TestImportWebDownload(t *testing.T) {
	data := testData(100_000)
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/disk.img" {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	defer src.Close()
	u, _ := url.Parse(src.URL)
	e := newEnv(t, cloudimage.WithProfile(cloudimage.ProfileOpenStack), cloudimage.WithImportHosts(u.Host))
	owner := e.token(t, e.a, cloudimage.RoleMember)

	status, _, b := e.call(t, "GET", "/v2/info/import", owner, "")
	if status != http.StatusOK || !strings.Contains(string(b), `"web-download"`) {
		t.Errorf("import info with an allowed host: %d %s, want web-download offered", status, b)
	}

	id := usableImage(t, e, owner, "downloaded")
	e.importImage(t, owner, id, `{"method":{"name":"web-download","uri":"`+src.URL+`/disk.img"}}`)
	waitStatus(t, e, owner, id, "active")
	if got := e.download(t, owner, id); !bytes.Equal(got, data) {
		t.Errorf("downloaded %d bytes, not the %d served", len(got), len(data))
	}

	other := usableImage(t, e, owner, "refused")
	_, port, _ := net.SplitHostPort(u.Host)
	for _, tc := range []struct{ name, body string }{
		{"no uri", `{"method":{"name":"web-download"}}`},
		{"uri a number", `{"method":{"name":"web-download","uri":5}}`},
		{"not http", `{"method":{"name":"web-download","uri":"file:///etc/passwd"}}`},
		// Glance refuses a URI its filters do not pass with 400.
		{"host not allowed", `{"method":{"name":"web-download","uri":"http://localhost:` + port + `/disk.img"}}`},
	} {
		status, hdr, b := e.jsonCall(t, "POST", "/v2/images/"+other+"/import", owner, tc.body)
		expectError(t, "web-download: "+tc.name, status, hdr, b, http.StatusBadRequest, "")
	}
	if got := e.getImage(t, owner, other)["status"]; got != "queued" {
		t.Errorf("after refused imports: status %v, want queued", got)
	}
}

func TestInfo(t *testing.T) {
	e := newEnv(t)
	reader := e.token(t, e.a, cloudimage.RoleReader)

	status, hdr, b := e.call(t, "GET", "/v2/info/import", reader, "")
	if status != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
		t.Fatalf("import info: %d %q; body %q", status, hdr.Get("Content-Type"), b)
	}
	var info map[string]map[string]json.RawMessage
	if err := json.Unmarshal(b, &info); err != nil || len(info) != 1 {
		t.Fatalf("import info %q: %v", b, err)
	}
	im := info["import-methods"]
	if got := keys(im); !slices.Equal(got, []string{"description", "type", "value"}) {
		t.Errorf("import-methods keys %v", got)
	}
	var methods []string
	json.Unmarshal(im["value"], &methods)
	if want := e.images.ImportMethods(); !slices.Equal(methods, want) || !slices.Contains(methods, "glance-direct") {
		t.Errorf("import methods %v, want %v with glance-direct", methods, want)
	}
	if slices.Contains(methods, "web-download") {
		t.Errorf("web-download offered with no allowed hosts: %v", methods)
	}
	if string(im["description"]) != `"Import methods available."` || string(im["type"]) != `"array"` {
		t.Errorf("import-methods description %s type %s", im["description"], im["type"])
	}

	status, hdr, b = e.call(t, "GET", "/v2/info/stores", reader, "")
	expectError(t, "stores info", status, hdr, b, http.StatusNotFound, "Multi backend is not supported at this site.")

	for _, path := range []string{"/v2/info/import", "/v2/info/stores"} {
		status, hdr, b := e.call(t, "GET", path, "", "")
		expectError(t, path+" without a token", status, hdr, b, http.StatusUnauthorized, "")
	}
}

func sortedCopy(s []string) []string {
	return slices.Sorted(slices.Values(s))
}

// caller resolves a test token to its caller, for setting up through the
// service where there is no HTTP client (fuzz tests).
func (e *env) caller(t testing.TB, token string) *cloudimage.Caller {
	t.Helper()
	tok, err := e.identity.Validate(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Caller()
}

// FuzzMemberAndImportBodies sends arbitrary bytes as the body of a member
// status change and of an import, through the whole handler. A status
// change succeeds exactly when the body is a JSON object whose "status" is
// a member status; otherwise it is a Glance 400. An import of an image
// that was never staged can only be refused: 409 when the body asks for
// glance-direct correctly, 400 otherwise. Nothing is ever a 500.
func FuzzMemberAndImportBodies(f *testing.F) {
	e := buildEnv(f, "http://cloudimage.test")
	ctx := context.Background()
	owner := e.caller(f, e.token(f, e.a, cloudimage.RoleMember))
	memberB := e.token(f, e.b, cloudimage.RoleMember)
	img, err := e.images.Create(ctx, owner, cloudimage.ImageCreate{
		Name: "fuzzed", DiskFormat: "raw", ContainerFormat: "bare", Visibility: cloudimage.VisibilityShared,
		Properties: map[string]string{"os_type": "linux"},
	})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := e.images.AddMember(ctx, owner, img.ID, e.b.ID); err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		`{"status":"accepted"}`, `{"status":"rejected"}`, `{"status":"all"}`, `{"status":"Accepted"}`,
		`{"STATUS":"accepted"}`, `{"status":"accepted","status":"bogus"}`, `{"status":null}`, `{"status":1}`,
		`{"method":{"name":"glance-direct"}}`, `{"method":{"name":"glance-direct"},"all_stores":true}`,
		`{"method":{"name":"glance-direct"},"all_stores_must_succeed":false}`, `{"method":{"name":"web-download"}}`,
		`{"method":"glance-direct"}`, `{"method":{"name":null}}`, `{"method":{"name":"glance-direct","uri":1}}`,
		`{"status":"pending"}}`, `[]`, `null`, `""`, ``, ` `, `{`, "\xef\xbb\xbf{}", "{\"status\":\"accepted\xff\"}",
	} {
		f.Add([]byte(seed))
	}
	valid := func(body []byte, v any) bool {
		return utf8.Valid(body) && json.Unmarshal(body, v) == nil
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("PUT", "/v2/images/"+img.ID+"/members/"+e.b.ID, bytes.NewReader(body))
		req.Header.Set("X-Auth-Token", memberB)
		rec := httptest.NewRecorder()
		e.handler.ServeHTTP(rec, req)
		var m map[string]any
		want := valid(body, &m) && m != nil
		st, _ := m["status"].(string)
		want = want && cloudimage.MemberStatus(st).Valid()
		switch {
		case rec.Code == http.StatusOK && want:
			var got struct{ Status string }
			if json.Unmarshal(rec.Body.Bytes(), &got) != nil || got.Status != st {
				t.Fatalf("status change %q: 200 with %q", body, rec.Body.Bytes())
			}
		case rec.Code == http.StatusBadRequest && !want:
			checkPlainError(t, rec.Code, rec.Header(), rec.Body.Bytes())
		default:
			t.Fatalf("status change %q: %d %q, want success %v", body, rec.Code, rec.Body.Bytes(), want)
		}

		req = httptest.NewRequest("POST", "/v2/images/"+img.ID+"/import", bytes.NewReader(body))
		req.Header.Set("X-Auth-Token", e.token(t, e.a, cloudimage.RoleMember))
		rec = httptest.NewRecorder()
		e.handler.ServeHTTP(rec, req)
		var raw map[string]any
		direct := valid(body, &raw) && raw != nil
		method, _ := raw["method"].(map[string]any)
		direct = direct && method != nil && method["name"] == "glance-direct"
		switch rec.Code {
		case http.StatusConflict, http.StatusBadRequest:
			checkPlainError(t, rec.Code, rec.Header(), rec.Body.Bytes())
		default:
			t.Fatalf("import %q: %d %q, want 400 or 409", body, rec.Code, rec.Body.Bytes())
		}
		if rec.Code == http.StatusConflict && !direct {
			t.Fatalf("import %q: 409 for a body that is not a glance-direct request", body)
		}
	})
}
