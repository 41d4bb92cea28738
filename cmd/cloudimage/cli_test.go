package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cloudimage/cloudimage"
)

// TestAdminCommands creates a project and users with the offline admin
// commands, beside a running server, and uses them against it.
func TestAdminCommands(t *testing.T) {
	t.Parallel()
	s := startBootstrapped(t)
	dataDir := []string{"--data-dir", s.DataDir}

	created := fields(cliOK(t, nil, append(dataDir, "project", "create", "team")...))
	tenantID, appKey := created["tenant"], created["appkey:"]
	if !strings.HasPrefix(tenantID, "id:") || appKey == "" || created["name:"] != "team" {
		t.Fatalf("project create printed %v, want tenant id, appkey and name", created)
	}
	tenantID = strings.TrimSpace(strings.TrimPrefix(tenantID, "id:"))

	var projects []map[string]string
	out := cliOK(t, nil, append(dataDir, "project", "list", "--json")...)
	if err := json.Unmarshal([]byte(out), &projects); err != nil {
		t.Fatalf("project list --json: %v\n%s", err, out)
	}
	found := false
	for _, p := range projects {
		found = found || p["tenant_id"] == tenantID && p["appkey"] == appKey && p["name"] == "team"
	}
	if !found || len(projects) != 2 {
		t.Errorf("project list --json = %v, want admin and team (%s, %s)", projects, tenantID, appKey)
	}
	if table := cliOK(t, nil, append(dataDir, "project", "list")...); !strings.Contains(table, appKey) {
		t.Errorf("project list printed\n%s\nwant the appkey %s", table, appKey)
	}

	// A generated password is printed once and works.
	user := fields(cliOK(t, nil, append(dataDir,
		"user", "create", "--project", "team", "--role", "member", "alice")...))
	if user["username:"] != "alice" || user["role:"] != "member" || len(user["password:"]) < 16 {
		t.Fatalf("user create printed %v, want alice, member and a generated password", user)
	}
	alice := map[string]string{
		"CLOUDIMAGE_URL": s.URL, "CLOUDIMAGE_APPKEY": appKey,
		"CLOUDIMAGE_USERNAME": "alice", "CLOUDIMAGE_PASSWORD": user["password:"],
	}
	tok := fields(cliOK(t, alice, "token", "issue"))
	if tok["id:"] == "" {
		t.Fatalf("token issue as alice printed %v, want a token id", tok)
	}
	// The team sees none of the admin project's images.
	alice = with(alice, "CLOUDIMAGE_TOKEN", tok["id:"])
	if out := cliOK(t, alice, "image", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("team's image list = %s, want []", out)
	}

	// A given password is not printed, and works through Keystone v2.0.
	out = cliOK(t, nil, append(dataDir, "user", "create", "--project", appKey, "--role", "reader",
		"--password", "bob-secret-pw", "bob")...)
	if strings.Contains(out, "password") {
		t.Errorf("user create --password printed the password:\n%s", out)
	}
	bob := map[string]string{
		"CLOUDIMAGE_URL": s.URL, "CLOUDIMAGE_TENANT_ID": tenantID,
		"CLOUDIMAGE_USERNAME": "bob", "CLOUDIMAGE_PASSWORD": "bob-secret-pw",
	}
	tok = fields(cliOK(t, bob, "token", "issue"))

	// A reader may not create images.
	bob = with(bob, "CLOUDIMAGE_TOKEN", tok["id:"])
	f := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(f, []byte("raw disk"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := cli(t, bob, "image", "upload", "--os-type", "linux", f)
	if cloudimage.ErrorCode(err) != cloudimage.EFORBIDDEN {
		t.Errorf("upload as a reader: %v, want forbidden", err)
	}

	if _, err := cli(t, nil, append(dataDir, "user", "create", "--project", "nosuch", "carol")...); err == nil {
		t.Errorf("user create in an unknown project succeeded")
	}
}

// TestErrors checks that failures come back as *client.Error with the
// v1.0 result codes.
func TestErrors(t *testing.T) {
	t.Parallel()
	s := startBootstrapped(t)
	env := s.adminEnv()
	bad := with(env, "CLOUDIMAGE_PASSWORD", "wrong")

	_, err := cli(t, bad, "token", "issue")
	if code := resultCode(t, err); code != -3 {
		t.Errorf("token issue with a wrong password: result code %d, want -3", code)
	}
	if cloudimage.ErrorCode(err) != cloudimage.EUNAUTHORIZED {
		t.Errorf("token issue with a wrong password: code %q, want %q",
			cloudimage.ErrorCode(err), cloudimage.EUNAUTHORIZED)
	}
	_, err = cli(t, with(bad, "CLOUDIMAGE_APPKEY", "", "CLOUDIMAGE_TENANT_ID", s.TenantID), "token", "issue")
	if code := resultCode(t, err); code != 30401 {
		t.Errorf("Keystone token with a wrong password: result code %d, want 30401", code)
	}
	_, err = cli(t, with(env, "CLOUDIMAGE_APPKEY", "NOSUCHAPPKEY"), "token", "issue")
	if code := resultCode(t, err); code != -3 {
		t.Errorf("token issue with an unknown appkey: result code %d, want -3", code)
	}

	_, err = cli(t, with(env, "CLOUDIMAGE_TOKEN", "not-a-token"), "image", "list")
	if code := resultCode(t, err); code != -3 {
		t.Errorf("image list with an unknown token: result code %d, want -3", code)
	}

	// The rest needs no fresh token per command.
	env = map[string]string{
		"CLOUDIMAGE_URL": s.URL, "CLOUDIMAGE_APPKEY": s.AppKey, "CLOUDIMAGE_TOKEN": s.adminClient(t).Token,
	}
	unknown := "00000000-0000-4000-8000-000000000000"
	_, err = cli(t, env, "image", "delete", unknown)
	if code := resultCode(t, err); code != 30404 {
		t.Errorf("delete unknown image: result code %d, want 30404", code)
	}
	_, err = cli(t, env, "image", "delete", "not-a-uuid")
	if code := resultCode(t, err); code != -4 {
		t.Errorf("delete malformed id: result code %d, want -4", code)
	}
	_, err = cli(t, env, "image", "list", "--marker", unknown)
	if code := resultCode(t, err); code != 30400 {
		t.Errorf("list after an unknown marker: result code %d, want 30400", code)
	}
	_, err = cli(t, env, "image", "show", unknown)
	if code := resultCode(t, err); code != 30404 {
		t.Errorf("show unknown image: result code %d, want 30404", code)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	if _, err := cli(t, env, "image", "upload", missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("upload of a missing file: %v, want not exist", err)
	}
}

// TestMainReportsErrors runs the built binary with a wrong password and
// with an unknown profile: it must exit non-zero and say why on stderr,
// with the result code for the server's refusal.
func TestMainReportsErrors(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no go command on PATH to build the binary with")
		}
		t.Skip("no go command on PATH to build the binary with")
	}
	s := startBootstrapped(t)
	bin := filepath.Join(t.TempDir(), "cloudimage")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		// The same flags as the test binary reuse its build cache.
		args = append(args, "-race")
	}
	if out, err := exec.Command(goTool, append(args, ".")...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	fails := func(want string, env []string, args ...string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "CLOUDIMAGE_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("cloudimage %v: %v, want exit status 1", args, err)
		}
		if got := stderr.String(); !strings.HasPrefix(got, want) {
			t.Errorf("cloudimage %v: stderr = %q, want it to start with %q", args, got, want)
		}
		if stdout.Len() != 0 {
			t.Errorf("cloudimage %v: stdout = %q, want nothing", args, stdout.String())
		}
	}
	fails("cloudimage: error -3: Permission denied",
		[]string{"CLOUDIMAGE_URL=" + s.URL, "CLOUDIMAGE_APPKEY=" + s.AppKey,
			"CLOUDIMAGE_USERNAME=admin", "CLOUDIMAGE_PASSWORD=wrong"},
		"token", "issue")
	fails("cloudimage: unknown profile \"glance\": use nhn or openstack\n", nil,
		"serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--profile", "glance")
	fails("cloudimage: unknown profile \"NHN\": use nhn or openstack\n", []string{"CLOUDIMAGE_PROFILE=NHN"},
		"serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0")
}

// TestRestart stops a server and starts another on the same data
// directory: it must not bootstrap again, and keep images and users.
func TestRestart(t *testing.T) {
	t.Parallel()
	first := startBootstrapped(t)
	c := first.adminClient(t)
	img, err := c.CreateImage(t.Context(), map[string]any{
		"name": "kept", "disk_format": "raw", "container_format": "bare",
		"os_type": "linux", "nhncloud_allow_download": "true",
	})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("data that outlives the server")
	if err := c.UploadImage(t.Context(), img.ID, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	first.Stop(t)
	if logs := first.Stderr.String(); !strings.Contains(logs, "msg=\"shutting down\"") {
		t.Errorf("no shutdown line in the log:\n%s", logs)
	}

	second := startServer(t, first.DataDir, map[string]string{"CLOUDIMAGE_ADMIN_PASSWORD": "another"})
	if out := second.Stdout.String(); out != "" {
		t.Errorf("the second start printed\n%s\nwant nothing: it must not bootstrap again", out)
	}
	env := with(first.adminEnv(), "CLOUDIMAGE_URL", second.URL)
	_, err = cli(t, with(env, "CLOUDIMAGE_PASSWORD", "another"), "token", "issue")
	if resultCode(t, err) != -3 {
		t.Errorf("the second start's CLOUDIMAGE_ADMIN_PASSWORD works: %v", err)
	}
	c.URL = second.URL
	c.Token = ""
	if _, err := c.IssueToken(t.Context()); err != nil {
		t.Fatalf("the first start's credentials after a restart: %v", err)
	}
	got := fields(cliOK(t, with(env, "CLOUDIMAGE_TOKEN", c.Token), "image", "show", img.ID))
	if got["status"] != "active" || got["size"] != "29" || got["name"] != "kept" {
		t.Errorf("image after restart = %v, want the active image of 29 bytes", got)
	}
	rc, err := c.DownloadImage(t.Context(), img.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(rc); err != nil || !bytes.Equal(buf.Bytes(), data) {
		t.Errorf("data after restart = %q, %v; want %q", buf.Bytes(), err, data)
	}
}

// TestBootstrapPassword checks the first start's credentials: a generated
// password is printed when CLOUDIMAGE_ADMIN_PASSWORD is unset, and only
// named when it is set.
func TestBootstrapPassword(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir(), nil)
	if len(s.Password) < 16 || strings.Contains(s.Password, "CLOUDIMAGE_ADMIN_PASSWORD") {
		t.Fatalf("bootstrap printed password %q, want a generated one:\n%s", s.Password, s.Stdout)
	}
	if !strings.Contains(s.Stdout.String(), "username:  admin") {
		t.Errorf("bootstrap output lacks the admin username:\n%s", s.Stdout)
	}
	cliOK(t, s.adminEnv(), "token", "issue")

	fromEnv := startBootstrapped(t)
	out := fromEnv.Stdout.String()
	if !strings.Contains(out, "(from CLOUDIMAGE_ADMIN_PASSWORD)") || strings.Contains(out, testAdminPassword) {
		t.Errorf("bootstrap with CLOUDIMAGE_ADMIN_PASSWORD printed\n%s\nwant the password named, not shown", out)
	}
	c := testClient(fromEnv.URL)
	c.TenantID, c.Username, c.Password = fromEnv.TenantID, "admin", testAdminPassword
	if _, err := c.IssueToken(t.Context()); err != nil {
		t.Errorf("Keystone token with CLOUDIMAGE_ADMIN_PASSWORD: %v", err)
	}
}

// TestAdminCommandsLeaveUploadsAlone checks that an admin command run
// beside a serving server opens only the database: a file that an upload
// in flight is writing in the blob store's staging directory survives it.
func TestAdminCommandsLeaveUploadsAlone(t *testing.T) {
	t.Parallel()
	s := startBootstrapped(t)
	staged := filepath.Join(s.DataDir, "images", ".staging", "in-flight-upload")
	if err := os.WriteFile(staged, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := []string{"--data-dir", s.DataDir}
	cliOK(t, nil, append(dataDir, "project", "create", "other")...)
	cliOK(t, nil, append(dataDir, "project", "list")...)
	cliOK(t, nil, append(dataDir, "user", "create", "--project", "other", "--password", "pw", "carol")...)
	if _, err := os.Stat(staged); err != nil {
		t.Fatalf("an admin command removed an upload's staging file: %v", err)
	}
}

// TestCLIEdges covers what a careless user runs into: extra properties
// shown back, unknown subcommands, and admin commands pointed at a
// directory that holds no database.
func TestCLIEdges(t *testing.T) {
	t.Parallel()
	s := startBootstrapped(t)
	env := s.adminEnv()

	f := filepath.Join(t.TempDir(), "small.bin")
	if err := os.WriteFile(f, []byte("raw data"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := cliOK(t, env, "image", "upload", "--property", "os_type=linux", "--property", "note=a=b", f)
	got := fields(out)
	if got["os_type"] != "linux" || got["note"] != "a=b" || got["disk_format"] != "raw" {
		t.Errorf("upload printed %v, want os_type linux, note a=b and disk_format raw", got)
	}

	// An upload the server refuses takes its new image away with it.
	if _, err := cli(t, env, "image", "upload", "--os-type", "linux", "--disk-format", "qcow2", f); err == nil ||
		!strings.Contains(err.Error(), "qcow2") {
		t.Errorf("upload of raw data as qcow2: %v, want the format refusal", err)
	}
	var listed []map[string]any
	if err := json.Unmarshal([]byte(cliOK(t, env, "image", "list", "--json")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 {
		t.Errorf("after a refused upload the project lists %d images, want the 1 uploaded before: %v", len(listed), listed)
	}

	for _, args := range [][]string{{"image", "bogus"}, {"project", "bogus"}, {"bogus"}} {
		if _, err := cli(t, env, args...); err == nil {
			t.Errorf("%v: no error for an unknown command", args)
		}
	}

	empty := t.TempDir()
	if _, err := cli(t, nil, "--data-dir", empty, "project", "list"); err == nil || !strings.Contains(err.Error(), "no database") {
		t.Errorf("project list on an empty directory: %v, want a no-database error", err)
	}
	if _, err := os.Stat(filepath.Join(empty, "cloudimage.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("project list created a database in an empty directory (%v)", err)
	}
}

// TestAdminCommandsBesideBusyServer does what scripts/tempest.sh does:
// with a server running on the data directory and writing to its
// database, it creates projects and member users offline, then gets
// Keystone v3 tokens for them by name and creates images with those.
func TestAdminCommandsBesideBusyServer(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir(), map[string]string{"CLOUDIMAGE_ADMIN_PASSWORD": testAdminPassword},
		"--profile", "openstack")
	admin := s.adminClient(t)

	// The server keeps writing while the admin commands run.
	stop := make(chan struct{})
	var stopOnce sync.Once
	defer stopOnce.Do(func() { close(stop) })
	written := make(chan error, 1)
	ctx := t.Context()
	go func() {
		for n := 0; ; n++ {
			select {
			case <-stop:
				if n == 0 {
					written <- errors.New("no image was written")
				}
				close(written)
				return
			default:
			}
			img, err := admin.CreateImage(ctx, map[string]any{
				"name": "busy", "disk_format": "raw", "container_format": "bare",
			})
			if err == nil {
				err = admin.DeleteImage(ctx, img.ID)
			}
			if err != nil {
				written <- err
				close(written)
				return
			}
		}
	}()

	type account struct{ project, tenantID, user, password string }
	var accounts []account
	for i := range 2 {
		a := account{project: fmt.Sprint("tempest-project-", i), user: fmt.Sprint("tempest-user-", i),
			password: fmt.Sprint("tempest-pw-", i)}
		out := cliOK(t, nil, "--data-dir", s.DataDir, "project", "create", a.project)
		m := tenantRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("project create printed\n%s\nwant a tenant id", out)
		}
		a.tenantID = m[1]
		cliOK(t, nil, "--data-dir", s.DataDir, "user", "create", "--project", a.project,
			"--role", "member", "--password", a.password, a.user)
		accounts = append(accounts, a)
	}
	stopOnce.Do(func() { close(stop) })
	if err := <-written; err != nil {
		t.Fatalf("the server's writes beside the admin commands: %v", err)
	}

	for _, a := range accounts {
		c := testClient(s.URL)
		c.Token = keystoneV3Token(t, s.URL, a.user, a.password, a.project)
		img, err := c.CreateImage(t.Context(), map[string]any{
			"name": a.user, "disk_format": "raw", "container_format": "bare",
		})
		if err != nil {
			t.Fatalf("create an image as %s: %v", a.user, err)
		}
		if img.Owner != a.tenantID {
			t.Errorf("%s's image is owned by %s, want %s", a.user, img.Owner, a.tenantID)
		}
	}
}

// keystoneV3Token gets a project-scoped token by password through
// Keystone v3, naming the user and project in the Default domain as
// tempest does.
func keystoneV3Token(t *testing.T, url, user, password, project string) string {
	t.Helper()
	domain := map[string]string{"name": "Default"}
	body, err := json.Marshal(map[string]any{"auth": map[string]any{
		"identity": map[string]any{
			"methods": []string{"password"},
			"password": map[string]any{"user": map[string]any{
				"name": user, "password": password, "domain": domain,
			}},
		},
		"scope": map[string]any{"project": map[string]any{"name": project, "domain": domain}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	c := testClient(url)
	resp, err := c.HTTP.Post(url+"/identity/v3/auth/tokens", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	tok := resp.Header.Get("X-Subject-Token")
	if resp.StatusCode != http.StatusCreated || tok == "" {
		t.Fatalf("Keystone v3 token for %s in %s: %s, token %q\n%s", user, project, resp.Status, tok, msg)
	}
	return tok
}
