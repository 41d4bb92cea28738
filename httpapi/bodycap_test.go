package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cloudimage/cloudimage"
)

// bodyCap is the most bytes a request body other than image data may
// have.
const bodyCap = 1 << 20

// padJSON returns obj, a JSON object, with white space after it up to n
// bytes in all: still one valid JSON value, and n bytes long.
func padJSON(obj string, n int) string {
	return obj + strings.Repeat(" ", n-len(obj))
}

// TestBodyCap checks that every route that reads a JSON body refuses one
// over 1 MiB with 413 in its face's form, even when its start is a valid
// request, and that nothing changed; a body of exactly 1 MiB is read.
func TestBodyCap(t *testing.T) {
	e, _ := newSecEnv(t, secEnvConfig{})
	member := e.token(t, e.a, cloudimage.RoleMember)
	admin := e.token(t, e.a, cloudimage.RoleAdmin)
	memberB := e.token(t, e.b, cloudimage.RoleMember)
	id := activeImage(t, e, member, "capped", "visibility", "shared")
	e.member(t, "POST", "/v2/images/"+id+"/members", member, `{"member":"`+e.b.ID+`"}`)
	queued := usableImage(t, e, member, "queued")
	c := newProject(t, e, "project-c")
	aUser := userName(e.a, cloudimage.RoleMember)
	img := "/v2/images/" + id
	jsonType := []string{"Content-Type", "application/json"}
	patch := []string{"Content-Type", "application/openstack-images-v2.1-json-patch"}

	for _, tc := range []struct {
		method, path, token, body string
		header                    []string
		face                      int
		ok                        int // the status of the body under the cap, 0 if it is not tried
	}{
		{"POST", "/v2/images", member, `{"name":"big","os_type":"linux"}`, jsonType, faceV2, 0},
		{"PATCH", img, member, `[{"op":"replace","path":"/name","value":"big"}]`, patch, faceV2, 0},
		{"POST", img + "/members", member, `{"member":"` + c.ID + `"}`, jsonType, faceV2, 0},
		{"PUT", img + "/members/" + e.b.ID, memberB, `{"status":"accepted"}`, jsonType, faceV2, 0},
		{"POST", "/v2/images/" + queued + "/import", member, `{"method":{"name":"glance-direct"}}`, jsonType,
			faceV2, 0},
		{"POST", tokensPath(e.a), "", authBody(aUser, testPassword), jsonType, faceNHN, 0},
		{"POST", "/identity/v2.0/tokens", "", keystoneBody("tenantId", e.a.ID, aUser, testPassword), jsonType,
			faceKeystone, 200},
		{"POST", v3Tokens, "", v3Body(userByName(aUser, testPassword, domainByID), projectByID(e.a.ID)), jsonType,
			faceKeystone, 201},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			before := e.secState(t, admin, id, member)
			status, hdr, b := e.call(t, tc.method, tc.path, tc.token, padJSON(tc.body, bodyCap+1), tc.header...)
			switch tc.face {
			case faceNHN:
				h, _, err := parseEnvelope(status, b)
				if err != nil || h.ResultCode != 30413 || !strings.Contains(h.ResultMessage, "larger than") {
					t.Errorf("header %+v (%v), want 30413 ... larger than ...", h, err)
				}
			case faceKeystone:
				if status != http.StatusRequestEntityTooLarge {
					t.Fatalf("%d, want 413; body %.200q", status, b)
				}
				keystoneError(t, status, hdr, b)
			default:
				expectError(t, "over the cap", status, hdr, b, http.StatusRequestEntityTooLarge, "larger than")
			}
			if after := e.secState(t, admin, id, member); after != before {
				t.Errorf("the refused body changed what the owner sees:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if tc.ok != 0 {
				if status, _, b := e.call(t, tc.method, tc.path, tc.token, padJSON(tc.body, bodyCap),
					tc.header...); status != tc.ok {
					t.Errorf("a body of exactly %d bytes: %d, want %d; body %.200q", bodyCap, status, tc.ok, b)
				}
			}
		})
	}
	if got := e.v2IDs(t, member, "member_status=all"); len(got) != 2 {
		t.Errorf("A lists %v, want only the two images made here", got)
	}
	if status, _, b := e.call(t, "GET", img+"/members/"+e.b.ID, memberB, ""); status != http.StatusOK ||
		!strings.Contains(string(b), `"status":"pending"`) {
		t.Errorf("B's membership: %d %s, want still pending", status, b)
	}
}
