package httpapi_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/fsblob"
	"github.com/cloudimage/cloudimage/httpapi"
	"github.com/cloudimage/cloudimage/sqlite"
)

// testPassword is every test user's password.
const testPassword = "correct-horse-battery"

// testTTL is the token lifetime of test servers. It is not the default, so
// a test can tell that the configured lifetime is the one used.
const testTTL = 90 * time.Minute

// env is a server over real stores in temporary directories, with two
// projects, A and B, and in each a user of every role with a token.
type env struct {
	db       *sqlite.DB
	dbPath   string
	blobs    *fsblob.Store // what the service stores into, unless envConfig wraps it
	blobDir  string
	images   *cloudimage.ImageService
	identity *cloudimage.IdentityService
	srv      *httpapi.Server
	handler  http.Handler
	url      string // the public root URL
	client   *http.Client
	logs     *logCapture

	a, b *cloudimage.Project
}

// seed is the identity every env starts from. A bcrypt hash takes tens of
// milliseconds, and a second under the race detector, so the projects,
// users and tokens are made once per process, through the identity
// service, and the database file is copied into each env.
var seed struct {
	once   sync.Once
	err    error
	dir    string
	a, b   *cloudimage.Project
	tokens map[string]string // by user name
}

var roles = []cloudimage.Role{cloudimage.RoleAdmin, cloudimage.RoleMember, cloudimage.RoleReader}

func TestMain(m *testing.M) {
	code := m.Run()
	if seed.dir != "" {
		os.RemoveAll(seed.dir)
	}
	os.Exit(code)
}

func makeSeed() error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "httpapi-seed-")
	if err != nil {
		return err
	}
	seed.dir = dir
	db, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		return err
	}
	defer db.Close()
	identity := cloudimage.NewIdentityService(db, testTTL)
	if seed.a, err = identity.CreateProject(ctx, "project-a"); err != nil {
		return err
	}
	if seed.b, err = identity.CreateProject(ctx, "project-b"); err != nil {
		return err
	}
	seed.tokens = map[string]string{}
	for _, p := range []*cloudimage.Project{seed.a, seed.b} {
		for _, role := range roles {
			name := userName(p, role)
			if _, _, err := identity.CreateUser(ctx, p.ID, name, testPassword, role); err != nil {
				return err
			}
			it, err := identity.Issue(ctx, cloudimage.Credentials{
				ProjectID: p.ID, Username: name, Password: testPassword,
			})
			if err != nil {
				return err
			}
			seed.tokens[name] = it.ID
		}
	}
	return nil
}

// copySeed copies the seed database into dir and returns its path.
func copySeed(t testing.TB, dir string) string {
	t.Helper()
	seed.once.Do(func() { seed.err = makeSeed() })
	if seed.err != nil {
		t.Fatalf("seed identity: %v", seed.err)
	}
	files, err := os.ReadDir(seed.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(seed.dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "db")
}

// newEnv starts a test HTTP server whose public URL is its own address.
// Its image service has the default (nhn) profile unless opts say otherwise.
func newEnv(t testing.TB, opts ...cloudimage.ServiceOption) *env {
	t.Helper()
	return newEnvWith(t, envConfig{}, opts...)
}

// envConfig changes what an env is built on, for tests of failures.
type envConfig struct {
	// blobs, if set, wraps the blob store the image service uses.
	blobs func(cloudimage.BlobStore) cloudimage.BlobStore
	// busyTimeout is the database's; 0 for sqlite's default.
	busyTimeout time.Duration
	// images, if set, wraps the metadata store the image service uses.
	images func(*sqlite.DB) cloudimage.ImageStore
	// pageCacheBytes is the server's page cache; 0 for the default.
	pageCacheBytes int
}

// newEnvWith is newEnv on what cfg says.
func newEnvWith(t testing.TB, cfg envConfig, opts ...cloudimage.ServiceOption) *env {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	e := buildEnvWith(t, "http://"+ts.Listener.Addr().String(), cfg, opts...)
	ts.Config.Handler = e.handler
	ts.Start()
	t.Cleanup(ts.Close)
	e.client = ts.Client()
	return e
}

// buildEnv opens the stores and the services and builds the server, with
// no listener: benchmarks and fuzz tests call its handler directly.
func buildEnv(t testing.TB, publicURL string, opts ...cloudimage.ServiceOption) *env {
	t.Helper()
	return buildEnvWith(t, publicURL, envConfig{}, opts...)
}

// buildEnvWith is buildEnv on what cfg says.
func buildEnvWith(t testing.TB, publicURL string, cfg envConfig, opts ...cloudimage.ServiceOption) *env {
	t.Helper()
	logs := &logCapture{}
	// Registered first, so it runs last, once the server is closed.
	t.Cleanup(func() {
		if msgs := logs.errors(); len(msgs) > 0 {
			t.Errorf("the server logged errors:\n%s", strings.Join(msgs, "\n"))
		}
	})
	dbPath := copySeed(t, t.TempDir())
	db, err := sqlite.OpenWith(context.Background(), dbPath, sqlite.Options{BusyTimeout: cfg.busyTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobDir := t.TempDir()
	blobs, err := fsblob.Open(blobDir)
	if err != nil {
		t.Fatal(err)
	}
	var serviceBlobs cloudimage.BlobStore = blobs
	if cfg.blobs != nil {
		serviceBlobs = cfg.blobs(blobs)
	}
	logger := slog.New(logs)
	var imageStore cloudimage.ImageStore = db
	if cfg.images != nil {
		imageStore = cfg.images(db)
	}
	e := &env{
		db:       db,
		dbPath:   dbPath,
		blobs:    blobs,
		blobDir:  blobDir,
		images:   cloudimage.NewImageService(imageStore, serviceBlobs, logger, opts...),
		identity: cloudimage.NewIdentityService(db, testTTL),
		url:      publicURL,
		logs:     logs,
		a:        seed.a,
		b:        seed.b,
	}
	// Every test runs with the page cache on, as the server does: it
	// must not change any answer.
	e.srv = httpapi.New(httpapi.Config{
		Images: e.images, Identity: e.identity, PublicURL: publicURL, Logger: logger,
		Versions: db, PageCacheBytes: cmp.Or(cfg.pageCacheBytes, httpapi.DefaultPageCacheBytes),
	})
	e.handler = e.srv.Handler()
	t.Cleanup(e.images.Close)
	return e
}

// userName is the name of the user who holds role in p.
func userName(p *cloudimage.Project, role cloudimage.Role) string {
	return p.Name + "-" + string(role)
}

// user returns the name of the user who holds role in p.
func (e *env) user(t testing.TB, p *cloudimage.Project, role cloudimage.Role) string {
	t.Helper()
	name := userName(p, role)
	if _, ok := seed.tokens[name]; !ok {
		t.Fatalf("no user %s", name)
	}
	return name
}

// token returns the token of the user who holds role in p.
func (e *env) token(t testing.TB, p *cloudimage.Project, role cloudimage.Role) string {
	t.Helper()
	return seed.tokens[e.user(t, p, role)]
}

// do sends a request to the test server; header holds extra headers as
// name, value pairs.
func (e *env) do(t testing.TB, method, path, token string, body io.Reader, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// call sends a request and returns the status, the headers and the body.
func (e *env) call(t testing.TB, method, path, token, body string, header ...string) (int, http.Header, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	resp := e.do(t, method, path, token, r, header...)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// nhnHeader is the v1.0 envelope's header.
type nhnHeader struct {
	IsSuccessful  bool   `json:"isSuccessful"`
	ResultCode    int    `json:"resultCode"`
	ResultMessage string `json:"resultMessage"`
}

// parseEnvelope checks what every v1.0 answer must be: HTTP 200 and a JSON
// object whose header holds exactly isSuccessful (a bool), resultCode (an
// integer) and resultMessage (a string), successful exactly when the code
// is 0. It returns the header and the body's top-level keys.
func parseEnvelope(status int, body []byte) (nhnHeader, map[string]json.RawMessage, error) {
	var h nhnHeader
	if status != http.StatusOK {
		return h, nil, fmt.Errorf("HTTP status %d, want 200; body %q", status, body)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return h, nil, fmt.Errorf("body is not a JSON object: %v; body %q", err, body)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(top["header"], &raw); err != nil || raw == nil {
		return h, nil, fmt.Errorf("header is not an object: %q", top["header"])
	}
	if len(raw) != 3 {
		return h, nil, fmt.Errorf("header has keys %v, want isSuccessful, resultCode, resultMessage", keys(raw))
	}
	if err := strictField(raw, "isSuccessful", &h.IsSuccessful); err != nil {
		return h, nil, err
	}
	if err := strictField(raw, "resultCode", &h.ResultCode); err != nil {
		return h, nil, err
	}
	if err := strictField(raw, "resultMessage", &h.ResultMessage); err != nil {
		return h, nil, err
	}
	if h.IsSuccessful != (h.ResultCode == 0) {
		return h, nil, fmt.Errorf("isSuccessful %v with resultCode %d", h.IsSuccessful, h.ResultCode)
	}
	if h.IsSuccessful && h.ResultMessage != "SUCCESS" {
		return h, nil, fmt.Errorf("successful resultMessage %q, want SUCCESS", h.ResultMessage)
	}
	return h, top, nil
}

// strictField decodes raw[key] into dst, refusing null and a wrong type.
func strictField(raw map[string]json.RawMessage, key string, dst any) error {
	v, ok := raw[key]
	if !ok || string(v) == "null" {
		return fmt.Errorf("%s is missing or null", key)
	}
	if err := json.Unmarshal(v, dst); err != nil {
		return fmt.Errorf("%s = %s: %v", key, v, err)
	}
	return nil
}

// nhn sends a v1.0 request and checks its envelope.
func (e *env) nhn(t testing.TB, method, path, token, body string) (nhnHeader, map[string]json.RawMessage) {
	t.Helper()
	status, _, b := e.call(t, method, path, token, body, "Content-Type", "application/json;charset=UTF-8")
	h, top, err := parseEnvelope(status, b)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return h, top
}

// nhnFail sends a v1.0 request that must fail with code, and returns the
// message.
func (e *env) nhnFail(t testing.TB, method, path, token string, code int) string {
	t.Helper()
	h, top := e.nhn(t, method, path, token, "")
	if h.ResultCode != code {
		t.Fatalf("%s %s: resultCode %d (%q), want %d", method, path, h.ResultCode, h.ResultMessage, code)
	}
	if len(top) != 1 {
		t.Errorf("%s %s: failure has keys %v, want only header", method, path, keys(top))
	}
	return h.ResultMessage
}

// imagesPath is the v1.0 images path of p.
func imagesPath(p *cloudimage.Project) string {
	return "/v1.0/appkeys/" + p.AppKey + "/images"
}

// list lists p's view through v1.0, which must succeed.
func (e *env) list(t testing.TB, p *cloudimage.Project, token, query string) []map[string]json.RawMessage {
	t.Helper()
	path := imagesPath(p)
	if query != "" {
		path += "?" + query
	}
	h, top := e.nhn(t, "GET", path, token, "")
	if !h.IsSuccessful {
		t.Fatalf("GET %s: resultCode %d (%q)", path, h.ResultCode, h.ResultMessage)
	}
	var imgs []map[string]json.RawMessage
	if err := json.Unmarshal(top["images"], &imgs); err != nil || imgs == nil {
		t.Fatalf("GET %s: images is not an array: %s", path, top["images"])
	}
	return imgs
}

// listIDs returns the IDs of a v1.0 list, in order.
func (e *env) listIDs(t testing.TB, p *cloudimage.Project, token, query string) []string {
	t.Helper()
	var ids []string
	for _, img := range e.list(t, p, token, query) {
		ids = append(ids, str(t, img["id"]))
	}
	return ids
}

// createImage creates an image through v2, which must answer 201.
func (e *env) createImage(t testing.TB, token string, fields map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	status, _, body := e.call(t, "POST", "/v2/images", token, string(b), "Content-Type", "application/json")
	if status != http.StatusCreated {
		t.Fatalf("POST /v2/images %s: status %d, want 201; body %q", b, status, body)
	}
	return decodeObject(t, body)
}

// newImage creates a raw/bare image named name with extra fields. It has
// what the nhn profile asks for: an os_type, and leave to download its data.
// An extra field with the value nil is left out.
func (e *env) newImage(t testing.TB, token, name string, extra ...any) string {
	t.Helper()
	fields := map[string]any{"name": name, "disk_format": "raw", "container_format": "bare",
		"os_type": "linux", "nhncloud_allow_download": "true"}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == nil {
			delete(fields, extra[i].(string))
		} else {
			fields[extra[i].(string)] = extra[i+1]
		}
	}
	return e.createImage(t, token, fields)["id"].(string)
}

// upload uploads data to the image through v2, which must answer 204.
func (e *env) upload(t testing.TB, token, id string, data []byte) {
	t.Helper()
	status, _, body := e.call(t, "PUT", "/v2/images/"+id+"/file", token, string(data),
		"Content-Type", "application/octet-stream")
	if status != http.StatusNoContent {
		t.Fatalf("PUT /v2/images/%s/file: status %d, want 204; body %q", id, status, body)
	}
}

// getImage reads an image through v2, which must answer 200.
func (e *env) getImage(t testing.TB, token, id string) map[string]any {
	t.Helper()
	status, _, body := e.call(t, "GET", "/v2/images/"+id, token, "")
	if status != http.StatusOK {
		t.Fatalf("GET /v2/images/%s: status %d, want 200; body %q", id, status, body)
	}
	return decodeObject(t, body)
}

func decodeObject(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil || m == nil {
		t.Fatalf("body is not a JSON object: %v; body %q", err, b)
	}
	return m
}

// str decodes a JSON string.
func str(t testing.TB, v json.RawMessage) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		t.Fatalf("%s is not a string", v)
	}
	return s
}

func keys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// logCapture is a slog handler that keeps the error records, so that a
// test fails when the server logs an internal error it did not expect.
type logCapture struct {
	mu   sync.Mutex
	errs []string
}

func (l *logCapture) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelError
}

func (l *logCapture) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	l.errs = append(l.errs, b.String())
	l.mu.Unlock()
	return nil
}

func (l *logCapture) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCapture) WithGroup(string) slog.Handler      { return l }

func (l *logCapture) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}
