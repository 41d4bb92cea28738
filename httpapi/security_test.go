package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/fsblob"
	"github.com/cloudimage/cloudimage/httpapi"
	"github.com/cloudimage/cloudimage/sqlite"
)

// The security matrix: every route the server registers, called by each
// kind of caller that must not get what the owner gets, with the refusal
// each API defines for it, and proof that the refused calls changed
// nothing. Cross-project isolation in depth is isolation_test.go's; this
// file covers the whole surface once per caller kind.

// secEnvConfig is how newSecEnv differs from newEnv.
type secEnvConfig struct {
	identity []cloudimage.IdentityOption
	// store wraps the identity store, to inject failures; nil: the db.
	store func(*sqlite.DB) cloudimage.IdentityStore
	// allowErrors lets the server log errors: the test provokes them.
	allowErrors bool
}

// jsonLog keeps every record a server logs, at every level, as JSON
// lines.
type jsonLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *jsonLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *jsonLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// records returns the logged records whose message is msg.
func (l *jsonLog) records(t testing.TB, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// route returns the route the request log names for the request whose
// ID is id.
func (l *jsonLog) route(t testing.TB, id string) (string, bool) {
	t.Helper()
	for _, rec := range l.records(t, "request") {
		if rec["request_id"] == id {
			route, _ := rec["route"].(string)
			return route, true
		}
	}
	return "", false
}

// teeHandler sends each record to every handler that takes it.
type teeHandler []slog.Handler

func (h teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return slices.ContainsFunc(h, func(x slog.Handler) bool { return x.Enabled(ctx, l) })
}

func (h teeHandler) Handle(ctx context.Context, r slog.Record) error {
	for _, x := range h {
		if x.Enabled(ctx, r.Level) {
			if err := x.Handle(ctx, r.Clone()); err != nil {
				return err
			}
		}
	}
	return nil
}

func (h teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(teeHandler, len(h))
	for i, x := range h {
		out[i] = x.WithAttrs(as)
	}
	return out
}

func (h teeHandler) WithGroup(name string) slog.Handler {
	out := make(teeHandler, len(h))
	for i, x := range h {
		out[i] = x.WithGroup(name)
	}
	return out
}

// newSecEnv is newEnv with the identity service configured by cfg and
// every log record kept as JSON.
func newSecEnv(t *testing.T, cfg secEnvConfig) (*env, *jsonLog) {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	url := "http://" + ts.Listener.Addr().String()
	logs, all := &logCapture{}, &jsonLog{}
	if !cfg.allowErrors {
		t.Cleanup(func() {
			if msgs := logs.errors(); len(msgs) > 0 {
				t.Errorf("the server logged errors:\n%s", strings.Join(msgs, "\n"))
			}
		})
	}
	db, err := sqlite.Open(context.Background(), copySeed(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobDir := t.TempDir()
	blobs, err := fsblob.Open(blobDir)
	if err != nil {
		t.Fatal(err)
	}
	var store cloudimage.IdentityStore = db
	if cfg.store != nil {
		store = cfg.store(db)
	}
	logger := slog.New(teeHandler{logs, slog.NewJSONHandler(all, &slog.HandlerOptions{Level: slog.LevelDebug})})
	e := &env{
		db: db, blobs: blobs, blobDir: blobDir,
		images:   cloudimage.NewImageService(db, blobs, logger),
		identity: cloudimage.NewIdentityService(store, testTTL, cfg.identity...),
		url:      url, logs: logs, a: seed.a, b: seed.b,
	}
	e.srv = httpapi.New(httpapi.Config{Images: e.images, Identity: e.identity, PublicURL: url, Logger: logger,
		Versions: db, PageCacheBytes: httpapi.DefaultPageCacheBytes})
	e.handler = e.srv.Handler()
	t.Cleanup(e.images.Close)
	ts.Config.Handler = e.handler
	ts.Start()
	t.Cleanup(ts.Close)
	e.client = ts.Client()
	return e, all
}

// The callers of the matrix, in the order of secRow.want.
const (
	byOther   = iota // a member of project B
	byReader         // a reader of the owner's project A
	byExpired        // an expired token of a member of A
	byRevoked        // a revoked token of a member of A
	byNobody         // no token at all
	numCallers
)

var callerNames = [numCallers]string{
	"another project", "a reader", "an expired token", "a revoked token", "no token",
}

// Faces, for the form a refusal must take.
const (
	faceV2       = iota // Glance: a text/plain error; 401 with WWW-Authenticate
	faceKeystone        // Keystone's JSON error
	faceNHN             // HTTP 200 and the v1.0 envelope; want holds result codes
	faceOther           // health: its own JSON
)

// secRow is one request of the matrix and what each caller gets: an HTTP
// status, or for the v1.0 face a resultCode (0: success).
type secRow struct {
	pattern            string // the route it exercises, as registered
	method, path, body string
	header             []string
	face               int
	want               [numCallers]int
	// public routes need no token: every caller gets what want says,
	// the same for all.
	public bool
	// tokenInQuery puts the caller's token at the end of path (v1.0
	// token show, which takes it as ?id=) rather than in X-Auth-Token.
	tokenInQuery bool
}

func (r secRow) String() string { return r.method + " " + r.path }

// secTarget is the image the matrix aims at, A's, with its member C.
type secTarget struct {
	name, id, member string
}

// all is the same answer for every caller.
func all(v int) [numCallers]int {
	var w [numCallers]int
	for i := range w {
		w[i] = v
	}
	return w
}

// authed is other and reader as given, 401 for the tokens that are not
// valid.
func authed(other, reader int) [numCallers]int {
	return [numCallers]int{other, reader, 401, 401, 401}
}

// nhnAuthed is the same for the v1.0 face: -3 for invalid tokens.
func nhnAuthed(other, reader int) [numCallers]int {
	return [numCallers]int{other, reader, -3, -3, -3}
}

// secRows is the matrix for target. The identity rows ask about A's
// member: userA is its user ID and subject its token.
func secRows(e *env, target secTarget, userA, subject string) []secRow {
	img := "/v2/images/" + target.id
	jsonType := []string{"Content-Type", "application/json"}
	octet := []string{"Content-Type", "application/octet-stream"}
	patch := []string{"Content-Type", "application/openstack-images-v2.1-json-patch"}
	nhnJSON := []string{"Content-Type", "application/json;charset=UTF-8"}
	subj := []string{"X-Subject-Token", subject}
	aUser := userName(e.a, cloudimage.RoleMember)
	// A private image has no members: Glance tells even its owner so.
	listMembers, showMember := authed(404, 200), authed(404, 200)
	if target.name == "private" {
		listMembers, showMember = authed(404, 403), authed(404, 404)
	}
	rows := []secRow{
		// Discovery, schemas and health.
		{pattern: "GET /{$}", method: "GET", path: "/", want: all(300), public: true},
		{pattern: "GET /versions", method: "GET", path: "/versions", want: all(200), public: true},
		{pattern: "GET /v2", method: "GET", path: "/v2", want: all(200), public: true},
		{pattern: "GET /v2/{$}", method: "GET", path: "/v2/", want: all(200), public: true},
		{pattern: "GET /healthz", method: "GET", path: "/healthz", face: faceOther, want: all(200), public: true},
		{pattern: "GET /readyz", method: "GET", path: "/readyz", face: faceOther, want: all(200), public: true},
		{pattern: "GET /v2/info/import", method: "GET", path: "/v2/info/import", want: authed(200, 200)},
		{pattern: "GET /v2/info/stores", method: "GET", path: "/v2/info/stores", want: authed(404, 404)},

		// Images. Another project's creation is its own image, not A's.
		{pattern: "GET /v2/images", method: "GET", path: "/v2/images", want: authed(200, 200)},
		{pattern: "POST /v2/images", method: "POST", path: "/v2/images", header: jsonType,
			body: `{"name":"intruder","disk_format":"raw","container_format":"bare","os_type":"linux"}`,
			want: authed(201, 403)},
		{pattern: "GET /v2/images/{id}", method: "GET", path: img, want: authed(404, 200)},
		{pattern: "PATCH /v2/images/{id}", method: "PATCH", path: img, header: patch,
			body: `[{"op":"replace","path":"/name","value":"stolen"}]`, want: authed(404, 403)},
		{pattern: "DELETE /v2/images/{id}", method: "DELETE", path: img, want: authed(404, 403)},
		{pattern: "PUT /v2/images/{id}/file", method: "PUT", path: img + "/file", header: octet,
			body: "stolen data", want: authed(404, 403)},
		{pattern: "GET /v2/images/{id}/file", method: "GET", path: img + "/file", want: authed(404, 403)},
		{pattern: "PUT /v2/images/{id}/tags/{tag}", method: "PUT", path: img + "/tags/stolen",
			want: authed(404, 403)},
		{pattern: "DELETE /v2/images/{id}/tags/{tag}", method: "DELETE", path: img + "/tags/t",
			want: authed(404, 403)},
		{pattern: "POST /v2/images/{id}/actions/deactivate", method: "POST", path: img + "/actions/deactivate",
			want: authed(404, 403)},
		{pattern: "POST /v2/images/{id}/actions/reactivate", method: "POST", path: img + "/actions/reactivate",
			want: authed(404, 403)},
		{pattern: "POST /v2/images/{id}/actions/restore", method: "POST", path: img + "/actions/restore",
			want: authed(404, 403)},
		{pattern: "PUT /v2/images/{id}/stage", method: "PUT", path: img + "/stage", header: octet,
			body: "stolen data", want: authed(404, 403)},
		{pattern: "POST /v2/images/{id}/import", method: "POST", path: img + "/import", header: jsonType,
			body: `{"method":{"name":"glance-direct"}}`, want: authed(404, 403)},

		// Members.
		{pattern: "POST /v2/images/{id}/members", method: "POST", path: img + "/members", header: jsonType,
			body: `{"member":"` + e.b.ID + `"}`, want: authed(404, 403)},
		{pattern: "GET /v2/images/{id}/members", method: "GET", path: img + "/members", want: listMembers},
		{pattern: "GET /v2/images/{id}/members/{member}", method: "GET", path: img + "/members/" + target.member,
			want: showMember},
		{pattern: "PUT /v2/images/{id}/members/{member}", method: "PUT", path: img + "/members/" + target.member,
			header: jsonType, body: `{"status":"accepted"}`, want: authed(404, 403)},
		{pattern: "DELETE /v2/images/{id}/members/{member}", method: "DELETE",
			path: img + "/members/" + target.member, want: authed(404, 403)},

		// Identity. Issuing a token needs none; what a caller may learn of
		// another token is nothing (404), as for an unknown one.
		{pattern: "GET /identity", method: "GET", path: "/identity", face: faceKeystone, want: all(300),
			public: true},
		{pattern: "GET /identity/{$}", method: "GET", path: "/identity/", face: faceKeystone, want: all(300),
			public: true},
		{pattern: "GET /identity/v2.0", method: "GET", path: "/identity/v2.0", face: faceKeystone, want: all(200),
			public: true},
		{pattern: "GET /identity/v2.0/{$}", method: "GET", path: "/identity/v2.0/", face: faceKeystone,
			want: all(200), public: true},
		{pattern: "GET /identity/v3", method: "GET", path: "/identity/v3", face: faceKeystone, want: all(200),
			public: true},
		{pattern: "GET /identity/v3/{$}", method: "GET", path: "/identity/v3/", face: faceKeystone, want: all(200),
			public: true},
		{pattern: "POST /identity/v2.0/tokens", method: "POST", path: "/identity/v2.0/tokens", header: jsonType,
			body: keystoneBody("tenantId", e.a.ID, aUser, testPassword), face: faceKeystone, want: all(200),
			public: true},
		{pattern: "POST /identity/v3/auth/tokens", method: "POST", path: v3Tokens, header: jsonType,
			body: v3Body(userByName(aUser, testPassword, domainByID), projectByID(e.a.ID)), face: faceKeystone,
			want: all(201), public: true},
		{pattern: "GET /identity/v3/auth/tokens", method: "GET", path: v3Tokens, header: subj, face: faceKeystone,
			want: authed(404, 404)},
		{pattern: "GET /identity/v3/auth/tokens", method: "HEAD", path: v3Tokens, header: subj, face: faceKeystone,
			want: authed(404, 404)},
		{pattern: "DELETE /identity/v3/auth/tokens", method: "DELETE", path: v3Tokens, header: subj,
			face: faceKeystone, want: authed(404, 404)},
		{pattern: "GET /identity/v3/auth/projects", method: "GET", path: "/identity/v3/auth/projects",
			face: faceKeystone, want: authed(200, 200)},
		{pattern: "GET /identity/v3/users/{id}/projects", method: "GET",
			path: "/identity/v3/users/" + userA + "/projects", face: faceKeystone, want: authed(403, 403)},

		// NHN v1.0: every refusal is HTTP 200 with its result code. A token
		// of another project is no token for A's appkey (-3); with its own
		// appkey, A's image is not there for it (30404).
		{pattern: "POST /v1.0/appkeys/{appkey}/tokens", method: "POST", path: tokensPath(e.a), header: nhnJSON,
			body: authBody(aUser, testPassword), face: faceNHN, want: all(0), public: true},
		{pattern: "GET /v1.0/appkeys/{appkey}/tokens", method: "GET", path: tokensPath(e.a) + "?id=",
			tokenInQuery: true, face: faceNHN, want: [numCallers]int{-3, 0, -3, -3, -4}},
		{pattern: "/v1.0/appkeys/{appkey}/tokens", method: "PUT", path: tokensPath(e.a), header: nhnJSON,
			body: authBody(aUser, testPassword), face: faceNHN, want: all(-7)},
		{pattern: "GET /v1.0/appkeys/{appkey}/images", method: "GET", path: imagesPath(e.a), header: nhnJSON,
			face: faceNHN, want: nhnAuthed(-3, 0)},
		{pattern: "DELETE /v1.0/appkeys/{appkey}/images", method: "DELETE",
			path: imagesPath(e.a) + "?id=" + target.id, header: nhnJSON, face: faceNHN, want: nhnAuthed(-3, 30403)},
		{pattern: "DELETE /v1.0/appkeys/{appkey}/images", method: "DELETE",
			path: imagesPath(e.b) + "?id=" + target.id, header: nhnJSON, face: faceNHN, want: nhnAuthed(30404, -3)},
		{pattern: "/v1.0/appkeys/{appkey}/images", method: "POST", path: imagesPath(e.a), header: nhnJSON,
			body: "{}", face: faceNHN, want: all(-7)},
	}
	// Every schema is served alike, one route each.
	for _, p := range e.srv.Routes() {
		if path, ok := strings.CutPrefix(p, "GET /v2/schemas/"); ok {
			rows = append(rows, secRow{pattern: p, method: "GET", path: "/v2/schemas/" + path, want: authed(200, 200)})
		}
	}
	return rows
}

// secState is what the owner sees of the target and of its own tokens:
// nothing a refused call may change.
func (e *env) secState(t *testing.T, owner, id, subject string) string {
	t.Helper()
	var b strings.Builder
	for _, path := range []string{"/v2/images/" + id, "/v2/images/" + id + "/members",
		"/v2/images?sort_key=name&sort_dir=asc"} {
		status, _, body := e.call(t, "GET", path, owner, "")
		fmt.Fprintf(&b, "GET %s: %d %s\n", path, status, body)
	}
	status, _, data := e.call(t, "GET", "/v2/images/"+id+"/file", owner, "")
	sum := sha256.Sum256(data)
	fmt.Fprintf(&b, "data: %d %s\n", status, hex.EncodeToString(sum[:]))
	status, _, _ = e.call(t, "GET", v3Tokens, owner, "", "X-Subject-Token", subject)
	fmt.Fprintf(&b, "subject token: %d\n", status)
	return b.String()
}

// revokedToken issues a token of A's member through v3 and revokes it
// the way a client does.
func (e *env) revokedToken(t *testing.T) string {
	t.Helper()
	secret, _ := e.v3Issue(t, v3Body(userByName(userName(e.a, cloudimage.RoleMember), testPassword, domainByID),
		projectByID(e.a.ID)))
	status, _, b := e.call(t, "DELETE", v3Tokens, secret, "", "X-Subject-Token", secret)
	if status != http.StatusNoContent {
		t.Fatalf("revoke: %d; body %q", status, b)
	}
	if status, _, _ := e.call(t, "GET", "/v2/images", secret, ""); status != http.StatusUnauthorized {
		t.Fatalf("a revoked token: %d, want 401", status)
	}
	return secret
}

// checkRefusal checks one answer of the matrix: its status or result
// code, and that a refusal has the form of its face.
func checkRefusal(t *testing.T, row secRow, status int, hdr http.Header, body []byte, want int) {
	t.Helper()
	if row.face == faceNHN {
		h, top, err := parseEnvelope(status, body)
		switch {
		case err != nil:
			t.Errorf("%v", err)
		case h.ResultCode != want:
			t.Errorf("resultCode %d (%q), want %d", h.ResultCode, h.ResultMessage, want)
		case want == -3 && !strings.HasPrefix(h.ResultMessage, "Permission denied: "):
			t.Errorf("-3 with message %q, want Permission denied: ...", h.ResultMessage)
		case want != 0 && len(top) != 1:
			t.Errorf("a failure with keys %v, want only header", keys(top))
		}
		return
	}
	if status != want {
		t.Errorf("status %d, want %d; body %.200q", status, want, body)
		return
	}
	if status < 400 || row.method == "HEAD" {
		return
	}
	switch row.face {
	case faceV2:
		checkPlainError(t, status, hdr, body)
		if status == http.StatusUnauthorized && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Keystone uri=") {
			t.Errorf("401 with WWW-Authenticate %q", hdr.Get("WWW-Authenticate"))
		}
	case faceKeystone:
		keystoneError(t, status, hdr, body)
	}
}

// TestSecurityMatrix calls every route with a token of another project,
// a reader's token of the owner's project, an expired token, a revoked
// token and no token, on a private image and on a shared one, and checks
// each answer and that nothing the owner sees changed.
func TestSecurityMatrix(t *testing.T) {
	e, logs := newSecEnv(t, secEnvConfig{})
	member := e.token(t, e.a, cloudimage.RoleMember)
	admin := e.token(t, e.a, cloudimage.RoleAdmin)
	c := newProject(t, e, "project-c")
	private := activeImage(t, e, member, "private", "visibility", "private", "tags", []string{"t"})
	shared := activeImage(t, e, member, "shared", "visibility", "shared", "tags", []string{"t"})
	e.member(t, "POST", "/v2/images/"+shared+"/members", member, `{"member":"`+c.ID+`"}`)
	userA := e.userID(t, e.a, cloudimage.RoleMember)

	var tokens [numCallers]string
	tokens[byOther] = e.token(t, e.b, cloudimage.RoleMember)
	tokens[byReader] = e.token(t, e.a, cloudimage.RoleReader)
	tokens[byExpired] = e.expiredToken(t, e.a, cloudimage.RoleMember)
	tokens[byRevoked] = e.revokedToken(t)

	registered := e.srv.Routes()
	covered := map[string]bool{}
	for _, target := range []secTarget{{"private", private, c.ID}, {"shared", shared, c.ID}} {
		t.Run(target.name, func(t *testing.T) {
			for _, row := range secRows(e, target, userA, member) {
				// Rows that do not name the image are the same for both.
				if target.name != "private" && !strings.Contains(row.path, target.id) {
					continue
				}
				if row.public && row.want != all(row.want[0]) {
					t.Fatalf("%v: a public row must answer every caller alike", row)
				}
				t.Run(row.String(), func(t *testing.T) {
					before := e.secState(t, admin, target.id, member)
					for who := range numCallers {
						path, token := row.path, tokens[who]
						if row.tokenInQuery {
							path, token = path+token, ""
						}
						status, hdr, body := e.call(t, row.method, path, token, row.body, row.header...)
						t.Run(callerNames[who], func(t *testing.T) {
							checkRefusal(t, row, status, hdr, body, row.want[who])
						})
						route, ok := logs.route(t, hdr.Get("X-Openstack-Request-Id"))
						if !ok || route != row.pattern {
							t.Errorf("%s: served by route %q (logged %v), want %q", callerNames[who], route, ok, row.pattern)
						}
					}
					if after := e.secState(t, admin, target.id, member); after != before {
						t.Errorf("the calls changed what the owner sees:\nbefore:\n%s\nafter:\n%s", before, after)
					}
				})
				covered[row.pattern] = true
			}
		})
	}
	for _, p := range registered {
		if !covered[p] {
			t.Errorf("route %q is not in the security matrix", p)
		}
	}
	for p := range covered {
		if !slices.Contains(registered, p) {
			t.Errorf("the matrix covers %q, which the server does not register", p)
		}
	}
}
