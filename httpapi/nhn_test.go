package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/google/uuid"
)

var (
	// nhnTimeRE is the v1.0 time: six fraction digits and no zone, as in
	// 2017-05-16T02:17:50.166563.
	nhnTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$`)
	// expiresRE is a token's expiry: whole seconds and Z, as in
	// 2017-05-16T03:17:50Z.
	expiresRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
)

const (
	nhnTimeLayout = "2006-01-02T15:04:05.000000"
	expiresLayout = "2006-01-02T15:04:05Z"
)

func tokensPath(p *cloudimage.Project) string {
	return "/v1.0/appkeys/" + p.AppKey + "/tokens"
}

func authBody(user, password string) string {
	b, _ := json.Marshal(map[string]any{"auth": map[string]string{"username": user, "password": password}})
	return string(b)
}

// nhnAccess is the access object of both v1.0 token calls.
type nhnAccess struct {
	Token struct {
		ID       string `json:"id"`
		IssuedAt string `json:"issued_at"`
		Expires  string `json:"expires"`
	} `json:"token"`
	User struct {
		ID    string `json:"id"`
		Roles []struct {
			Name string `json:"name"`
		} `json:"roles"`
	} `json:"user"`
}

// checkAccess checks a successful v1.0 token answer and returns its access
// object.
func checkAccess(t *testing.T, h nhnHeader, top map[string]json.RawMessage, wantRole string) nhnAccess {
	t.Helper()
	if !h.IsSuccessful {
		t.Fatalf("resultCode %d (%q), want success", h.ResultCode, h.ResultMessage)
	}
	if got := keys(top); !slices.Equal(got, []string{"access", "header"}) {
		t.Errorf("top-level keys %v, want [access header]", got)
	}
	var a nhnAccess
	if err := json.Unmarshal(top["access"], &a); err != nil {
		t.Fatalf("access: %v", err)
	}
	if a.Token.ID == "" || a.User.ID == "" {
		t.Errorf("token id %q, user id %q: want both set", a.Token.ID, a.User.ID)
	}
	if !nhnTimeRE.MatchString(a.Token.IssuedAt) {
		t.Errorf("issued_at %q, want the form 2017-05-16T02:17:50.166563", a.Token.IssuedAt)
	}
	if !expiresRE.MatchString(a.Token.Expires) {
		t.Errorf("expires %q, want the form 2017-05-16T03:17:50Z", a.Token.Expires)
	}
	issued, err1 := time.Parse(nhnTimeLayout, a.Token.IssuedAt)
	expires, err2 := time.Parse(expiresLayout, a.Token.Expires)
	if err1 != nil || err2 != nil {
		t.Fatalf("parse times: %v, %v", err1, err2)
	}
	// expires is cut to the second, so it may fall up to 1s short.
	if d := expires.Sub(issued); d <= testTTL-time.Second || d > testTTL {
		t.Errorf("expires - issued_at = %v, want about %v", d, testTTL)
	}
	if d := time.Since(issued); d < -time.Minute || d > time.Minute {
		t.Errorf("issued_at %s is %v away from now; want UTC now", a.Token.IssuedAt, d)
	}
	var roles []string
	for _, r := range a.User.Roles {
		roles = append(roles, r.Name)
	}
	if !slices.Equal(roles, []string{wantRole}) {
		t.Errorf("roles %v, want [%s]", roles, wantRole)
	}
	return a
}

func TestNHNIssueToken(t *testing.T) {
	e := newEnv(t)
	name := e.user(t, e.a, cloudimage.RoleMember)
	e.user(t, e.b, cloudimage.RoleMember)

	h, top := e.nhn(t, "POST", tokensPath(e.a), "", authBody(name, testPassword))
	a := checkAccess(t, h, top, "member")
	if len(a.Token.ID) < 32 {
		t.Errorf("token id %q is too short to be a secret", a.Token.ID)
	}
	// The token it returns is one the image API takes.
	if ids := e.listIDs(t, e.a, a.Token.ID, ""); len(ids) != 0 {
		t.Errorf("fresh project lists %v, want nothing", ids)
	}

	failures := []struct {
		name string
		path string
		body string
		code int
		pfx  string
	}{
		{"wrong password", tokensPath(e.a), authBody(name, "wrong"), -3, "Permission denied: "},
		{"unknown user", tokensPath(e.a), authBody("nobody", testPassword), -3, "Permission denied: "},
		{"unknown appkey", "/v1.0/appkeys/no-such-appkey/tokens", authBody(name, testPassword), -3, "Permission denied: "},
		{"user of another project", tokensPath(e.a), authBody(userName(e.b, "member"), testPassword), -3, "Permission denied: "},
		{"malformed JSON", tokensPath(e.a), `{"auth":{"username":`, -8, "JSON parsing error: "},
		{"not JSON", tokensPath(e.a), `username=x&password=y`, -8, "JSON parsing error: "},
		{"empty body", tokensPath(e.a), ``, -8, "JSON parsing error: "},
		{"trailing data", tokensPath(e.a), authBody(name, testPassword) + ` {}`, -8, "JSON parsing error: "},
		{"trailing brace", tokensPath(e.a), authBody(name, testPassword) + `}`, -8, "JSON parsing error: "},
		{"wrong type", tokensPath(e.a), `{"auth":{"username":1,"password":"x"}}`, -8, "JSON parsing error: "},
		{"no auth", tokensPath(e.a), `{}`, -4, "Invalid parameters: "},
		{"missing password", tokensPath(e.a), `{"auth":{"username":"` + name + `"}}`, -4, "Invalid parameters: "},
		{"missing username", tokensPath(e.a), `{"auth":{"password":"x"}}`, -4, "Invalid parameters: "},
		{"empty password", tokensPath(e.a), authBody(name, ""), -4, "Invalid parameters: "},
		{"over 1 MiB", tokensPath(e.a), authBody(name, testPassword) + strings.Repeat(" ", 1<<20), 30413, "request body is larger"},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			h, top := e.nhn(t, "POST", tc.path, "", tc.body)
			if h.ResultCode != tc.code || !strings.HasPrefix(h.ResultMessage, tc.pfx) {
				t.Errorf("resultCode %d %q, want %d %q...", h.ResultCode, h.ResultMessage, tc.code, tc.pfx)
			}
			if len(h.ResultMessage) <= len(tc.pfx) {
				t.Errorf("resultMessage %q has no detail", h.ResultMessage)
			}
			if _, ok := top["access"]; ok {
				t.Errorf("a failure carries access: %s", top["access"])
			}
		})
	}
}

func TestNHNShowToken(t *testing.T) {
	e := newEnv(t)
	name := e.user(t, e.a, cloudimage.RoleAdmin)
	h, top := e.nhn(t, "POST", tokensPath(e.a), "", authBody(name, testPassword))
	issued := checkAccess(t, h, top, "admin")
	tok := issued.Token.ID

	// No X-Auth-Token: knowing the token is enough.
	h, top = e.nhn(t, "GET", tokensPath(e.a)+"?id="+tok, "", "")
	shown := checkAccess(t, h, top, "admin")
	if shown.Token != issued.Token || shown.User.ID != issued.User.ID {
		t.Errorf("lookup gives %+v, want the issued %+v", shown, issued)
	}

	tokB := e.token(t, e.b, cloudimage.RoleMember)
	for _, tc := range []struct {
		name  string
		query string
		code  int
	}{
		{"unknown token", "?id=0123456789abcdef0123456789abcdef", -3},
		{"token of another appkey", "?id=" + tokB, -3},
		{"missing id", "", -4},
		{"empty id", "?id=", -4},
		{"repeated id", "?id=" + tok + "&id=" + tok, -4},
		{"malformed query", "?id=%zz", -4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := e.nhnFail(t, "GET", tokensPath(e.a)+tc.query, "", tc.code)
			if tc.code == -3 && !strings.HasPrefix(msg, "Permission denied: ") {
				t.Errorf("resultMessage %q, want Permission denied: ...", msg)
			}
		})
	}
	// Another appkey's token is fine on its own appkey.
	h, _ = e.nhn(t, "GET", tokensPath(e.b)+"?id="+tokB, "", "")
	if !h.IsSuccessful {
		t.Errorf("B's token on B's appkey: %d %q", h.ResultCode, h.ResultMessage)
	}
}

func TestNHNListAuth(t *testing.T) {
	e := newEnv(t)
	tokA := e.token(t, e.a, cloudimage.RoleMember)
	tokB := e.token(t, e.b, cloudimage.RoleMember)

	// A token that is already expired when it is issued: a service with a
	// lifetime of a nanosecond over the same store.
	short := cloudimage.NewIdentityService(e.db, time.Nanosecond)
	it, err := short.Issue(context.Background(), cloudimage.Credentials{
		AppKey: e.a.AppKey, Username: userName(e.a, "member"), Password: testPassword,
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)

	for _, tc := range []struct {
		name  string
		path  string
		token string
	}{
		{"missing token", imagesPath(e.a), ""},
		{"bad token", imagesPath(e.a), "not-a-token"},
		{"expired token", imagesPath(e.a), it.ID},
		{"unknown appkey", "/v1.0/appkeys/no-such-appkey/images", tokA},
		{"token of another project", imagesPath(e.a), tokB},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, method := range []string{"GET", "DELETE"} {
				path := tc.path
				if method == "DELETE" {
					path += "?id=" + uuid.NewString()
				}
				msg := e.nhnFail(t, method, path, tc.token, -3)
				if !strings.HasPrefix(msg, "Permission denied: ") {
					t.Errorf("%s: resultMessage %q, want Permission denied: ...", method, msg)
				}
			}
		})
	}
}

func TestNHNListParameters(t *testing.T) {
	e := newEnv(t)
	tokA := e.token(t, e.a, cloudimage.RoleMember)
	tokB := e.token(t, e.b, cloudimage.RoleMember)
	e.newImage(t, tokA, "a1")
	privateB := e.newImage(t, tokB, "b-private", "visibility", "private")

	for _, tc := range []struct {
		query string
		code  int
	}{
		{"limit=abc", -4},
		{"limit=-1", -4},
		{"limit=1.5", -4},
		{"limit=", -4},
		{"limit=+1", -4},
		{"limit=1e3", -4},
		{"limit=1&limit=2", -4},
		{"marker=not-a-uuid", -4},
		{"marker=", -4},
		{"marker=" + uuid.NewString() + "x", -4},
		{"marker=a&marker=b", -4},
		{"limit=%zz", -4},
		{"limit=1;marker=x", -4},
		{"marker=" + uuid.NewString(), 30400},
		{"limit=1&marker=" + uuid.NewString(), 30400},
		// Another project's private image is no marker either.
		{"marker=" + privateB, 30400},
	} {
		t.Run(tc.query, func(t *testing.T) {
			msg := e.nhnFail(t, "GET", imagesPath(e.a)+"?"+tc.query, tokA, tc.code)
			if tc.code == -4 && !strings.HasPrefix(msg, "Invalid parameters: ") {
				t.Errorf("resultMessage %q, want Invalid parameters: ...", msg)
			}
			if tc.code == 30400 && !strings.Contains(msg, "marker") {
				t.Errorf("resultMessage %q does not mention the marker", msg)
			}
		})
	}

	if imgs := e.list(t, e.a, tokA, "limit=0"); len(imgs) != 0 {
		t.Errorf("limit=0 lists %d images, want none", len(imgs))
	}
	// An uppercase marker is the same image ID.
	first := e.listIDs(t, e.a, tokA, "")[0]
	if ids := e.listIDs(t, e.a, tokA, "marker="+strings.ToUpper(first)); len(ids) != 0 {
		t.Errorf("after the only image: %v, want nothing", ids)
	}
	// GET with an id parameter is a list, never a delete (the 2019 doc typo).
	e.list(t, e.a, tokA, "id="+first)
	e.getImage(t, tokA, first)
}

// nhnImageKeys are the twelve keys of a v1.0 image, sorted.
var nhnImageKeys = []string{
	"createdAt", "diskFormat", "id", "isPublic", "minDisk", "minRam", "name",
	"properties", "protected", "size", "status", "updatedAt",
}

func TestNHNListShape(t *testing.T) {
	e := newEnv(t)
	admin := e.token(t, e.a, cloudimage.RoleAdmin)
	data := []byte("QFI\xfb\x00\x00\x00\x03 cut") // twelve bytes of a qcow2 header
	pub := e.createImage(t, admin, map[string]any{
		"name": "ubuntu", "disk_format": "qcow2", "container_format": "bare",
		"visibility": "public", "protected": true, "min_disk": 20, "min_ram": 1024,
		"os_type": "linux", "os_distro": "ubuntu",
	})["id"].(string)
	e.upload(t, admin, pub, data)
	plain := e.newImage(t, admin, "plain")

	imgs := e.list(t, e.a, admin, "")
	if len(imgs) != 2 {
		t.Fatalf("listed %d images, want 2", len(imgs))
	}
	byID := map[string]map[string]json.RawMessage{}
	for _, img := range imgs {
		if got := keys(img); !slices.Equal(got, nhnImageKeys) {
			t.Errorf("image keys %v, want %v", got, nhnImageKeys)
		}
		for _, k := range []string{"createdAt", "updatedAt"} {
			if s := str(t, img[k]); !nhnTimeRE.MatchString(s) {
				t.Errorf("%s %q, want the form 2017-05-16T02:17:50.166563", k, s)
			}
		}
		byID[str(t, img["id"])] = img
	}

	want := map[string]map[string]string{
		pub: {
			"diskFormat": `"qcow2"`, "isPublic": `true`, "minDisk": `20`, "minRam": `1024`,
			"name": `"ubuntu"`, "properties": `{"os_distro":"ubuntu","os_type":"linux"}`,
			"protected": `true`, "size": fmt.Sprint(len(data)), "status": `"active"`,
		},
		plain: {
			"diskFormat": `"raw"`, "isPublic": `false`, "minDisk": `0`, "minRam": `0`,
			"name": `"plain"`, "properties": `{"nhncloud_allow_download":"true","os_type":"linux"}`,
			"protected": `false`, "size": `0`,
			"status": `"queued"`,
		},
	}
	for id, fields := range want {
		img, ok := byID[id]
		if !ok {
			t.Fatalf("image %s is not listed", id)
		}
		for k, v := range fields {
			if got := compactJSON(t, img[k]); got != v {
				t.Errorf("image %s: %s = %s, want %s", id, k, got, v)
			}
		}
	}

	// The v1.0 times are the v2 times, with their microseconds.
	v2 := e.getImage(t, admin, pub)
	created, err := time.Parse(nhnTimeLayout, str(t, byID[pub]["createdAt"]))
	if err != nil {
		t.Fatal(err)
	}
	if got := created.Format("2006-01-02T15:04:05Z"); got != v2["created_at"] {
		t.Errorf("createdAt %s is not v2's created_at %s", got, v2["created_at"])
	}
	updated, _ := time.Parse(nhnTimeLayout, str(t, byID[pub]["updatedAt"]))
	if updated.Before(created) {
		t.Errorf("updatedAt %s before createdAt %s", updated, created)
	}
}

func compactJSON(t *testing.T, v json.RawMessage) string {
	t.Helper()
	var m any
	if err := json.Unmarshal(v, &m); err != nil {
		t.Fatalf("%s: %v", v, err)
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func TestNHNListVisibility(t *testing.T) {
	e := newEnv(t)
	memberA := e.token(t, e.a, cloudimage.RoleMember)
	adminA := e.token(t, e.a, cloudimage.RoleAdmin)
	adminB := e.token(t, e.b, cloudimage.RoleAdmin)

	// Created in this order, one after another, so newest first is the
	// reverse.
	var created []string
	add := func(token, name string, extra ...any) string {
		id := e.newImage(t, token, name, extra...)
		created = append(created, id)
		return id
	}
	a1 := add(memberA, "a1")
	bPrivate := add(adminB, "b-private", "visibility", "private")
	bPublic := add(adminB, "b-public", "visibility", "public")
	a2 := add(memberA, "a2", "visibility", "private")
	aPublic := add(adminA, "a-public", "visibility", "public")
	bShared := add(adminB, "b-shared")

	gotA := e.listIDs(t, e.a, memberA, "")
	if want := []string{aPublic, a2, bPublic, a1}; !slices.Equal(gotA, want) {
		t.Errorf("A lists %v, want %v", gotA, want)
	}
	gotB := e.listIDs(t, e.b, adminB, "")
	if want := []string{bShared, aPublic, bPublic, bPrivate}; !slices.Equal(gotB, want) {
		t.Errorf("B lists %v, want %v", gotB, want)
	}

	for _, img := range e.list(t, e.a, memberA, "") {
		id := str(t, img["id"])
		wantPublic := id == aPublic || id == bPublic
		if got := compactJSON(t, img["isPublic"]); got != fmt.Sprint(wantPublic) {
			t.Errorf("image %s: isPublic %s, want %v", id, got, wantPublic)
		}
	}

	if got := e.listIDs(t, e.a, memberA, "limit=2"); !slices.Equal(got, gotA[:2]) {
		t.Errorf("limit=2 lists %v, want %v", got, gotA[:2])
	}
	if got := e.listIDs(t, e.a, memberA, "limit=100"); !slices.Equal(got, gotA) {
		t.Errorf("limit=100 lists %v, want %v", got, gotA)
	}
	// The marker is exclusive, and may be given without a limit.
	if got := e.listIDs(t, e.a, memberA, "marker="+a2); !slices.Equal(got, gotA[2:]) {
		t.Errorf("after %s: %v, want %v", a2, got, gotA[2:])
	}
	// Another project's public image is a marker in A's view.
	if got := e.listIDs(t, e.a, memberA, "marker="+bPublic); !slices.Equal(got, gotA[3:]) {
		t.Errorf("after %s: %v, want %v", bPublic, got, gotA[3:])
	}
}

func TestNHNListPaging(t *testing.T) {
	e := newEnv(t)
	tokA := e.token(t, e.a, cloudimage.RoleMember)

	// Seed straight into the store, with times that tie, so that the
	// order's tie-breaker (id descending) is tested too.
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var imgs []*cloudimage.Image
	for i := range 23 {
		owner, vis := e.a.ID, cloudimage.VisibilityPrivate
		if i%4 == 0 {
			owner, vis = e.b.ID, cloudimage.VisibilityPublic
		}
		at := base.Add(time.Duration(i/3) * time.Microsecond)
		imgs = append(imgs, &cloudimage.Image{
			ID: uuid.NewString(), Name: fmt.Sprintf("img-%02d", i), Status: cloudimage.StatusActive,
			Visibility: vis, DiskFormat: "raw", ContainerFormat: "bare", Owner: owner,
			CreatedAt: at, UpdatedAt: at,
		})
	}
	// One image of B that A must never see.
	imgs = append(imgs, &cloudimage.Image{
		ID: uuid.NewString(), Name: "hidden", Status: cloudimage.StatusActive,
		Visibility: cloudimage.VisibilityPrivate, Owner: e.b.ID, CreatedAt: base, UpdatedAt: base,
	})
	if err := e.db.InsertImages(context.Background(), imgs); err != nil {
		t.Fatal(err)
	}
	visible := slices.Clone(imgs[:23])
	slices.SortFunc(visible, func(x, y *cloudimage.Image) int {
		if c := y.CreatedAt.Compare(x.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(y.ID, x.ID)
	})
	var want []string
	for _, img := range visible {
		want = append(want, img.ID)
	}

	if got := e.listIDs(t, e.a, tokA, ""); !slices.Equal(got, want) {
		t.Fatalf("full list\n got %v\nwant %v", got, want)
	}
	for _, limit := range []int{1, 2, 7, 23, 50} {
		var got []string
		marker := ""
		for pages := 0; ; pages++ {
			if pages > len(want)+1 {
				t.Fatalf("limit=%d: paging does not end", limit)
			}
			q := fmt.Sprintf("limit=%d", limit)
			if marker != "" {
				q += "&marker=" + marker
			}
			page := e.listIDs(t, e.a, tokA, q)
			if len(page) > limit {
				t.Fatalf("limit=%d: page of %d", limit, len(page))
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
			marker = page[len(page)-1]
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit=%d: paged\n got %v\nwant %v", limit, got, want)
		}
	}

	// A page after a marker that has since been deleted goes on from
	// where the marker stood.
	k := 5
	for visible[k].Owner != e.a.ID {
		k++
	}
	gone := want[k]
	if h, _ := e.nhn(t, "DELETE", imagesPath(e.a)+"?id="+gone, tokA, ""); !h.IsSuccessful {
		t.Fatalf("delete %s: %d %q", gone, h.ResultCode, h.ResultMessage)
	}
	if got := e.listIDs(t, e.a, tokA, "limit=3&marker="+gone); !slices.Equal(got, want[k+1:k+4]) {
		t.Errorf("after deleted marker: %v, want %v", got, want[k+1:k+4])
	}
}

func TestNHNDelete(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	memberA := e.token(t, e.a, cloudimage.RoleMember)
	adminA := e.token(t, e.a, cloudimage.RoleAdmin)
	readerA := e.token(t, e.a, cloudimage.RoleReader)
	adminB := e.token(t, e.b, cloudimage.RoleAdmin)
	del := func(token, id string) (nhnHeader, map[string]json.RawMessage) {
		t.Helper()
		return e.nhn(t, "DELETE", imagesPath(e.a)+"?id="+id, token, "")
	}

	t.Run("own image", func(t *testing.T) {
		id := e.newImage(t, memberA, "mine")
		e.upload(t, memberA, id, []byte("some image data"))
		rc, err := e.blobs.Open(ctx, id)
		if err != nil {
			t.Fatalf("data of the uploaded image: %v", err)
		}
		rc.Close()

		h, top := del(memberA, id)
		if !h.IsSuccessful {
			t.Fatalf("delete: %d %q", h.ResultCode, h.ResultMessage)
		}
		if got := keys(top); !slices.Equal(got, []string{"header"}) {
			t.Errorf("keys %v, want [header]", got)
		}
		if slices.Contains(e.listIDs(t, e.a, memberA, ""), id) {
			t.Errorf("deleted image %s is still listed", id)
		}
		if status, _, _ := e.call(t, "GET", "/v2/images/"+id, memberA, ""); status != http.StatusNotFound {
			t.Errorf("GET deleted image: %d, want 404", status)
		}
		if _, err := e.blobs.Open(ctx, id); cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
			t.Errorf("data of the deleted image: err %v, want ENOTFOUND", err)
		}
		e.nhnFail(t, "DELETE", imagesPath(e.a)+"?id="+id, memberA, 30404)
	})

	t.Run("refused", func(t *testing.T) {
		bPrivate := e.newImage(t, adminB, "b-private", "visibility", "private")
		bPublic := e.newImage(t, adminB, "b-public", "visibility", "public")
		protected := e.newImage(t, memberA, "protected", "protected", true)
		aPublic := e.newImage(t, adminA, "a-public", "visibility", "public")
		aImage := e.newImage(t, memberA, "a-image")
		for _, tc := range []struct {
			name  string
			token string
			query string
			code  int
		}{
			{"unknown image", memberA, "?id=" + uuid.NewString(), 30404},
			{"another project's private image", memberA, "?id=" + bPrivate, 30404},
			{"another project's public image", adminA, "?id=" + bPublic, 30403},
			{"protected image", adminA, "?id=" + protected, 30403},
			{"member deletes own public image", memberA, "?id=" + aPublic, 30403},
			{"reader", readerA, "?id=" + aImage, 30403},
			{"missing id", memberA, "", -4},
			{"empty id", memberA, "?id=", -4},
			{"malformed id", memberA, "?id=not-a-uuid", -4},
			{"repeated id", memberA, "?id=" + aImage + "&id=" + aImage, -4},
			{"malformed query", memberA, "?id=%zz", -4},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e.nhnFail(t, "DELETE", imagesPath(e.a)+tc.query, tc.token, tc.code)
			})
		}
		listed := e.listIDs(t, e.a, memberA, "")
		for _, id := range []string{bPublic, protected, aPublic, aImage} {
			if !slices.Contains(listed, id) {
				t.Errorf("image %s is gone after a refused delete", id)
			}
		}
		e.getImage(t, adminB, bPrivate)

		// An admin of the owning project may delete its public image.
		if h, _ := del(adminA, aPublic); !h.IsSuccessful {
			t.Errorf("admin deletes own public image: %d %q", h.ResultCode, h.ResultMessage)
		}
		if h, _ := del(memberA, strings.ToUpper(aImage)); !h.IsSuccessful {
			t.Errorf("delete by uppercase id: %d %q", h.ResultCode, h.ResultMessage)
		}
		listed = e.listIDs(t, e.a, memberA, "")
		if slices.Contains(listed, aPublic) || slices.Contains(listed, aImage) {
			t.Errorf("deleted images still listed: %v", listed)
		}
	})
}

func TestNHNRoutes(t *testing.T) {
	e := newEnv(t)
	tok := e.token(t, e.a, cloudimage.RoleMember)
	for _, tc := range []struct{ method, path string }{
		{"PUT", imagesPath(e.a)},
		{"POST", imagesPath(e.a)},
		{"PATCH", imagesPath(e.a)},
		{"PUT", tokensPath(e.a)},
		{"DELETE", tokensPath(e.a)},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			msg := e.nhnFail(t, tc.method, tc.path, tok, -7)
			if !strings.HasPrefix(msg, "Not supported: ") {
				t.Errorf("resultMessage %q, want Not supported: ...", msg)
			}
		})
	}
	for _, path := range []string{
		"/v1.0/appkeys/" + e.a.AppKey + "/flavors",
		"/v1.0/appkeys/" + e.a.AppKey + "/images/extra",
		"/v1.0/images",
		"/v1.0/",
	} {
		// An unknown route is the one v1.0 answer that is not HTTP 200
		// (digest §7 #10); its body is still the envelope, with -7.
		status, _, body := e.call(t, "GET", path, tok, "")
		if status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, status)
		}
		h, top, err := parseEnvelope(http.StatusOK, body)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
		} else if h.ResultCode != -7 || !strings.HasPrefix(h.ResultMessage, "Not supported: ") || len(top) != 1 {
			t.Errorf("GET %s: header %+v, keys %v; want -7 Not supported: ..., only header", path, h, keys(top))
		}
	}
}
