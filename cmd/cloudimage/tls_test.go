package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage/client"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// to dir, and returns their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "cloudimage test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return certFile, keyFile, pool
}

// TestServeTLS checks that with --tls-cert and --tls-key the server speaks
// HTTPS only: a client that trusts the certificate gets a token and lists
// images, the token's catalog and the logged public URL are https://, and
// plain HTTP and a client that does not trust the certificate get nothing.
func TestServeTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	s := startServer(t, t.TempDir(), map[string]string{"CLOUDIMAGE_ADMIN_PASSWORD": testAdminPassword},
		"--tls-cert", certFile, "--tls-key", keyFile)
	addr := strings.TrimPrefix(s.URL, "http://")
	url := "https://" + addr
	trusting := &http.Client{Timeout: waitTimeout, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}}

	c := client.New(url)
	c.HTTP = trusting
	c.AppKey, c.Username, c.Password = s.AppKey, "admin", testAdminPassword
	if _, err := c.IssueToken(t.Context()); err != nil {
		t.Fatalf("issue a token over HTTPS: %v", err)
	}
	if _, err := c.ListImages(t.Context(), client.ListOptions{}); err != nil {
		t.Fatalf("list images over HTTPS: %v", err)
	}

	// The catalog sends clients to https.
	body := `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin",` +
		`"domain":{"id":"default"},"password":"` + testAdminPassword + `"}}}}}`
	resp, err := trusting.Post(url+"/identity/v3/auth/tokens", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		Token struct {
			Catalog []struct {
				Type      string
				Endpoints []struct{ URL string }
			}
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated || len(tok.Token.Catalog) == 0 {
		t.Fatalf("v3 token over HTTPS: %d, %v", resp.StatusCode, err)
	}
	for _, svc := range tok.Token.Catalog {
		for _, ep := range svc.Endpoints {
			if !strings.HasPrefix(ep.URL, url) {
				t.Errorf("catalog endpoint of %s: %s, want under %s", svc.Type, ep.URL, url)
			}
		}
	}

	// Plain HTTP is not served.
	resp, err = http.Get("http://" + addr + "/versions")
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(b), "versions") {
			t.Errorf("plain HTTP: %d %q, want a refusal", resp.StatusCode, b)
		}
	}
	// Nor is a client that does not trust the certificate.
	if resp, err := (&http.Client{Timeout: waitTimeout}).Get(url + "/versions"); err == nil {
		resp.Body.Close()
		t.Error("a client that does not trust the certificate got an answer")
	}
	s.Stop(t)
	checkConfigLog(t, s, "public_url="+url, "tls_cert="+certFile)
}

// TestServeTLSFlags checks that a certificate without its key, or a key
// without its certificate, by flag or by environment, is an error, and so
// are files that are not a certificate and its key.
func TestServeTLSFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile, _ := selfSigned(t, dir)
	otherCert, _, _ := selfSigned(t, t.TempDir())
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"cert only", nil, []string{"--tls-cert", certFile}, "give both or neither"},
		{"key only", nil, []string{"--tls-key", keyFile}, "give both or neither"},
		{"cert only, by env", map[string]string{"CLOUDIMAGE_TLS_CERT": certFile}, nil, "give both or neither"},
		{"key by env, no cert", map[string]string{"CLOUDIMAGE_TLS_KEY": keyFile}, nil, "give both or neither"},
		{"another certificate's key", nil, []string{"--tls-cert", otherCert, "--tls-key", keyFile},
			"load TLS certificate"},
		{"no such file", nil, []string{"--tls-cert", filepath.Join(dir, "nope"), "--tls-key", keyFile},
			"load TLS certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
			defer cancel()
			args := append([]string{"serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"}, tc.args...)
			err := run(ctx, args, getenvFrom(tc.env), nil, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("serve %v: %v, want an error with %q", tc.args, err, tc.want)
			}
		})
	}
}

// TestServeAuthFailureFlags checks the token-request failure limit as
// serve configures it: on by default, set by --auth-failure-burst, off
// with 0, and its bad values refused.
func TestServeAuthFailureFlags(t *testing.T) {
	t.Parallel()
	env := map[string]string{"CLOUDIMAGE_ADMIN_PASSWORD": testAdminPassword}
	// attempt asks for the admin's token through v1.0 and returns the
	// result code and message.
	attempt := func(t *testing.T, s *testServer, password string) (int, string) {
		t.Helper()
		c := testClient(s.URL)
		c.AppKey, c.Username, c.Password = s.AppKey, "admin", password
		_, err := c.IssueToken(t.Context())
		if err == nil {
			return 0, ""
		}
		var ce *client.Error
		if !errors.As(err, &ce) {
			t.Fatalf("error %v (%T) is not a *client.Error", err, err)
		}
		return ce.ResultCode, ce.Message
	}

	s := startServer(t, t.TempDir(), env, "--auth-failure-burst", "2")
	for range 2 {
		if code, _ := attempt(t, s, "wrong"); code != -3 {
			t.Errorf("a wrong password: %d, want -3", code)
		}
	}
	if code, msg := attempt(t, s, testAdminPassword); code != -3 || !strings.Contains(msg, "Too many failed") {
		t.Errorf("the right password after 2 failures: %d %q, want -3 Too many failed ...", code, msg)
	}
	s.Stop(t)
	checkConfigLog(t, s, "auth_failure_burst=2 auth_failure_interval=1m0s")

	off := startServer(t, t.TempDir(), with(env, "CLOUDIMAGE_AUTH_FAILURE_BURST", "0"))
	for range 12 {
		attempt(t, off, "wrong")
	}
	if code, msg := attempt(t, off, testAdminPassword); code != 0 {
		t.Errorf("burst 0, after 12 failures: %d %q, want a token", code, msg)
	}
	off.Stop(t)

	d := startServer(t, t.TempDir(), nil)
	d.Stop(t)
	checkConfigLog(t, d, "auth_failure_burst=10 auth_failure_interval=1m0s")

	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"CLOUDIMAGE_AUTH_FAILURE_INTERVAL": "soon"}, nil, "CLOUDIMAGE_AUTH_FAILURE_INTERVAL"},
		{map[string]string{"CLOUDIMAGE_AUTH_FAILURE_BURST": "many"}, nil, "CLOUDIMAGE_AUTH_FAILURE_BURST"},
		{nil, []string{"--auth-failure-burst", "-1"}, "must not be negative"},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
		args := append([]string{"serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"}, tc.args...)
		err := run(ctx, args, getenvFrom(tc.env), nil, io.Discard, io.Discard)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve %v with %v: %v, want an error with %q", tc.args, tc.env, err, tc.want)
		}
	}
}
