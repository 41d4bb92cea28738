package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/client"
)

// TestServeConfigErrors checks that serve refuses a bad profile, page size
// or import host with an error that names it, before it writes anything.
func TestServeConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"unknown profile flag", nil, []string{"--profile", "glance"},
			`unknown profile "glance": use nhn or openstack`},
		{"unknown profile env", map[string]string{"CLOUDIMAGE_PROFILE": "NHN"}, nil,
			`unknown profile "NHN": use nhn or openstack`},
		{"unknown profile flag over a good env", map[string]string{"CLOUDIMAGE_PROFILE": "nhn"},
			[]string{"--profile", "glance"}, `unknown profile "glance"`},
		{"default page size env", map[string]string{"CLOUDIMAGE_DEFAULT_PAGE_SIZE": "ten"}, nil,
			"CLOUDIMAGE_DEFAULT_PAGE_SIZE: not an integer"},
		{"max page size env", map[string]string{"CLOUDIMAGE_MAX_PAGE_SIZE": "1e3"}, nil,
			"CLOUDIMAGE_MAX_PAGE_SIZE: not an integer"},
		{"bad env beside another flag", map[string]string{"CLOUDIMAGE_MAX_PAGE_SIZE": "many"},
			[]string{"--default-page-size", "5"}, "CLOUDIMAGE_MAX_PAGE_SIZE: not an integer"},
		{"default above max", nil, []string{"--default-page-size", "50", "--max-page-size", "20"},
			"the default page size (50) is above the maximum (20)"},
		{"default above the profile's max", map[string]string{"CLOUDIMAGE_DEFAULT_PAGE_SIZE": "1001"}, nil,
			"the default page size (1001) is above the maximum (1000)"},
		{"default env above max flag", map[string]string{"CLOUDIMAGE_DEFAULT_PAGE_SIZE": "30"},
			[]string{"--profile", "openstack", "--max-page-size", "29"},
			"the default page size (30) is above the maximum (29)"},
		{"negative default", nil, []string{"--default-page-size", "-1"}, "page sizes must be positive"},
		{"negative max", nil, []string{"--max-page-size", "-1"}, "page sizes must be positive"},
		{"URL as import host", nil, []string{"--import-allowed-hosts", "files.example,http://mirror.example/"},
			`"http://mirror.example/" is not a host or host:port`},
		{"path in import host env", map[string]string{"CLOUDIMAGE_IMPORT_ALLOWED_HOSTS": "files.example/images"},
			nil, `"files.example/images" is not a host or host:port`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			args := append([]string{"serve", "--data-dir", dir, "--listen", "127.0.0.1:0"}, tc.args...)
			out, err := cli(t, tc.env, args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("serve %v with %v: %v, want an error containing %q", tc.args, tc.env, err, tc.want)
			}
			if out != "" {
				t.Errorf("serve printed %q before failing, want nothing", out)
			}
			if _, err := os.Stat(filepath.Join(dir, dbFile)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused configuration left a database behind (%v)", err)
			}
		})
	}
}

// TestProfileConfiguration starts a server of each profile, configured
// through flags over the environment, and checks that the log reports the
// configuration and that the server keeps its profile's rules, page sizes
// and import hosts.
func TestProfileConfiguration(t *testing.T) {
	t.Parallel()
	t.Run("openstack", testOpenStackServer)
	t.Run("nhn", testNHNServer)
}

// testOpenStackServer runs a server with the openstack profile from the
// environment, page sizes from both, and import hosts from a flag.
func testOpenStackServer(t *testing.T) {
	t.Parallel()
	data := []byte("data fetched by web-download")
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(data)
	}))
	defer files.Close()
	filesHost := strings.TrimPrefix(files.URL, "http://")

	env := map[string]string{
		"CLOUDIMAGE_ADMIN_PASSWORD":       testAdminPassword,
		"CLOUDIMAGE_PROFILE":              "openstack",
		"CLOUDIMAGE_DEFAULT_PAGE_SIZE":    "5",
		"CLOUDIMAGE_MAX_PAGE_SIZE":        "not-a-number", // no error: the flag is given
		"CLOUDIMAGE_IMPORT_ALLOWED_HOSTS": "env.example",
	}
	s := startServer(t, t.TempDir(), env, "--default-page-size", "2", "--max-page-size", "3",
		"--import-allowed-hosts", filesHost+", mirror.example:8080")
	checkConfigLog(t, s, "profile=openstack", "default_page_size=2", "max_page_size=3",
		"import_allowed_hosts="+filesHost+",mirror.example:8080")
	if log := s.Stderr.String(); strings.Contains(log, "env.example") {
		t.Errorf("CLOUDIMAGE_IMPORT_ALLOWED_HOSTS is used beside the flag:\n%s", log)
	}
	c := s.adminClient(t)

	// No os_type needed, and data downloads without any property.
	var ids []string
	for i := range 4 {
		img, err := c.CreateImage(t.Context(), map[string]any{
			"name": fmt.Sprint("page-", i), "disk_format": "raw", "container_format": "bare",
		})
		if err != nil {
			t.Fatalf("create an image without os_type under openstack: %v", err)
		}
		ids = append(ids, img.ID)
	}
	if err := c.UploadImage(t.Context(), ids[0], bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	checkDownload(t, c, ids[0], data)

	// The page sizes reach the v2 list.
	var page struct {
		Images []json.RawMessage `json:"images"`
		Next   string            `json:"next"`
	}
	for _, tc := range []struct {
		query string
		want  int
	}{{"", 2}, {"?limit=100", 3}, {"?limit=1", 1}} {
		if status, body := rawRequest(t, c, "GET", "/v2/images"+tc.query, nil); status != http.StatusOK {
			t.Errorf("GET /v2/images%s: %d %s", tc.query, status, body)
		} else if err := json.Unmarshal(body, &page); err != nil {
			t.Errorf("GET /v2/images%s: %v\n%s", tc.query, err, body)
		} else if len(page.Images) != tc.want || page.Next == "" {
			t.Errorf("GET /v2/images%s: %d images, next %q; want %d and a next link",
				tc.query, len(page.Images), page.Next, tc.want)
		}
	}

	// The import hosts reach web-download.
	checkImportMethods(t, c, "glance-direct", "web-download")
	webDownload := func(uri string) (int, []byte) {
		return rawRequest(t, c, "POST", "/v2/images/"+ids[1]+"/import",
			map[string]any{"method": map[string]string{"name": "web-download", "uri": uri}})
	}
	if status, body := webDownload("http://env.example/disk.raw"); status != http.StatusBadRequest {
		t.Errorf("web-download from a host only the environment allows: %d %s, want 400", status, body)
	}
	if status, body := webDownload(files.URL + "/disk.raw"); status != http.StatusAccepted {
		t.Fatalf("web-download from an allowed host: %d %s, want 202", status, body)
	}
	waitStatus(t, c, ids[1], "active")
	checkDownload(t, c, ids[1], data)
}

// testNHNServer runs a server with the nhn profile from a flag over the
// environment, a maximum page size below the profile's default, and
// import hosts from the environment.
func testNHNServer(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"CLOUDIMAGE_ADMIN_PASSWORD":       testAdminPassword,
		"CLOUDIMAGE_PROFILE":              "openstack",
		"CLOUDIMAGE_MAX_PAGE_SIZE":        "50",
		"CLOUDIMAGE_IMPORT_ALLOWED_HOSTS": " env.example , other.example:8000,",
	}
	s := startServer(t, t.TempDir(), env, "--profile", "nhn")
	checkConfigLog(t, s, "profile=nhn", "default_page_size=50", "max_page_size=50",
		"import_allowed_hosts=env.example,other.example:8000 ")
	c := s.adminClient(t)
	checkImportMethods(t, c, "glance-direct", "web-download")

	for _, attrs := range []map[string]any{
		{"name": "no-os-type", "disk_format": "raw", "container_format": "bare"},
		{"name": "bad-os-type", "disk_format": "raw", "container_format": "bare", "os_type": "bsd"},
	} {
		_, err := c.CreateImage(t.Context(), attrs)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.HTTPStatus != http.StatusBadRequest ||
			!strings.Contains(ce.Message, "os_type") {
			t.Errorf("create %v under nhn: %v, want a 400 about os_type", attrs, err)
		}
	}

	// The CLI passes the server's refusal on, with the flag that fixes it.
	byToken := map[string]string{
		"CLOUDIMAGE_URL": s.URL, "CLOUDIMAGE_APPKEY": s.AppKey, "CLOUDIMAGE_TOKEN": c.Token,
	}
	f := filepath.Join(t.TempDir(), "disk.raw")
	data := []byte("a raw disk")
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := cli(t, byToken, "image", "upload", f)
	if err == nil {
		t.Fatalf("image upload without --os-type under nhn printed\n%s\nwant an error", out)
	}
	lines := errorLines(err)
	want := "error 30400: os_type is required: one of linux, windows; set it with --os-type"
	if len(lines) != 1 || lines[0] != want {
		t.Errorf("image upload without --os-type: main prints %q, want %q", lines, want)
	}
	if cloudimage.ErrorCode(err) != cloudimage.EINVALID {
		t.Errorf("image upload without --os-type: code %q, want %q", cloudimage.ErrorCode(err), cloudimage.EINVALID)
	}
	_, err = cli(t, byToken, "image", "upload", "--os-type", "bsd", f)
	if err == nil || strings.Contains(err.Error(), "--os-type") ||
		!strings.Contains(err.Error(), `os_type "bsd"`) {
		t.Errorf("image upload --os-type bsd: %v, want the server's refusal of bsd and no hint", err)
	}
	if list, err := c.ListImages(t.Context(), client.ListOptions{}); err != nil {
		t.Fatal(err)
	} else if len(list) != 0 {
		t.Errorf("refused uploads left images behind: %v", listIDs(list))
	}

	got := fields(cliOK(t, byToken, "image", "upload", "--os-type", "windows", f))
	if got["os_type"] != "windows" || got["status"] != "active" || got["size"] != fmt.Sprint(len(data)) {
		t.Errorf("image upload --os-type windows printed %v, want an active image with os_type windows", got)
	}
	// NHN Cloud's rule: no download without nhncloud_allow_download.
	_, err = c.DownloadImage(t.Context(), got["id"])
	var ce *client.Error
	if !errors.As(err, &ce) || ce.HTTPStatus != http.StatusForbidden {
		t.Errorf("download without nhncloud_allow_download under nhn: %v, want a 403", err)
	}
}

// checkConfigLog checks that the server's config line holds each of want.
func checkConfigLog(t *testing.T, s *testServer, want ...string) {
	t.Helper()
	var line string
	for l := range strings.Lines(s.Stderr.String()) {
		if strings.Contains(l, "msg=config ") {
			line = l
		}
	}
	for _, w := range want {
		if !strings.Contains(line, w) {
			t.Errorf("config log line lacks %q:\n%s", w, line)
		}
	}
}

// checkImportMethods checks the import methods the server offers.
func checkImportMethods(t *testing.T, c *client.Client, want ...string) {
	t.Helper()
	status, body := rawRequest(t, c, "GET", "/v2/info/import", nil)
	var info struct {
		Methods struct {
			Value []string `json:"value"`
		} `json:"import-methods"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &info) != nil {
		t.Fatalf("GET /v2/info/import: %d %s", status, body)
	}
	if got := strings.Join(info.Methods.Value, ","); got != strings.Join(want, ",") {
		t.Errorf("import methods = %s, want %s", got, strings.Join(want, ","))
	}
}

// checkDownload checks that an image's data downloads as want.
func checkDownload(t *testing.T, c *client.Client, id string, want []byte) {
	t.Helper()
	rc, err := c.DownloadImage(t.Context(), id)
	if err != nil {
		t.Fatalf("download %s: %v", id, err)
	}
	defer rc.Close()
	if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, want) {
		t.Errorf("download %s = %q, %v; want %q", id, got, err, want)
	}
}

// rawRequest sends a request with c's token and a JSON body (unless body
// is nil) and returns the response's status and body.
func rawRequest(t *testing.T, c *client.Client, method, path string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, c.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Auth-Token", c.Token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, b
}
