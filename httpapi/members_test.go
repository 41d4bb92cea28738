package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/google/uuid"
)

// profileCases are the profiles a test that holds in both runs under.
var profileCases = []cloudimage.Profile{cloudimage.ProfileNHN, cloudimage.ProfileOpenStack}

// forEachProfile runs test in a fresh env under each profile.
func forEachProfile(t *testing.T, test func(t *testing.T, e *env)) {
	for _, p := range profileCases {
		t.Run(p.Name, func(t *testing.T) {
			test(t, newEnv(t, cloudimage.WithProfile(p)))
		})
	}
}

// usableImage creates an image that every profile accepts and lets be
// downloaded (os_type set, download allowed), with extra fields.
func usableImage(t testing.TB, e *env, token, name string, extra ...any) string {
	t.Helper()
	fields := append([]any{"os_type", "linux", "nhncloud_allow_download", "true"}, extra...)
	return e.newImage(t, token, name, fields...)
}

// activeImage creates a usable image and uploads data to it.
func activeImage(t testing.TB, e *env, token, name string, extra ...any) string {
	t.Helper()
	id := usableImage(t, e, token, name, extra...)
	e.upload(t, token, id, []byte("data of "+name))
	return id
}

// newProject creates a project with no users: a member ID that is neither
// A nor B.
func newProject(t testing.TB, e *env, name string) *cloudimage.Project {
	t.Helper()
	p, err := e.identity.CreateProject(context.Background(), name)
	if err != nil {
		t.Fatalf("create project %s: %v", name, err)
	}
	return p
}

// jsonCall sends a request with a JSON body.
func (e *env) jsonCall(t testing.TB, method, path, token, body string) (int, http.Header, []byte) {
	t.Helper()
	return e.call(t, method, path, token, body, "Content-Type", "application/json")
}

// expectError checks that a v2 request failed with status, as a Glance
// text/plain error whose message contains msg.
func expectError(t *testing.T, what string, status int, hdr http.Header, body []byte, wantStatus int, msg string) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("%s: %d, want %d; body %q", what, status, wantStatus, body)
		return
	}
	checkPlainError(t, status, hdr, body)
	if !strings.Contains(string(body), msg) {
		t.Errorf("%s: body %q, want it to say %q", what, body, msg)
	}
}

// memberKeys are the keys of a v2 member object, sorted.
var memberKeys = []string{"created_at", "image_id", "member_id", "schema", "status", "updated_at"}

// checkMember checks a member object and returns it.
func checkMember(t *testing.T, what string, m map[string]any, image, member, status string) map[string]any {
	t.Helper()
	if got := keys(m); !slices.Equal(got, memberKeys) {
		t.Errorf("%s: keys %v, want %v", what, got, memberKeys)
	}
	for k, want := range map[string]any{
		"image_id": image, "member_id": member, "status": status, "schema": "/v2/schemas/member",
	} {
		if m[k] != want {
			t.Errorf("%s: %s = %#v, want %#v", what, k, m[k], want)
		}
	}
	for _, k := range []string{"created_at", "updated_at"} {
		if s, _ := m[k].(string); !v2TimeRE.MatchString(s) {
			t.Errorf("%s: %s %#v, want the form 2026-12-03T10:35:43Z", what, k, m[k])
		}
	}
	return m
}

// member sends a member request that must answer 200 with a member.
func (e *env) member(t *testing.T, method, path, token, body string) map[string]any {
	t.Helper()
	status, hdr, b := e.jsonCall(t, method, path, token, body)
	if status != http.StatusOK {
		t.Fatalf("%s %s: %d, want 200; body %q", method, path, status, b)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	return decodeObject(t, b)
}

// memberIDs lists an image's members and returns their member IDs.
func (e *env) memberIDs(t *testing.T, token, image string) []string {
	t.Helper()
	status, _, b := e.call(t, "GET", "/v2/images/"+image+"/members", token, "")
	if status != http.StatusOK {
		t.Fatalf("GET members of %s: %d, want 200; body %q", image, status, b)
	}
	var list struct {
		Members []map[string]any `json:"members"`
		Schema  string           `json:"schema"`
	}
	top := decodeObject(t, b)
	if got := keys(top); !slices.Equal(got, []string{"members", "schema"}) {
		t.Errorf("member list keys %v, want members, schema", got)
	}
	if err := json.Unmarshal(b, &list); err != nil || list.Members == nil {
		t.Fatalf("member list %q: %v", b, err)
	}
	if list.Schema != "/v2/schemas/members" {
		t.Errorf("member list schema %q", list.Schema)
	}
	ids := []string{}
	for _, m := range list.Members {
		id, _ := m["member_id"].(string)
		checkMember(t, "listed member", m, image, id, fmt.Sprint(m["status"]))
		ids = append(ids, id)
	}
	return ids
}

// v2IDs lists through GET /v2/images with query, following next links to
// the end, and returns the IDs in order.
func (e *env) v2IDs(t testing.TB, token, query string) []string {
	t.Helper()
	path := "/v2/images"
	if query != "" {
		path += "?" + query
	}
	ids := []string{}
	for pages := 0; path != ""; pages++ {
		if pages > 100 {
			t.Fatalf("GET /v2/images?%s: more than 100 pages", query)
		}
		status, _, b := e.call(t, "GET", path, token, "")
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d, want 200; body %q", path, status, b)
		}
		var page struct {
			Images []struct {
				ID string `json:"id"`
			} `json:"images"`
			Next string `json:"next"`
		}
		if err := json.Unmarshal(b, &page); err != nil || page.Images == nil {
			t.Fatalf("GET %s: %v; body %q", path, err, b)
		}
		for _, img := range page.Images {
			ids = append(ids, img.ID)
		}
		path = page.Next
	}
	return ids
}

func TestMembers(t *testing.T) {
	forEachProfile(t, testMembers)
}

func testMembers(t *testing.T, e *env) {
	ownerA := e.token(t, e.a, cloudimage.RoleMember)
	readerA := e.token(t, e.a, cloudimage.RoleReader)
	memberB := e.token(t, e.b, cloudimage.RoleMember)
	readerB := e.token(t, e.b, cloudimage.RoleReader)
	c := newProject(t, e, "project-c")

	img := activeImage(t, e, ownerA, "shared", "visibility", "shared")
	members := "/v2/images/" + img + "/members"
	memberPath := members + "/" + e.b.ID

	before := time.Now().Add(-time.Second)
	added := checkMember(t, "add", e.member(t, "POST", members, ownerA, `{"member":"`+e.b.ID+`"}`),
		img, e.b.ID, "pending")
	created, _ := time.Parse(time.RFC3339, added["created_at"].(string))
	if created.Before(before.Truncate(time.Second)) || created.After(time.Now().Add(time.Second)) {
		t.Errorf("created_at %s, want about now", created)
	}
	checkMember(t, "add C", e.member(t, "POST", members, ownerA, `{"member":"`+c.ID+`"}`), img, c.ID, "pending")

	status, hdr, b := e.jsonCall(t, "POST", members, ownerA, `{"member":"`+e.b.ID+`"}`)
	expectError(t, "duplicate member", status, hdr, b, http.StatusConflict, e.b.ID)

	// The owner sees every member; a member sees only itself.
	if got, want := e.memberIDs(t, ownerA, img), slices.Sorted(slices.Values([]string{e.b.ID, c.ID})); !slices.Equal(slices.Sorted(slices.Values(got)), want) {
		t.Errorf("owner lists members %v, want %v", got, want)
	}
	if got := e.memberIDs(t, readerB, img); !slices.Equal(got, []string{e.b.ID}) {
		t.Errorf("B lists members %v, want only itself", got)
	}
	for _, token := range []string{ownerA, readerA, memberB, readerB} {
		checkMember(t, "show", e.member(t, "GET", memberPath, token, ""), img, e.b.ID, "pending")
	}
	status, hdr, b = e.call(t, "GET", members+"/"+c.ID, memberB, "")
	expectError(t, "B shows C's membership", status, hdr, b, http.StatusNotFound, "")
	status, hdr, b = e.call(t, "GET", members+"/"+newProject(t, e, "stranger").ID, ownerA, "")
	expectError(t, "show a project that is no member", status, hdr, b, http.StatusNotFound, "")

	// Only the member answers for itself, and only with a status.
	accepted := checkMember(t, "accept", e.member(t, "PUT", memberPath, memberB, `{"status":"accepted"}`),
		img, e.b.ID, "accepted")
	if accepted["created_at"] != added["created_at"] || accepted["updated_at"].(string) < added["updated_at"].(string) {
		t.Errorf("accepted: created_at %v updated_at %v; added: %v %v", accepted["created_at"],
			accepted["updated_at"], added["created_at"], added["updated_at"])
	}
	checkMember(t, "after accept", e.member(t, "GET", memberPath, ownerA, ""), img, e.b.ID, "accepted")
	for _, tc := range []struct {
		name, token, body string
		status            int
		msg               string
	}{
		{"owner sets B's status", ownerA, `{"status":"rejected"}`, http.StatusForbidden, ""},
		{"B's reader", readerB, `{"status":"rejected"}`, http.StatusForbidden, ""},
		{"bogus status", memberB, `{"status":"bogus"}`, http.StatusBadRequest, ""},
		{"status all", memberB, `{"status":"all"}`, http.StatusBadRequest, ""},
		{"no status", memberB, `{"state":"rejected"}`, http.StatusBadRequest, "Status not specified"},
		{"status a number", memberB, `{"status":5}`, http.StatusBadRequest, "Expected a status"},
		{"status null", memberB, `{"status":null}`, http.StatusBadRequest, "Expected a status"},
		{"array", memberB, `["rejected"]`, http.StatusBadRequest, "Expected a status"},
		{"not JSON", memberB, `status=rejected`, http.StatusBadRequest, "Malformed JSON in request body."},
		{"trailing data", memberB, `{"status":"rejected"}}`, http.StatusBadRequest, "Malformed JSON in request body."},
		{"no body", memberB, ``, http.StatusBadRequest, "Body expected in request."},
		{"no token", "", `{"status":"rejected"}`, http.StatusUnauthorized, ""},
	} {
		status, hdr, b := e.jsonCall(t, "PUT", memberPath, tc.token, tc.body)
		expectError(t, "update: "+tc.name, status, hdr, b, tc.status, tc.msg)
	}
	checkMember(t, "after refused updates", e.member(t, "GET", memberPath, memberB, ""), img, e.b.ID, "accepted")
	for _, st := range []string{"rejected", "pending", "accepted"} {
		checkMember(t, "set "+st, e.member(t, "PUT", memberPath, memberB, `{"status":"`+st+`"}`), img, e.b.ID, st)
	}

	// Only the owner adds.
	d := newProject(t, e, "project-d")
	for _, tc := range []struct {
		name, token, body string
		status            int
		msg               string
	}{
		{"by a member", memberB, `{"member":"` + d.ID + `"}`, http.StatusForbidden, ""},
		{"by the owner's reader", readerA, `{"member":"` + d.ID + `"}`, http.StatusForbidden, ""},
		{"no member", ownerA, `{"project":"` + d.ID + `"}`, http.StatusBadRequest, "Member to be added not specified"},
		{"empty member", ownerA, `{"member":""}`, http.StatusBadRequest, "Member can't be empty"},
		{"member a number", ownerA, `{"member":5}`, http.StatusBadRequest, "Expected a member"},
		{"string body", ownerA, `"` + d.ID + `"`, http.StatusBadRequest, "Expected a member"},
		{"not JSON", ownerA, `{member: x}`, http.StatusBadRequest, "Malformed JSON in request body."},
		{"not UTF-8", ownerA, "{\"member\":\"\xff\"}", http.StatusBadRequest, "Malformed JSON in request body."},
		{"no body", ownerA, ``, http.StatusBadRequest, "Body expected in request."},
		{"no token", "", `{"member":"` + d.ID + `"}`, http.StatusUnauthorized, ""},
	} {
		status, hdr, b := e.jsonCall(t, "POST", members, tc.token, tc.body)
		expectError(t, "add: "+tc.name, status, hdr, b, tc.status, tc.msg)
	}
	if got := e.memberIDs(t, ownerA, img); len(got) != 2 {
		t.Errorf("after refused adds the image has members %v, want B and C", got)
	}

	// Only the owner removes.
	for _, tc := range []struct {
		name, token string
		status      int
	}{
		{"by the member", memberB, http.StatusForbidden},
		{"by the owner's reader", readerA, http.StatusForbidden},
		{"no token", "", http.StatusUnauthorized},
	} {
		status, hdr, b := e.call(t, "DELETE", memberPath, tc.token, "")
		expectError(t, "remove: "+tc.name, status, hdr, b, tc.status, "")
	}
	e.getImage(t, memberB, img)
	if status, _, b := e.call(t, "DELETE", memberPath, ownerA, ""); status != http.StatusNoContent || len(b) != 0 {
		t.Fatalf("remove B: %d with body %q, want 204 and none", status, b)
	}
	status, hdr, b = e.call(t, "DELETE", memberPath, ownerA, "")
	expectError(t, "remove B again", status, hdr, b, http.StatusNotFound, "")
	status, hdr, b = e.call(t, "GET", memberPath, ownerA, "")
	expectError(t, "show the removed member", status, hdr, b, http.StatusNotFound, "")
	if got := e.memberIDs(t, ownerA, img); !slices.Equal(got, []string{c.ID}) {
		t.Errorf("after removing B the members are %v, want only C", got)
	}
	// B is no member any more: the image is gone for it.
	status, hdr, b = e.call(t, "GET", "/v2/images/"+img, memberB, "")
	expectError(t, "B reads the image it was removed from", status, hdr, b, http.StatusNotFound, "")

	// Re-adding starts over as pending.
	checkMember(t, "re-add", e.member(t, "POST", members, ownerA, `{"member":"`+e.b.ID+`"}`), img, e.b.ID, "pending")
}

// TestMembersNotShared: only shared images have members.
func TestMembersNotShared(t *testing.T) {
	forEachProfile(t, func(t *testing.T, e *env) {
		ownerA := e.token(t, e.a, cloudimage.RoleMember)
		adminA := e.token(t, e.a, cloudimage.RoleAdmin)
		for _, vis := range []string{"private", "public", "community"} {
			img := usableImage(t, e, adminA, vis, "visibility", vis)
			status, hdr, b := e.jsonCall(t, "POST", "/v2/images/"+img+"/members", ownerA, `{"member":"`+e.b.ID+`"}`)
			expectError(t, "add a member to a "+vis+" image", status, hdr, b, http.StatusForbidden,
				"Only shared images have members.")
			status, hdr, b = e.call(t, "GET", "/v2/images/"+img+"/members", ownerA, "")
			expectError(t, "list the members of a "+vis+" image", status, hdr, b, http.StatusForbidden,
				"Only shared images have members.")
			// Glance answers a show with 404 rather than 403, not to tell
			// which images have members.
			status, hdr, b = e.call(t, "GET", "/v2/images/"+img+"/members/"+e.b.ID, ownerA, "")
			expectError(t, "show a member of a "+vis+" image", status, hdr, b, http.StatusNotFound, "")
		}
		status, hdr, b := e.jsonCall(t, "POST", "/v2/images/"+uuid.NewString()+"/members", ownerA, `{"member":"`+e.b.ID+`"}`)
		expectError(t, "add a member to an unknown image", status, hdr, b, http.StatusNotFound, "")
	})
}

// TestMembersLimit: an image has at most cloudimage.MaxMembers members,
// and one more is 413 as in Glance.
func TestMembersLimit(t *testing.T) {
	e := newEnv(t)
	ownerA := e.token(t, e.a, cloudimage.RoleMember)
	img := usableImage(t, e, ownerA, "popular")
	members := "/v2/images/" + img + "/members"
	for i := range cloudimage.MaxMembers {
		p := newProject(t, e, fmt.Sprintf("sharer-%d", i))
		e.member(t, "POST", members, ownerA, `{"member":"`+p.ID+`"}`)
	}
	p := newProject(t, e, "one-too-many")
	status, hdr, b := e.jsonCall(t, "POST", members, ownerA, `{"member":"`+p.ID+`"}`)
	expectError(t, "one member too many", status, hdr, b, http.StatusRequestEntityTooLarge, "")
	if got := e.memberIDs(t, ownerA, img); len(got) != cloudimage.MaxMembers {
		t.Errorf("%d members, want %d", len(got), cloudimage.MaxMembers)
	}
}
