package main

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/client"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// The replica tests need a real PostgreSQL and a real S3 server, named by
// these variables (see .ci/run); they skip without them, and fail in CI.
const (
	envTestPostgres = "CLOUDIMAGE_TEST_POSTGRES"
	envTestS3       = "CLOUDIMAGE_TEST_S3"
)

// requireServers returns the PostgreSQL DSN and S3 URL of the
// environment, skipping the test when one is missing, or failing it when
// CI=true.
func requireServers(t *testing.T) (dsn, s3URL string) {
	t.Helper()
	dsn, s3URL = os.Getenv(envTestPostgres), os.Getenv(envTestS3)
	if dsn != "" && s3URL != "" {
		return dsn, s3URL
	}
	msg := "needs a PostgreSQL server and an S3 server: set " + envTestPostgres +
		" to the DSN of a database in which tests may create databases, e.g. " +
		"postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable, and " + envTestS3 +
		" to a bucket, e.g. s3://cloudimage-test?endpoint=127.0.0.1:59000&region=us-east-1&insecure=true, " +
		"with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (.ci/run starts both)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return "", ""
}

// freshPostgres creates a database on the server of adminDSN, dropped
// when the test ends, and returns its DSN.
func freshPostgres(t *testing.T, adminDSN string) string {
	t.Helper()
	u, err := url.Parse(adminDSN)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL", envTestPostgres)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		t.Fatalf("connect to %s: %v", envTestPostgres, err)
	}
	defer conn.Close(ctx)
	name := "replicas_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		conn, err := pgx.Connect(ctx, adminDSN)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// freshS3Prefix returns the URL of a new prefix in the bucket of bucketURL,
// which it creates if need be, and removes what is under the prefix when
// the test ends.
func freshS3Prefix(t *testing.T, bucketURL string) string {
	t.Helper()
	u, err := url.Parse(bucketURL)
	if err != nil || u.Scheme != "s3" {
		t.Fatalf("%s must be an s3:// URL", envTestS3)
	}
	q := u.Query()
	mc, err := minio.New(q.Get("endpoint"), &minio.Options{
		Creds:  credentials.NewEnvAWS(),
		Secure: q.Get("insecure") != "true",
		Region: q.Get("region"),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	bucket := u.Host
	if err := mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: q.Get("region")}); err != nil {
		code := minio.ToErrorResponse(err).Code
		if code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
			t.Fatalf("make bucket %s: %v", bucket, err)
		}
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix != "" {
		prefix += "/"
	}
	prefix += "replicas-" + uuid.NewString()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		objects := mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix + "/", Recursive: true})
		for obj := range objects {
			if obj.Err != nil {
				t.Errorf("list %s: %v", prefix, obj.Err)
				return
			}
			if err := mc.RemoveObject(ctx, bucket, obj.Key, minio.RemoveObjectOptions{}); err != nil {
				t.Errorf("remove %s: %v", obj.Key, err)
			}
		}
	})
	u.Path = "/" + prefix
	return u.String()
}

// janitorHeldRE matches the log line of a replica that took the janitor
// lease.
var janitorHeldRE = regexp.MustCompile(`msg="janitor lease changed hands".*held_here=true`)

// TestReplicas runs two replicas on two loopback ports over one
// PostgreSQL database and one S3 prefix, and checks that they are one
// service: a token issued by either works on the other, through the v1.0
// API and through Keystone; an image uploaded through one is listed (v1.0
// and v2), downloaded byte-identical and deleted through the other;
// concurrent deletes of one image through both give exactly one success;
// an upload that one replica streams is left alone by the other's
// janitor, which runs on one replica at a time and passes to the other
// when its replica stops; and the offline admin commands work on the
// PostgreSQL database.
func TestReplicas(t *testing.T) {
	adminDSN, bucketURL := requireServers(t)
	t.Parallel()
	dsn := freshPostgres(t, adminDSN)
	blob := freshS3Prefix(t, bucketURL)
	env := map[string]string{
		"CLOUDIMAGE_ADMIN_PASSWORD": testAdminPassword,
		"CLOUDIMAGE_DATABASE":       dsn, // a variable for one, a flag for the other
	}
	common := []string{"--blob", blob, "--scrub-interval", "200ms", "--orphan-grace", "1h"}
	a := startServer(t, t.TempDir(), env, append(common, "--replica-name", "replica-a")...)
	b := startServer(t, t.TempDir(), nil, append(common, "--replica-name", "replica-b", "--database", dsn)...)
	if a.AppKey == "" || b.Stdout.String() != "" {
		t.Fatalf("want the first replica to bootstrap and the second not to; outputs:\n%s\n--\n%s",
			a.Stdout, b.Stdout)
	}
	b.AppKey, b.Password = a.AppKey, testAdminPassword
	for _, s := range []*testServer{a, b} {
		checkReady(t, s)
	}
	checkConfigLog(t, a, strconv.Quote(redactDSN(dsn)), strconv.Quote(blob), "replica_name=replica-a")
	if u, _ := url.Parse(dsn); u.User != nil {
		if pw, ok := u.User.Password(); ok && strings.Contains(a.Stderr.String(), pw) {
			t.Errorf("the database password appears in the log:\n%s", a.Stderr)
		}
	}

	// Tokens issued by one replica work on the other.
	nhnA, nhnB := a.adminClient(t), b.adminClient(t)
	onB, onA := testClient(b.URL), testClient(a.URL)
	onB.AppKey, onB.Token = a.AppKey, nhnA.Token
	onA.AppKey, onA.Token = a.AppKey, nhnB.Token
	for what, c := range map[string]*client.Client{"A's token on B": onB, "B's token on A": onA} {
		if _, err := c.ListImages(t.Context(), client.ListOptions{}); err != nil {
			t.Errorf("v1.0 list with %s: %v", what, err)
		}
	}
	ksA := keystoneV3Token(t, a.URL, "admin", testAdminPassword, "admin")
	ksB := keystoneV3Token(t, b.URL, "admin", testAdminPassword, "admin")
	if ids := v2ListIDs(t, b.URL, ksA); len(ids) != 0 {
		t.Errorf("v2 list on B with A's Keystone token: %v, want none yet", ids)
	}
	v2ListIDs(t, a.URL, ksB)

	// An image uploaded through A is B's as well.
	data := make([]byte, 6<<20+12345) // more than one S3 part
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	id := createAndUpload(t, nhnA, data)
	if ids := listIDs(mustList(t, onB)); !slices.Contains(ids, id) {
		t.Errorf("v1.0 list on B: %v, want %s", ids, id)
	}
	if ids := v2ListIDs(t, b.URL, ksA); !slices.Contains(ids, id) {
		t.Errorf("v2 list on B: %v, want %s", ids, id)
	}
	if got := download(t, onB, id); sha512.Sum512(got) != sha512.Sum512(data) {
		t.Errorf("download through B: %d bytes that differ from the %d uploaded through A", len(got), len(data))
	}
	if err := onB.DeleteImage(t.Context(), id); err != nil {
		t.Fatalf("delete through B: %v", err)
	}
	if _, err := nhnA.GetImage(t.Context(), id); cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
		t.Errorf("get through A of the image deleted through B: %v, want not found", err)
	}

	// Concurrent deletes of one image through both: exactly one wins.
	for round := range 5 {
		id := createAndUpload(t, nhnA, []byte(fmt.Sprintf("deleted twice, round %d", round)))
		got := deleteBoth(t, id, [2]string{a.URL, b.URL}, [2]string{ksA, ksB})
		slices.Sort(got[:])
		if got != [2]int{http.StatusNoContent, http.StatusNotFound} {
			t.Errorf("round %d: concurrent deletes answered %v, want one 204 and one 404", round, got)
		}
	}

	// The janitor runs on one replica; an upload streaming through the
	// other is not taken for an abandoned one by its recovery.
	holder, other := janitorReplica(t, a, b)
	checkUploadBesideJanitor(t, holder, other)
	if janitorHeldRE.MatchString(other.Stderr.String()) {
		t.Errorf("both replicas held the janitor lease:\n%s\n--\n%s", holder.Stderr, other.Stderr)
	}

	// Offline administration on the shared database: a user made there
	// can sign in on either replica.
	cliOK(t, nil, "--database", dsn, "project", "create", "offline")
	cliOK(t, map[string]string{"CLOUDIMAGE_DATABASE": dsn}, "user", "create", "--project", "offline",
		"--password", "offline-password", "olga")
	keystoneV3Token(t, other.URL, "olga", "offline-password", "offline")

	// A stopped holder releases the lease, and the other takes it.
	holder.Stop(t)
	deadline := time.Now().Add(waitTimeout)
	for !janitorHeldRE.MatchString(other.Stderr.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("the janitor lease did not pass to the other replica:\n%s", other.Stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkReady fails the test unless the server's readiness check says its
// database and blob store are fine.
func checkReady(t *testing.T, s *testServer) {
	t.Helper()
	resp, err := testClient(s.URL).HTTP.Get(s.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"database":"ok"`) ||
		!strings.Contains(string(body), `"images":"ok"`) {
		t.Errorf("GET %s/readyz: %d %s, want 200 with the database and images ok", s.URL, resp.StatusCode, body)
	}
}

// createAndUpload creates an image through c and uploads data to it.
func createAndUpload(t *testing.T, c *client.Client, data []byte) string {
	t.Helper()
	img, err := c.CreateImage(t.Context(), map[string]any{"name": "replicated", "disk_format": "raw",
		"container_format": "bare", "os_type": "linux", "nhncloud_allow_download": "true"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UploadImage(t.Context(), img.ID, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("upload %s: %v", img.ID, err)
	}
	return img.ID
}

func mustList(t *testing.T, c *client.Client) []client.ListedImage {
	t.Helper()
	imgs, err := c.ListImages(t.Context(), client.ListOptions{})
	if err != nil {
		t.Fatalf("v1.0 list: %v", err)
	}
	return imgs
}

func download(t *testing.T, c *client.Client, id string) []byte {
	t.Helper()
	rc, err := c.DownloadImage(t.Context(), id)
	if err != nil {
		t.Fatalf("download %s: %v", id, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("download %s: %v", id, err)
	}
	return b
}

// v2ListIDs lists the images of the server at base through the v2 API
// with a Keystone token.
func v2ListIDs(t *testing.T, base, token string) []string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", base+"/v2/images", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", token)
	resp, err := testClient(base).HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Images []struct {
			ID string `json:"id"`
		} `json:"images"`
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s/v2/images: %s\n%s", base, resp.Status, body)
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(page.Images))
	for i, img := range page.Images {
		ids[i] = img.ID
	}
	return ids
}

// deleteBoth sends DELETE /v2/images/id to both servers at once and
// returns their statuses.
func deleteBoth(t *testing.T, id string, bases, tokens [2]string) [2]int {
	t.Helper()
	var got [2]int
	var errs [2]error
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 2 {
		req, err := http.NewRequestWithContext(t.Context(), "DELETE", bases[i]+"/v2/images/"+id, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Auth-Token", tokens[i])
		wg.Go(func() {
			<-start
			resp, err := testClient(bases[i]).HTTP.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			resp.Body.Close()
			got[i] = resp.StatusCode
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return got
}

// janitorReplica waits until one of the replicas holds the janitor lease
// and returns it first.
func janitorReplica(t *testing.T, a, b *testServer) (holder, other *testServer) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		inA, inB := janitorHeldRE.MatchString(a.Stderr.String()), janitorHeldRE.MatchString(b.Stderr.String())
		switch {
		case inA && inB:
			t.Fatalf("both replicas took the janitor lease:\n%s\n--\n%s", a.Stderr, b.Stderr)
		case inA:
			return a, b
		case inB:
			return b, a
		case time.Now().After(deadline):
			t.Fatal("no replica took the janitor lease")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkUploadBesideJanitor streams an upload through other, pausing in
// the middle for many janitor rounds on holder, and checks that the
// image stays saving meanwhile and becomes active with the data after.
func checkUploadBesideJanitor(t *testing.T, holder, other *testServer) {
	t.Helper()
	c := other.adminClient(t)
	img, err := c.CreateImage(t.Context(), map[string]any{"name": "streaming", "disk_format": "raw",
		"container_format": "bare", "os_type": "linux", "nhncloud_allow_download": "true"})
	if err != nil {
		t.Fatal(err)
	}
	first, second := bytes.Repeat([]byte("first half "), 50000), bytes.Repeat([]byte("second half "), 50000)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- c.UploadImage(t.Context(), img.ID, pr, int64(len(first)+len(second)))
	}()
	if _, err := pw.Write(first); err != nil {
		t.Fatal(err)
	}
	viaHolder := holder.adminClient(t)
	waitStatusIs(t, viaHolder, img.ID, "saving")
	time.Sleep(2 * time.Second) // ten janitor rounds
	if got, err := viaHolder.GetImage(t.Context(), img.ID); err != nil || got.Status != "saving" {
		t.Fatalf("the streaming image after the janitor's rounds: %v, %v; want saving", got, err)
	}
	if strings.Contains(holder.Stderr.String(), "interrupted upload returned to queued") {
		t.Fatalf("the janitor requeued a live upload:\n%s", holder.Stderr)
	}
	if _, err := pw.Write(second); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatalf("the upload beside the janitor: %v", err)
	}
	want := append(first, second...)
	if got := download(t, viaHolder, img.ID); !bytes.Equal(got, want) {
		t.Errorf("downloaded %d bytes through the holder, want the %d streamed", len(got), len(want))
	}
}

// waitStatusIs polls the image through c until its status is want.
func waitStatusIs(t *testing.T, c *client.Client, id, want string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		img, err := c.GetImage(t.Context(), id)
		if err == nil && img.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("image %s: %v, %v; want %s", id, img, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
