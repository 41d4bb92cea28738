package httpapi_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/cloudimage/cloudimage"
	"github.com/google/uuid"
)

// Cross-project isolation: an image another project may not see is, for
// that project, no image at all. Every endpoint answers 404, never 403, in
// the words it uses for an ID that names nothing, and no list shows it.

// probe is one request of the v2 surface on an image.
type probe struct {
	method, path, body string
	header             []string
}

func (p probe) String() string { return p.method + " " + p.path }

// probes are a request to every v2 endpoint on the image id: each would
// change or reveal something if it were allowed. member is the caller's
// project and other a member of the image that is not the caller.
func probes(id, member, other string) []probe {
	img := "/v2/images/" + id
	jsonType := []string{"Content-Type", "application/json"}
	octet := []string{"Content-Type", "application/octet-stream"}
	patch := []string{"Content-Type", "application/openstack-images-v2.1-json-patch"}
	return []probe{
		{"GET", img, "", nil},
		{"GET", img + "/file", "", nil},
		{"PUT", img + "/file", "stolen data", octet},
		{"PATCH", img, `[{"op":"replace","path":"/name","value":"stolen"}]`, patch},
		{"DELETE", img, "", nil},
		{"PUT", img + "/tags/stolen", "", nil},
		{"DELETE", img + "/tags/t", "", nil},
		{"POST", img + "/members", `{"member":"` + member + `"}`, jsonType},
		{"GET", img + "/members", "", nil},
		{"GET", img + "/members/" + member, "", nil},
		{"GET", img + "/members/" + other, "", nil},
		{"PUT", img + "/members/" + member, `{"status":"accepted"}`, jsonType},
		{"PUT", img + "/members/" + other, `{"status":"rejected"}`, jsonType},
		{"DELETE", img + "/members/" + other, "", nil},
		{"POST", img + "/actions/deactivate", "", nil},
		{"POST", img + "/actions/reactivate", "", nil},
		{"PUT", img + "/stage", "stolen data", octet},
		{"POST", img + "/import", `{"method":{"name":"glance-direct"}}`, jsonType},
	}
}

// expectHidden checks that every endpoint answers 404 for the image id to
// the caller, with the body it gives for an image that does not exist.
func expectHidden(t *testing.T, e *env, token, id, member, other string) {
	t.Helper()
	unknown := uuid.NewString()
	ghosts := probes(unknown, member, other)
	for i, p := range probes(id, member, other) {
		status, hdr, b := e.call(t, p.method, p.path, token, p.body, p.header...)
		if status != http.StatusNotFound {
			t.Errorf("%v: %d, want 404; body %q", p, status, b)
			continue
		}
		checkPlainError(t, status, hdr, b)
		g := ghosts[i]
		_, _, gb := e.call(t, g.method, g.path, token, g.body, g.header...)
		if got, want := strings.ReplaceAll(string(b), id, "ID"), strings.ReplaceAll(string(gb), unknown, "ID"); got != want {
			t.Errorf("%v: body %q, but for an unknown image %q: the two can be told apart", p, got, want)
		}
	}
}

// listQueries are the v2 list queries an image hidden from the caller
// must be absent from, whatever they select.
var listQueries = []string{
	"", "visibility=all", "visibility=shared", "visibility=private", "visibility=public",
	"visibility=community", "member_status=all", "member_status=pending", "member_status=rejected",
	"member_status=accepted", "visibility=shared&member_status=all", "visibility=all&member_status=all",
	"os_hidden=true", "status=active", "status=queued", "owner=",
}

// expectUnlisted checks that none of ids is in any v2 list of the caller
// (owner is the project an owner= filter names) or in its v1.0 list.
func expectUnlisted(t *testing.T, e *env, p *cloudimage.Project, token string, ids []string, owner string) {
	t.Helper()
	for _, q := range listQueries {
		if q == "owner=" {
			q += owner
		}
		for _, got := range e.v2IDs(t, token, q) {
			if slices.Contains(ids, got) {
				t.Errorf("GET /v2/images?%s lists the hidden image %s", q, got)
			}
		}
	}
	for _, got := range e.listIDs(t, p, token, "") {
		if slices.Contains(ids, got) {
			t.Errorf("the v1.0 list of %s lists the hidden image %s", p.Name, got)
		}
	}
}

func TestIsolation(t *testing.T) {
	forEachProfile(t, testIsolation)
}

func testIsolation(t *testing.T, e *env) {
	ownerA := e.token(t, e.a, cloudimage.RoleMember)
	adminA := e.token(t, e.a, cloudimage.RoleAdmin)
	c := newProject(t, e, "project-c")

	privActive := activeImage(t, e, ownerA, "private active", "visibility", "private", "tags", []string{"t"})
	privQueued := usableImage(t, e, ownerA, "private queued", "visibility", "private", "tags", []string{"t"})
	sharedActive := activeImage(t, e, ownerA, "shared active", "visibility", "shared", "tags", []string{"t"})
	sharedQueued := usableImage(t, e, ownerA, "shared queued", "visibility", "shared", "tags", []string{"t"})
	for _, id := range []string{sharedActive, sharedQueued} {
		e.member(t, "POST", "/v2/images/"+id+"/members", ownerA, `{"member":"`+c.ID+`"}`)
	}
	hidden := []string{privActive, privQueued, sharedActive, sharedQueued}
	// What B must still see, so that an empty list proves nothing.
	public := activeImage(t, e, adminA, "public", "visibility", "public")
	ownB := usableImage(t, e, e.token(t, e.b, cloudimage.RoleMember), "B's own", "visibility", "private")

	for _, role := range roles {
		t.Run(string(role), func(t *testing.T) {
			token := e.token(t, e.b, role)
			for _, id := range hidden {
				expectHidden(t, e, token, id, e.b.ID, c.ID)
			}
			expectUnlisted(t, e, e.b, token, hidden, e.a.ID)
			if got := e.v2IDs(t, token, ""); !slices.Contains(got, public) || !slices.Contains(got, ownB) {
				t.Errorf("B's default list %v lacks the public image %s or its own %s", got, public, ownB)
			}
		})
	}

	// Nothing changed for the owner.
	for _, id := range hidden {
		img := e.getImage(t, ownerA, id)
		if strings.Contains(img["name"].(string), "stolen") || !slices.Equal(tagsOf(t, e, ownerA, id), []string{"t"}) {
			t.Errorf("image %s changed: name %v tags %v", id, img["name"], img["tags"])
		}
		want := "queued"
		if id == privActive || id == sharedActive {
			want = "active"
			if got := string(e.download(t, ownerA, id)); !strings.HasPrefix(got, "data of ") {
				t.Errorf("image %s has data %q", id, got)
			}
		}
		if img["status"] != want {
			t.Errorf("image %s is %v, want %s", id, img["status"], want)
		}
	}
	for _, id := range []string{sharedActive, sharedQueued} {
		if got := e.memberIDs(t, ownerA, id); !slices.Equal(got, []string{c.ID}) {
			t.Errorf("image %s has members %v, want only C", id, got)
		}
	}
}

// expectListed checks whether id is in the caller's v2 list for query.
func expectListed(t *testing.T, e *env, token, query, id string, want bool) {
	t.Helper()
	if got := slices.Contains(e.v2IDs(t, token, query), id); got != want {
		t.Errorf("GET /v2/images?%s lists %s: %v, want %v", query, id, got, want)
	}
}

// expectSameLists checks that p's v1.0 list is its v2 default list, in
// the same order, and that both are want.
func expectSameLists(t *testing.T, e *env, p *cloudimage.Project, token string, want []string) {
	t.Helper()
	v2 := e.v2IDs(t, token, "")
	v1 := e.listIDs(t, p, token, "")
	if !slices.Equal(v1, v2) {
		t.Errorf("%s: the v1.0 list %v is not the v2 list %v", p.Name, v1, v2)
	}
	if !slices.Equal(v2, want) {
		t.Errorf("%s: the v2 list is %v, want %v", p.Name, v2, want)
	}
}

func TestIsolationMembership(t *testing.T) {
	forEachProfile(t, testIsolationMembership)
}

func testIsolationMembership(t *testing.T, e *env) {
	ownerA := e.token(t, e.a, cloudimage.RoleMember)
	adminA := e.token(t, e.a, cloudimage.RoleAdmin)
	memberB := e.token(t, e.b, cloudimage.RoleMember)
	readerB := e.token(t, e.b, cloudimage.RoleReader)

	// Created one after another: the newest first is the reverse order.
	aPrivate := usableImage(t, e, ownerA, "a private", "visibility", "private")
	bOwn := usableImage(t, e, memberB, "b own")
	aPublic := activeImage(t, e, adminA, "a public", "visibility", "public")
	shared := activeImage(t, e, ownerA, "shared with B")
	aCommunity := usableImage(t, e, adminA, "a community", "visibility", "community")
	aHidden := usableImage(t, e, adminA, "a hidden public", "visibility", "public", "os_hidden", true)
	bPrivate := usableImage(t, e, memberB, "b private", "visibility", "private")

	// Before it is shared, B cannot see it.
	expectHidden(t, e, readerB, shared, e.b.ID, e.a.ID)
	e.member(t, "POST", "/v2/images/"+shared+"/members", ownerA, `{"member":"`+e.b.ID+`"}`)

	withShared := []string{bPrivate, shared, aPublic, bOwn}
	without := []string{bPrivate, aPublic, bOwn}
	memberPath := "/v2/images/" + shared + "/members/" + e.b.ID
	for _, st := range []string{"pending", "accepted", "rejected", "accepted"} {
		if st != "pending" {
			checkMember(t, st, e.member(t, "PUT", memberPath, memberB, `{"status":"`+st+`"}`), shared, e.b.ID, st)
		}
		t.Run(st, func(t *testing.T) {
			for _, token := range []string{memberB, readerB} {
				// Usable by ID whatever the answer (NHN lets only members
				// and admins download).
				e.getImage(t, token, shared)
				if token == memberB {
					if got := string(e.download(t, token, shared)); got != "data of shared with B" {
						t.Errorf("B downloads %q", got)
					}
				}
				want := without
				if st == "accepted" {
					want = withShared
				}
				expectSameLists(t, e, e.b, token, want)
				for _, q := range []string{"member_status=" + st, "member_status=all", "visibility=shared&member_status=all"} {
					expectListed(t, e, token, q, shared, true)
				}
				for _, other := range []string{"pending", "accepted", "rejected"} {
					if other != st {
						expectListed(t, e, token, "member_status="+other, shared, false)
					}
				}
				expectListed(t, e, token, "visibility=shared", shared, st == "accepted")
				expectListed(t, e, token, "visibility=all", shared, st == "accepted")
			}
		})
	}
	// A sees what it owns, its community image included, whatever B
	// answered; its os_hidden image is left out of both default lists. B
	// sees neither by default.
	expectSameLists(t, e, e.a, ownerA, []string{aCommunity, shared, aPublic, aPrivate})
	expectListed(t, e, memberB, "visibility=community", aCommunity, true)
	expectListed(t, e, memberB, "os_hidden=true", aHidden, true)

	// Made private again, the image is gone for B, acceptance or not.
	status, _, b := e.call(t, "PATCH", "/v2/images/"+shared, ownerA,
		`[{"op":"replace","path":"/visibility","value":"private"}]`,
		"Content-Type", "application/openstack-images-v2.1-json-patch")
	if status != http.StatusOK {
		t.Fatalf("make the shared image private: %d; body %q", status, b)
	}
	expectHidden(t, e, memberB, shared, e.b.ID, e.a.ID)
	expectUnlisted(t, e, e.b, memberB, []string{shared}, e.a.ID)
	expectSameLists(t, e, e.b, memberB, without)

	// Shared again, the membership is there as B left it; removed, it is
	// gone.
	status, _, b = e.call(t, "PATCH", "/v2/images/"+shared, ownerA,
		`[{"op":"replace","path":"/visibility","value":"shared"}]`,
		"Content-Type", "application/openstack-images-v2.1-json-patch")
	if status != http.StatusOK {
		t.Fatalf("share the image again: %d; body %q", status, b)
	}
	expectSameLists(t, e, e.b, memberB, withShared)
	if status, _, b := e.call(t, "DELETE", memberPath, ownerA, ""); status != http.StatusNoContent {
		t.Fatalf("remove B: %d; body %q", status, b)
	}
	expectHidden(t, e, readerB, shared, e.b.ID, e.a.ID)
	expectUnlisted(t, e, e.b, readerB, []string{shared}, e.a.ID)
	expectSameLists(t, e, e.b, readerB, without)
}
