package s3blob

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/storetest"
	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"
)

// The tests below that need a server read its URL from this variable,
// with the credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
// Each test works under a prefix of its own in that bucket, which is
// created if it is not there.
const envS3 = "CLOUDIMAGE_TEST_S3"

// serverURL returns the URL of the test server's bucket, skipping the
// test when none is configured, or failing it in CI.
func serverURL(t *testing.T) string {
	t.Helper()
	raw := os.Getenv(envS3)
	if raw == "" {
		msg := envS3 + " is not set: to run the S3 tests, start MinIO (see .ci/run) and set " +
			envS3 + "='s3://cloudimage-test?endpoint=127.0.0.1:59000&region=us-east-1&insecure=true' " +
			"with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ensureBucket(t, raw)
	return raw
}

var bucketOnce sync.Map // URL -> error of making sure its bucket exists

// ensureBucket creates the bucket of rawURL unless it exists, once per
// test binary.
func ensureBucket(t *testing.T, rawURL string) {
	t.Helper()
	v, _ := bucketOnce.LoadOrStore(rawURL, sync.OnceValue(func() error {
		cfg, err := parseURL(rawURL)
		if err != nil {
			return err
		}
		c, err := cfg.client(nil)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = c.MakeBucket(ctx, cfg.bucket, minio.MakeBucketOptions{Region: cfg.region})
		if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
			return nil
		}
		return err
	}))
	if err := v.(func() error)(); err != nil {
		t.Fatalf("bucket of %s: %v", envS3, err)
	}
}

// withPrefix returns rawURL with its prefix replaced by prefix.
func withPrefix(t *testing.T, rawURL, prefix string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + prefix
	return u.String()
}

// newStore opens a store under a fresh prefix of the test bucket, with
// transport if not nil, and removes what the test leaves there.
func newStore(t *testing.T, transport http.RoundTripper) *Store {
	t.Helper()
	raw := withPrefix(t, serverURL(t), "test-"+uuid.NewString())
	s, err := open(context.Background(), raw, transport)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, Recursive: true}) {
			if obj.Err == nil {
				s.client.RemoveObject(ctx, s.bucket, obj.Key, minio.RemoveObjectOptions{})
			}
		}
	})
	return s
}

// incompleteUploads returns the keys of those uploads in progress in s
// that are of one of keys. (MinIO lists only the uploads of one object.)
func incompleteUploads(t *testing.T, s *Store, keys ...string) []string {
	t.Helper()
	var found []string
	for _, key := range keys {
		for up := range s.client.ListIncompleteUploads(context.Background(), s.bucket, s.prefix+key, true) {
			if up.Err != nil {
				t.Fatalf("list incomplete uploads: %v", up.Err)
			}
			found = append(found, up.Key)
		}
	}
	return found
}

func TestConformance(t *testing.T) {
	storetest.TestBlobStore(t, func(t *testing.T) cloudimage.BlobStore { return newStore(t, nil) })
}

// stream is a reader of n pseudo-random bytes that is nothing but a
// reader (no Seek, no Len, no WriteTo), hashing what it yields, and
// failing with err instead of ending if err is set.
type stream struct {
	rng *mrand.ChaCha8
	n   int64
	err error
	sum hash.Hash
}

func newStream(n int64, err error) *stream {
	return &stream{rng: mrand.NewChaCha8([32]byte{1}), n: n, err: err, sum: sha256.New()}
}

func (s *stream) Read(p []byte) (int, error) {
	if s.n == 0 {
		if s.err != nil {
			return 0, s.err
		}
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), s.n)]
	s.rng.Read(p)
	s.sum.Write(p)
	s.n -= int64(len(p))
	return len(p), nil
}

// TestStreamedPut puts 50 MiB from a reader that can only be read and
// checks that the upload went in parts, that the heap never grew by
// anything near the data's size, and that the data reads back whole.
func TestStreamedPut(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	const size = 50 << 20
	src := newStream(size, nil)

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	key := uuid.NewString()
	n, err := s.Put(ctx, key, src)
	close(done)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	if n != size {
		t.Fatalf("put returned %d, want %d", n, size)
	}
	grew := int64(peak.Load()) - int64(base)
	t.Logf("heap in use grew by %d MiB at most during a %d MiB put", grew>>20, size>>20)
	if grew > 40<<20 {
		t.Errorf("heap in use grew by %d MiB during the put: the data is held in memory", grew>>20)
	}

	info, err := s.client.StatObject(ctx, s.bucket, s.prefix+key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(info.ETag, "-4") {
		t.Errorf("ETag %q, want one of a multipart upload in 4 parts of 16 MiB", info.ETag)
	}
	rc, err := s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h := sha256.New()
	if m, err := io.Copy(h, rc); err != nil || m != size {
		t.Fatalf("read back %d bytes (%v), want %d", m, err, size)
	}
	if !bytes.Equal(h.Sum(nil), src.sum.Sum(nil)) {
		t.Fatal("the data read back differs from what was put")
	}
}

// TestPartBoundaries puts data that ends exactly at and just past the
// end of a part, where the upload must decide whether another part
// follows.
func TestPartBoundaries(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	for _, size := range []int64{basePartSize - 1, basePartSize, basePartSize + 1, 2 * basePartSize} {
		key := uuid.NewString()
		src := newStream(size, nil)
		if n, err := s.Put(ctx, key, src); err != nil || n != size {
			t.Fatalf("put %d bytes: %d, %v", size, n, err)
		}
		rc, err := s.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		m, err := io.Copy(h, rc)
		rc.Close()
		if err != nil || m != size || !bytes.Equal(h.Sum(nil), src.sum.Sum(nil)) {
			t.Fatalf("%d bytes put: read back %d (%v), equal %v", size, m, err, bytes.Equal(h.Sum(nil), src.sum.Sum(nil)))
		}
	}
}

// TestFailedPutAborts checks that a put failing after it has sent parts,
// through its reader or its context, leaves neither an object nor an
// incomplete upload, and returns the reader's error.
func TestFailedPutAborts(t *testing.T) {
	s := newStore(t, nil)
	var keys []string
	// A truncated request body fails with io.ErrUnexpectedEOF: that is
	// not the end of the data.
	for _, cause := range []error{errors.New("client went away"), io.ErrUnexpectedEOF} {
		key := uuid.NewString()
		keys = append(keys, key)
		if _, err := s.Put(context.Background(), key, newStream(basePartSize+5<<20, cause)); !errors.Is(err, cause) {
			t.Fatalf("put: %v, want %v", err, cause)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	canceled := uuid.NewString()
	// The context ends while the second part is read: the first is sent.
	r := &cancelAfter{r: newStream(3*basePartSize, nil), n: basePartSize + 1<<20, cancel: cancel}
	if _, err := s.Put(ctx, canceled, r); !errors.Is(err, context.Canceled) {
		t.Fatalf("put with a canceled context: %v, want %v", err, context.Canceled)
	}

	for _, k := range append(keys, canceled) {
		if _, err := s.Open(context.Background(), k); cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
			t.Errorf("open %s after a failed put: %v, want ENOTFOUND", k, err)
		}
	}
	if left := incompleteUploads(t, s, append(keys, canceled)...); len(left) != 0 {
		t.Fatalf("failed puts left incomplete uploads of %v", left)
	}

}

// cancelAfter reads from r and calls cancel once n bytes are read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	if c.n -= k; c.n <= 0 {
		c.cancel()
	}
	return k, err
}

// TestPutTooLarge checks that data past the last allowed part is refused
// with ETOOLARGE, and the upload aborted.
func TestPutTooLarge(t *testing.T) {
	s := newStore(t, nil)
	s.maxParts = 2
	key := uuid.NewString()
	_, err := s.Put(context.Background(), key, newStream(2*basePartSize+1, nil))
	if cloudimage.ErrorCode(err) != cloudimage.ETOOLARGE {
		t.Fatalf("put of more than 2 parts: %v, want ETOOLARGE", err)
	}
	if _, err := s.Open(context.Background(), key); cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
		t.Errorf("open after a refused put: %v, want ENOTFOUND", err)
	}
	if left := incompleteUploads(t, s, key); len(left) != 0 {
		t.Fatalf("a refused put left incomplete uploads of %v", left)
	}
	if n, err := s.Put(context.Background(), key, newStream(2*basePartSize, nil)); err != nil || n != 2*basePartSize {
		t.Fatalf("put of exactly 2 parts: %d, %v", n, err)
	}
}

// counting records what the S3 client asks and how much data it reads.
type counting struct {
	mu     sync.Mutex
	gets   []string // Range header of each object GET
	read   atomic.Int64
	base   http.RoundTripper
	bucket string
}

func (c *counting) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodGet && req.URL.Query().Get("list-type") == "" && strings.Count(strings.Trim(req.URL.Path, "/"), "/") > 0 {
		c.mu.Lock()
		c.gets = append(c.gets, req.Header.Get("Range"))
		c.mu.Unlock()
	}
	resp, err := c.base.RoundTrip(req)
	if err == nil {
		resp.Body = countingBody{resp.Body, &c.read}
	}
	return resp, err
}

func (c *counting) reset() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.gets
	c.gets = nil
	c.read.Store(0)
	return g
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// TestRangeReads checks that seeking costs no transfer and that a read
// after a seek asks for the data from there on only, both directly and
// as httpapi serves a Range request with http.ServeContent.
func TestRangeReads(t *testing.T) {
	tr := &counting{base: http.DefaultTransport.(*http.Transport).Clone()}
	s := newStore(t, tr)
	ctx := context.Background()
	const size = 20 << 20
	data := make([]byte, size)
	rand.Read(data)
	key := uuid.NewString()
	if _, err := s.Put(ctx, key, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}

	tr.reset()
	rc, err := s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if end, err := rc.Seek(0, io.SeekEnd); err != nil || end != size {
		t.Fatalf("seek to the end: %d, %v", end, err)
	}
	if _, err := rc.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if gets := tr.reset(); len(gets) != 0 {
		t.Fatalf("open and seeks fetched data: %q", gets)
	}

	check := func(off int64, n int) {
		t.Helper()
		if _, err := rc.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, n)
		if _, err := io.ReadFull(rc, got); err != nil {
			t.Fatalf("read %d at %d: %v", n, off, err)
		}
		if !bytes.Equal(got, data[off:off+int64(n)]) {
			t.Fatalf("%d bytes at %d differ", n, off)
		}
	}
	check(size-100, 100)
	check(12345, 1000)
	check(12345+1000, 500) // goes on where the last read stopped
	check(7<<20, 10)
	if gets := tr.reset(); fmt.Sprint(gets) != fmt.Sprint([]string{"bytes=20971420-", "bytes=12345-", "bytes=7340032-"}) {
		t.Errorf("object GETs with ranges %q, want one from each position sought to", gets)
	}
	if _, err := rc.Seek(size, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if n, err := rc.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("read at the end: %d, %v, want 0, EOF", n, err)
	}
	if _, err := rc.Seek(-1, io.SeekStart); err == nil {
		t.Fatal("seek to -1 succeeded")
	}

	// As httpapi's downloadImage does it.
	tr.reset()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Range", "bytes=1000-1999")
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Type", "application/octet-stream") // or ServeContent sniffs the start
	if _, err := rc.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	http.ServeContent(rec, req, "", time.Time{}, rc)
	if rec.Code != http.StatusPartialContent || !bytes.Equal(rec.Body.Bytes(), data[1000:2000]) {
		t.Fatalf("ServeContent of a range: %d, %d bytes, equal %v", rec.Code, rec.Body.Len(), bytes.Equal(rec.Body.Bytes(), data[1000:2000]))
	}
	if got := rec.Header().Get("Content-Range"); got != fmt.Sprintf("bytes 1000-1999/%d", size) {
		t.Errorf("Content-Range %q", got)
	}
	if read := tr.read.Load(); read > 1<<20 {
		t.Errorf("serving 1000 bytes read %d bytes from the server", read)
	}
	if gets := tr.reset(); len(gets) != 1 || gets[0] != "bytes=1000-" {
		t.Errorf("serving a range made GETs %q, want one from the range's start", gets)
	}
}

// TestMissing checks that a missing object is ENOTFOUND wherever it is
// met: at Open, at Delete, and at a read after it was deleted.
func TestMissing(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	if _, err := s.Open(ctx, uuid.NewString()); cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
		t.Errorf("open of a missing key: %v, want ENOTFOUND", err)
	}
	if err := s.Delete(ctx, uuid.NewString()); cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
		t.Errorf("delete of a missing key: %v, want ENOTFOUND", err)
	}
	key := uuid.NewString()
	if _, err := s.Put(ctx, key, strings.NewReader("soon gone")); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := s.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(rc); cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
		t.Errorf("read of a deleted key: %v, want ENOTFOUND", err)
	}
	if err := s.Delete(ctx, key); cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
		t.Errorf("second delete: %v, want ENOTFOUND", err)
	}
}

// TestReplacedWhileRead checks that a reader does not mix the data of
// two versions: once the object is replaced, its reads fail.
func TestReplacedWhileRead(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	key := uuid.NewString()
	if _, err := s.Put(ctx, key, strings.NewReader("first version")); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := s.Put(ctx, key, strings.NewReader("second version")); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(rc); err == nil {
		t.Fatalf("read of a replaced object gave %q, want an error", b)
	}
}

// TestListSkipsOthers checks that List yields only the objects of the
// store's prefix that Delete can reach by their name.
func TestListSkipsOthers(t *testing.T) {
	s := newStore(t, nil)
	other := newStore(t, nil)
	ctx := context.Background()
	if _, err := s.Put(ctx, "abcdef", strings.NewReader("blob")); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Put(ctx, "ghijkl", strings.NewReader("another store's")); err != nil {
		t.Fatal(err)
	}
	for _, stray := range []string{"ab/zzzz", ".hidden", "xy"} {
		if _, err := s.client.PutObject(ctx, s.bucket, s.prefix+stray, strings.NewReader("stray"), 5, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	for info, err := range s.List(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, info.Key)
	}
	if fmt.Sprint(keys) != "[abcdef]" {
		t.Fatalf("List yields %v, want only [abcdef]", keys)
	}
}

// TestListCanceledMidway checks that a listing whose context ends part
// way says so with an error rather than end as if it were complete,
// whether it ends within a page of the server's listing or between two.
func TestListCanceledMidway(t *testing.T) {
	for _, pageSize := range []int{0, 1} {
		t.Run(fmt.Sprint("page size ", pageSize), func(t *testing.T) { testListCanceled(t, pageSize) })
	}
}

func testListCanceled(t *testing.T, pageSize int) {
	s := newStore(t, nil)
	s.pageSize = pageSize
	for range 20 {
		if _, err := s.Put(context.Background(), uuid.NewString(), strings.NewReader("blob")); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	var listErr error
	for _, err := range s.List(ctx) {
		if err != nil {
			listErr = err
			break
		}
		if n++; n == 1 {
			cancel()
		}
	}
	if n != 1 || !errors.Is(listErr, context.Canceled) {
		t.Fatalf("listing canceled after the first of 20 blobs: %d yielded, error %v, want 1 and %v", n, listErr, context.Canceled)
	}
}

func TestInvalidKeys(t *testing.T) {
	s := newStore(t, nil)
	ctx := context.Background()
	for _, key := range []string{"", "ab", "../../etc/passwd", "a/bcd", `a\bcd`, ".staging"} {
		if _, err := s.Put(ctx, key, bytes.NewReader(nil)); cloudimage.ErrorCode(err) != cloudimage.EINVALID {
			t.Errorf("put %q: got %v, want EINVALID", key, err)
		}
		if _, err := s.Open(ctx, key); cloudimage.ErrorCode(err) != cloudimage.EINVALID {
			t.Errorf("open %q: got %v, want EINVALID", key, err)
		}
		if err := s.Delete(ctx, key); cloudimage.ErrorCode(err) != cloudimage.EINVALID {
			t.Errorf("delete %q: got %v, want EINVALID", key, err)
		}
	}
}

// TestPing checks that Open and Ping succeed on a bucket that exists and
// fail on one that does not.
func TestPing(t *testing.T) {
	s := newStore(t, nil)
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	u, _ := url.Parse(serverURL(t))
	u.Host = "no-such-bucket-" + strings.ToLower(uuid.NewString()[:8])
	if _, err := Open(context.Background(), u.String()); err == nil || !strings.Contains(err.Error(), "no such bucket") {
		t.Fatalf("Open of a missing bucket: %v, want no such bucket", err)
	}
}

// TestParseURL checks the URLs Open accepts and what it makes of them;
// it needs no server.
func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want config
	}{
		{"s3://images", config{bucket: "images", endpoint: "s3.amazonaws.com", secure: true}},
		{"s3://images/a/b/?region=eu-west-1", config{bucket: "images", prefix: "a/b/", endpoint: "s3.amazonaws.com", region: "eu-west-1", secure: true}},
		{"s3://images?endpoint=127.0.0.1:9000&region=us-east-1&insecure=true", config{bucket: "images", endpoint: "127.0.0.1:9000", region: "us-east-1"}},
		{"s3://images?insecure=false", config{bucket: "images", endpoint: "s3.amazonaws.com", secure: true}},
	} {
		got, err := parseURL(tc.raw)
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v, %v, want %+v", tc.raw, got, err, tc.want)
		}
	}
	for _, raw := range []string{
		"file:///var/lib/images",
		"s3://",
		"s3://ab",
		"s3://images?endpoint=x&secure=true",
		"s3://images?insecure=yes",
		"s3://key:secret@images",
		"%zz",
	} {
		if _, err := parseURL(raw); err == nil {
			t.Errorf("%s: accepted", raw)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error %q shows the secret", raw, err)
		}
	}
}

// TestNoCredentials checks that Open refuses to run without credentials
// rather than send anonymous requests.
func TestNoCredentials(t *testing.T) {
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY",
		"AWS_SESSION_TOKEN", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	_, err := Open(context.Background(), "s3://images?endpoint=127.0.0.1:1&insecure=true")
	if err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Fatalf("Open without credentials: %v, want an error naming AWS_ACCESS_KEY_ID", err)
	}
}

// TestPartSizes checks the part schedule against its documentation and
// that the largest blob is past the domain's default image size cap.
func TestPartSizes(t *testing.T) {
	for n, want := range map[int]int{1: 16 << 20, 625: 16 << 20, 626: 32 << 20, 1250: 32 << 20, 1251: 48 << 20, 10000: 256 << 20} {
		if got := partSize(n); got != want {
			t.Errorf("partSize(%d) = %d MiB, want %d MiB", n, got>>20, want>>20)
		}
	}
	var total int64
	largest := 0
	for n := 1; n <= maxParts; n++ {
		total += int64(partSize(n))
		largest = max(largest, partSize(n))
		if partSize(n) < 5<<20 || partSize(n) > 5<<30 {
			t.Fatalf("part %d: %d bytes, outside S3's limits", n, partSize(n))
		}
	}
	if total != MaxSize {
		t.Errorf("parts add up to %d bytes, MaxSize is %d", total, MaxSize)
	}
	if MaxSize < cloudimage.DefaultMaxImageSize {
		t.Errorf("MaxSize %d is below the default image size cap %d", MaxSize, cloudimage.DefaultMaxImageSize)
	}
	if largest != 256<<20 {
		t.Errorf("largest part %d MiB, documented as 256 MiB", largest>>20)
	}
}

// TestS3Errors checks how errors of the S3 client are classified; it
// needs no server.
func TestS3Errors(t *testing.T) {
	s := &Store{bucket: "images", where: "s3://images/ at example.com"}
	for code, want := range map[string]string{
		"NoSuchKey":         cloudimage.ENOTFOUND,
		"XMinioStorageFull": cloudimage.ETOOLARGE,
		"QuotaExceeded":     cloudimage.ETOOLARGE,
		"EntityTooLarge":    cloudimage.ETOOLARGE,
		"AccessDenied":      cloudimage.EINTERNAL,
		"NoSuchBucket":      cloudimage.EINTERNAL,
	} {
		cause := minio.ErrorResponse{Code: code, Message: "secret detail"}
		err := s.s3Error("put", "abcdef", cause)
		if got := cloudimage.ErrorCode(err); got != want {
			t.Errorf("%s: code %s, want %s", code, got, want)
		}
		if r := (minio.ErrorResponse{}); !errors.As(err, &r) || r.Code != code {
			t.Errorf("%s: cause not kept in %v", code, err)
		}
		if strings.Contains(cloudimage.ErrorMessage(err), "secret") {
			t.Errorf("%s: message %q shows the server's detail", code, cloudimage.ErrorMessage(err))
		}
	}
}
