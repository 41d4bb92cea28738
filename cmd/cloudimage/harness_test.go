package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage/client"
)

// The end-to-end tests start the server in-process through run, exactly as
// main does, and talk to it over HTTP through the client package and
// through run's client subcommands.

// waitTimeout bounds every wait for the server.
const waitTimeout = 30 * time.Second

// testAdminPassword is the bootstrap password the tests give through
// CLOUDIMAGE_ADMIN_PASSWORD.
const testAdminPassword = "e2e-admin-password"

// syncBuffer collects what run writes to a stream, safe for the writer and
// a reader in another goroutine, and wakes up readers on every write.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newSyncBuffer() *syncBuffer {
	return &syncBuffer{changed: make(chan struct{})}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	close(b.changed)
	b.changed = make(chan struct{})
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor returns the submatches of re's first match in the buffer once
// there is one. It fails the test if exited is closed first or the wait
// times out.
func (b *syncBuffer) waitFor(t *testing.T, re *regexp.Regexp, exited <-chan struct{}) []string {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		b.mu.Lock()
		m := re.FindStringSubmatch(b.buf.String())
		changed := b.changed
		b.mu.Unlock()
		if m != nil {
			return m
		}
		select {
		case <-changed:
		case <-exited:
			t.Fatalf("serve exited before its output matched %q; output:\n%s", re, b)
		case <-timeout:
			t.Fatalf("no match for %q after %s; output:\n%s", re, waitTimeout, b)
		}
	}
}

// getenvFrom returns a getenv that sees only env.
func getenvFrom(env map[string]string) func(string) string {
	return func(name string) string { return env[name] }
}

// testServer is a server that run started in-process.
type testServer struct {
	URL      string
	DataDir  string
	TenantID string // of the bootstrap project; empty if there was none
	AppKey   string
	Password string // of the bootstrap admin
	Stdout   *syncBuffer
	Stderr   *syncBuffer

	stop func(t *testing.T)
}

var (
	listeningRE = regexp.MustCompile(`msg=listening addr=(127\.0\.0\.1:\d+)`)
	tenantRE    = regexp.MustCompile(`(?m)^\s*tenant id:\s*(\S+)$`)
	appKeyRE    = regexp.MustCompile(`(?m)^\s*appkey:\s*(\S+)$`)
	passwordRE  = regexp.MustCompile(`(?m)^\s*password:\s*(.+)$`)
)

// startServer runs "serve" on dataDir and a free port with env as its
// environment, and waits until it listens. The server stops when the test
// ends, and the test fails unless run then returns nil.
func startServer(t *testing.T, dataDir string, env map[string]string, extra ...string) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{DataDir: dataDir, Stdout: newSyncBuffer(), Stderr: newSyncBuffer()}
	exited := make(chan struct{})
	var runErr error
	go func() {
		defer close(exited)
		args := []string{"serve", "--data-dir", dataDir}
		if env["CLOUDIMAGE_LISTEN"] == "" {
			args = append(args, "--listen", "127.0.0.1:0")
		}
		args = append(args, extra...)
		runErr = run(ctx, args, getenvFrom(env), nil, s.Stdout, s.Stderr)
	}()
	var once sync.Once
	s.stop = func(t *testing.T) {
		t.Helper()
		once.Do(func() {
			cancel()
			select {
			case <-exited:
				if runErr != nil {
					t.Errorf("serve returned %v, want nil", runErr)
				}
			case <-time.After(waitTimeout):
				t.Errorf("serve did not return within %s of its context's end", waitTimeout)
			}
		})
	}
	t.Cleanup(func() { s.stop(t) })

	// The bootstrap block is written before the server listens, so it is
	// complete once the listening line is there.
	s.URL = "http://" + s.Stderr.waitFor(t, listeningRE, exited)[1]
	out := s.Stdout.String()
	if m := tenantRE.FindStringSubmatch(out); m != nil {
		s.TenantID = m[1]
	}
	if m := appKeyRE.FindStringSubmatch(out); m != nil {
		s.AppKey = m[1]
	}
	if m := passwordRE.FindStringSubmatch(out); m != nil {
		s.Password = strings.TrimSpace(m[1])
		if pw := env["CLOUDIMAGE_ADMIN_PASSWORD"]; pw != "" {
			s.Password = pw
		}
	}
	return s
}

// Stop stops the server and waits for run to return.
func (s *testServer) Stop(t *testing.T) {
	t.Helper()
	s.stop(t)
}

// startBootstrapped starts a server on a new data directory with
// testAdminPassword and checks that it printed the admin credentials.
func startBootstrapped(t *testing.T) *testServer {
	t.Helper()
	s := startServer(t, t.TempDir(), map[string]string{"CLOUDIMAGE_ADMIN_PASSWORD": testAdminPassword})
	if s.TenantID == "" || s.AppKey == "" {
		t.Fatalf("no tenant id and appkey in the first start's output:\n%s", s.Stdout)
	}
	return s
}

// adminEnv is the client environment of the bootstrap admin, using the
// v1.0 API through the appkey.
func (s *testServer) adminEnv() map[string]string {
	return map[string]string{
		"CLOUDIMAGE_URL":      s.URL,
		"CLOUDIMAGE_APPKEY":   s.AppKey,
		"CLOUDIMAGE_USERNAME": "admin",
		"CLOUDIMAGE_PASSWORD": s.Password,
	}
}

// with returns a copy of env with the given name=value pairs set; an
// empty value removes the variable.
func with(env map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(env)+len(kv)/2)
	for k, v := range env {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(out, kv[i])
		} else {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

// cli runs the program with args and env and returns what it printed.
func cli(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	// A server that hangs fails the test rather than stalling it.
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, args, getenvFrom(env), nil, &stdout, &stderr)
	return stdout.String(), err
}

// cliOK is cli that fails the test on an error.
func cliOK(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	out, err := cli(t, env, args...)
	if err != nil {
		t.Fatalf("cloudimage %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// fields parses the "key  value" lines that show and upload print.
func fields(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(line, " ")
		if k != "" {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// testClient returns a client whose requests time out, so that a server
// that hangs fails the test rather than stalling it.
func testClient(url string) *client.Client {
	c := client.New(url)
	c.HTTP = &http.Client{Timeout: waitTimeout}
	return c
}

// adminClient returns a client with a token of the bootstrap admin,
// issued through the v1.0 API.
func (s *testServer) adminClient(t *testing.T) *client.Client {
	t.Helper()
	c := testClient(s.URL)
	c.AppKey, c.Username, c.Password = s.AppKey, "admin", s.Password
	if _, err := c.IssueToken(t.Context()); err != nil {
		t.Fatalf("issue admin token: %v", err)
	}
	return c
}

// resultCode returns the result code of the *client.Error in err's
// chain, failing the test if there is none.
func resultCode(t *testing.T, err error) int {
	t.Helper()
	var ce *client.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *client.Error", err, err)
	}
	return ce.ResultCode
}
