package main

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The load test: listers, uploaders and deleters run side by side against
// one server for at least a minute, and nothing acknowledged may be lost.

// loadDuration is how long the load runs: CLOUDIMAGE_LOAD_DURATION, a
// minute by default, and never less than a minute when CI=true.
func loadDuration(t *testing.T) time.Duration {
	t.Helper()
	d := time.Minute
	if v := os.Getenv("CLOUDIMAGE_LOAD_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d <= 0 {
			t.Fatalf("CLOUDIMAGE_LOAD_DURATION=%q: want a positive duration", v)
		}
	}
	if os.Getenv("CI") == "true" && d < time.Minute {
		d = time.Minute
	}
	return d
}

// The workers of each kind: a few, for two cores and the race detector.
const (
	loadV2Listers  = 2
	loadV1Listers  = 1
	loadUploaders  = 3
	loadDeleters   = 1
	loadPageSize   = 7
	loadMaxImage   = 64 << 10
	loadReportedAt = 5 // failures kept in full; the rest are counted

	// loadWalkTimeout bounds one walk through every page, so that pages
	// that lead back to each other fail the test instead of hanging it.
	loadWalkTimeout = 2 * waitTimeout
)

// loadRun is the shared state of one load test.
type loadRun struct {
	t      *testing.T
	url    string
	appkey string
	token  string
	http   *http.Client

	ops         [7]atomic.Int64 // by opKind
	walkImages  atomic.Int64    // images seen by all walks
	longestWalk atomic.Int64
	failures    atomic.Int64
	failMu      sync.Mutex // guards reported, apart from mu: fail is called under mu
	reported    []string

	mu       sync.Mutex
	acked    map[string]string // sha512 hex of every acknowledged upload, by image ID
	ackOrder []string          // acknowledged IDs, in the order of acknowledgement
	toDelete []string          // acknowledged uploads chosen for deletion, not yet taken
	deleting map[string]bool   // whose delete was sent: they may be gone at any moment
	deleted  map[string]bool   // whose delete was acknowledged
}

type opKind int

const (
	opCreate opKind = iota
	opUpload
	opDelete
	opV2Page
	opV1Page
	opV2Walk
	opV1Walk
)

var opNames = [...]string{"creates", "uploads", "deletes", "v2 pages", "v1.0 pages", "v2 walks", "v1.0 walks"}

// fail records a broken promise; the test fails at the end with the first
// few in full, so that a flood of them does not drown the log.
func (l *loadRun) fail(format string, args ...any) {
	l.failures.Add(1)
	l.failMu.Lock()
	defer l.failMu.Unlock()
	if len(l.reported) < loadReportedAt {
		l.reported = append(l.reported, fmt.Sprintf(format, args...))
	}
}

// call sends one request and returns its status and body; a 5xx, or no
// answer at all, is a failure.
func (l *loadRun) call(method, path string, body []byte, header ...string) (int, []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, l.url+path, r)
	if err != nil {
		l.fail("%s %s: %v", method, path, err)
		return 0, nil
	}
	req.Header.Set("X-Auth-Token", l.token)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := l.http.Do(req)
	if err != nil {
		l.fail("%s %s: %v", method, path, err)
		return 0, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		l.fail("%s %s: read body: %v", method, path, err)
		return 0, nil
	}
	if resp.StatusCode >= 500 {
		l.fail("%s %s: %d %q", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, b
}

// nhnCall sends a v1.0 request and reports whether it succeeded; a failed
// envelope is a failure: none is expected under this load.
func (l *loadRun) nhnCall(method, path string, out any) bool {
	status, b := l.call(method, path, nil)
	if status != http.StatusOK {
		if status != 0 {
			l.fail("%s %s: HTTP %d, want 200", method, path, status)
		}
		return false
	}
	var env struct {
		Header struct {
			IsSuccessful bool   `json:"isSuccessful"`
			ResultCode   int    `json:"resultCode"`
			Message      string `json:"resultMessage"`
		} `json:"header"`
	}
	if err := json.Unmarshal(b, &env); err != nil || !env.Header.IsSuccessful {
		l.fail("%s %s: %d %q (%v)", method, path, env.Header.ResultCode, env.Header.Message, err)
		return false
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			l.fail("%s %s: %v", method, path, err)
			return false
		}
	}
	return true
}

// upload creates an image, uploads random data to it, and records the
// data's hash once the upload is acknowledged.
func (l *loadRun) upload(rng *rand.Rand) {
	status, b := l.call("POST", "/v2/images", []byte(`{"name": "load", "disk_format": "raw",
		"container_format": "bare", "os_type": "linux", "nhncloud_allow_download": "true"}`),
		"Content-Type", "application/json")
	l.ops[opCreate].Add(1)
	var img struct{ ID string }
	if status != http.StatusCreated || json.Unmarshal(b, &img) != nil {
		if status != 0 {
			l.fail("POST /v2/images: %d %q, want 201", status, b)
		}
		return
	}
	data := make([]byte, rng.IntN(loadMaxImage+1))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	status, b = l.call("PUT", "/v2/images/"+img.ID+"/file", data, "Content-Type", "application/octet-stream")
	l.ops[opUpload].Add(1)
	if status != http.StatusNoContent {
		if status != 0 {
			l.fail("PUT /v2/images/%s/file: %d %q, want 204", img.ID, status, b)
		}
		return
	}
	sum := sha512.Sum512(data)
	l.mu.Lock()
	l.acked[img.ID] = hex.EncodeToString(sum[:])
	l.ackOrder = append(l.ackOrder, img.ID)
	if rng.IntN(2) == 0 {
		l.toDelete = append(l.toDelete, img.ID)
	}
	l.mu.Unlock()
}

// deleteOne deletes one acknowledged upload chosen for deletion, through
// v2 or v1.0, and checks that it is gone at once. It reports whether
// there was one to delete.
func (l *loadRun) deleteOne(rng *rand.Rand) bool {
	l.mu.Lock()
	if len(l.toDelete) == 0 {
		l.mu.Unlock()
		return false
	}
	i := rng.IntN(len(l.toDelete))
	id := l.toDelete[i]
	l.toDelete = slices.Delete(l.toDelete, i, i+1)
	l.deleting[id] = true
	l.mu.Unlock()

	ok := false
	if rng.IntN(2) == 0 {
		status, b := l.call("DELETE", "/v2/images/"+id, nil)
		if ok = status == http.StatusNoContent; !ok && status != 0 {
			l.fail("DELETE /v2/images/%s: %d %q, want 204", id, status, b)
		}
	} else {
		ok = l.nhnCall("DELETE", "/v1.0/appkeys/"+l.appkey+"/images?id="+id, nil)
	}
	l.ops[opDelete].Add(1)
	if !ok {
		return true
	}
	l.mu.Lock()
	l.deleted[id] = true
	l.mu.Unlock()
	if status, b := l.call("GET", "/v2/images/"+id, nil); status != http.StatusNotFound {
		l.fail("GET /v2/images/%s after its delete: %d %q, want 404", id, status, b)
	}
	return true
}

// walkV2 walks every page of the v2 list through its next links and
// returns the IDs in the order listed, or nil if a page failed.
func (l *loadRun) walkV2() []string {
	var ids []string
	path := fmt.Sprintf("/v2/images?limit=%d", loadPageSize)
	for end := time.Now().Add(loadWalkTimeout); path != ""; {
		if time.Now().After(end) {
			l.fail("a v2 walk did not end within %s: %d images so far", loadWalkTimeout, len(ids))
			return nil
		}
		status, b := l.call("GET", path, nil)
		l.ops[opV2Page].Add(1)
		var page struct {
			Images []struct{ ID string }
			Next   string
		}
		if status != http.StatusOK || json.Unmarshal(b, &page) != nil {
			if status != 0 {
				l.fail("GET %s: %d %q, want 200", path, status, b)
			}
			return nil
		}
		for _, img := range page.Images {
			ids = append(ids, img.ID)
		}
		path = page.Next
	}
	return ids
}

// walkV1 walks every page of the v1.0 list with limit and marker.
func (l *loadRun) walkV1() []string {
	var ids []string
	q := url.Values{"limit": {fmt.Sprint(loadPageSize)}}
	for end := time.Now().Add(loadWalkTimeout); ; {
		if time.Now().After(end) {
			l.fail("a v1.0 walk did not end within %s: %d images so far", loadWalkTimeout, len(ids))
			return nil
		}
		var page struct{ Images []struct{ ID string } }
		path := "/v1.0/appkeys/" + l.appkey + "/images?" + q.Encode()
		ok := l.nhnCall("GET", path, &page)
		l.ops[opV1Page].Add(1)
		if !ok {
			return nil
		}
		for _, img := range page.Images {
			ids = append(ids, img.ID)
		}
		if len(page.Images) < loadPageSize {
			return ids
		}
		q.Set("marker", page.Images[len(page.Images)-1].ID)
	}
}

// checkWalk checks one walk: no image twice, and every upload that was
// acknowledged before the walk began and whose delete was not sent before
// it ended is in it.
func (l *loadRun) checkWalk(face string, op opKind, walk func() []string) {
	l.mu.Lock()
	before := slices.Clone(l.ackOrder)
	l.mu.Unlock()
	ids := walk()
	if ids == nil {
		return
	}
	l.ops[op].Add(1)
	l.walkImages.Add(int64(len(ids)))
	if n := int64(len(ids)); n > l.longestWalk.Load() {
		l.longestWalk.Store(n)
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			l.fail("%s walk of %d images lists %s twice", face, len(ids), id)
		}
		seen[id] = true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range before {
		if !seen[id] && !l.deleting[id] {
			l.fail("%s walk of %d images lacks %s, acknowledged before it began and not deleted", face, len(ids), id)
		}
	}
}

// TestLoad runs concurrent listers (v2 and v1.0, walking every page),
// uploaders and deleters against one server for loadDuration, then
// checks that nothing was lost: no 5xx and no error logged, no walk that
// lists an image twice or misses one it must hold, every acknowledged
// upload that was not deleted listed and downloadable byte for byte, and
// every acknowledged delete gone.
func TestLoad(t *testing.T) {
	t.Parallel()
	d := loadDuration(t)
	s := startBootstrapped(t)
	c := s.adminClient(t)
	l := &loadRun{
		t: t, url: s.URL, appkey: s.AppKey, token: c.Token,
		http:     &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}},
		acked:    map[string]string{},
		deleting: map[string]bool{},
		deleted:  map[string]bool{},
	}
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	worker := func(n int, op func(rng *rand.Rand)) {
		for range n {
			rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
			wg.Go(func() {
				for time.Now().Before(deadline) {
					op(rng)
				}
			})
		}
	}
	worker(loadV2Listers, func(*rand.Rand) { l.checkWalk("v2", opV2Walk, l.walkV2) })
	worker(loadV1Listers, func(*rand.Rand) { l.checkWalk("v1.0", opV1Walk, l.walkV1) })
	worker(loadUploaders, l.upload)
	worker(loadDeleters, func(rng *rand.Rand) {
		if !l.deleteOne(rng) {
			time.Sleep(10 * time.Millisecond)
		}
	})
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(d + loadWalkTimeout + waitTimeout):
		t.Fatalf("the load did not stop within %s of its end", loadWalkTimeout+waitTimeout)
	}

	var counts []string
	for k, name := range opNames {
		counts = append(counts, fmt.Sprintf("%d %s", l.ops[k].Load(), name))
	}
	t.Logf("load for %s: %s; walks saw %d images, the longest %d", d, strings.Join(counts, ", "),
		l.walkImages.Load(), l.longestWalk.Load())
	l.checkEnd()
	s.Stop(t)
	for _, line := range strings.Split(s.Stderr.String(), "\n") {
		if strings.Contains(line, "level=ERROR") {
			l.fail("the server logged an error: %s", line)
		}
	}
	if n := l.failures.Load(); n > 0 {
		t.Errorf("%d failures under load; the first:\n%s", n, strings.Join(l.reported, "\n"))
	}
}

// checkEnd checks, once the load has stopped, that both faces list every
// acknowledged upload that was not deleted and none that was, that each
// of those downloads byte for byte as uploaded, and that every deleted
// image is 404.
func (l *loadRun) checkEnd() {
	alive := map[string]string{}
	for id, sum := range l.acked {
		if !l.deleted[id] && !l.deleting[id] {
			alive[id] = sum
		}
	}
	l.t.Logf("at the end: %d acknowledged uploads, %d deleted, %d to check",
		len(l.acked), len(l.deleted), len(alive))
	for face, walk := range map[string]func() []string{"v2": l.walkV2, "v1.0": l.walkV1} {
		listed := map[string]bool{}
		for _, id := range walk() {
			listed[id] = true
		}
		for id := range alive {
			if !listed[id] {
				l.fail("the final %s walk lacks acknowledged upload %s", face, id)
			}
		}
		for id := range l.deleted {
			if listed[id] {
				l.fail("the final %s walk lists %s, whose delete was acknowledged", face, id)
			}
		}
	}

	ids := make(chan string)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for id := range ids {
				l.checkImage(id, alive[id], l.deleted[id])
			}
		})
	}
	for id := range alive {
		ids <- id
	}
	for id := range l.deleted {
		ids <- id
	}
	close(ids)
	wg.Wait()
}

// checkImage checks one image at the end: a deleted one is 404 and has no
// data; any other is active, and its data and os_hash_value are those of
// what was uploaded.
func (l *loadRun) checkImage(id, sum string, deleted bool) {
	status, b := l.call("GET", "/v2/images/"+id, nil)
	if deleted {
		if status != http.StatusNotFound {
			l.fail("GET /v2/images/%s, deleted: %d %q, want 404", id, status, b)
		}
		if status, _ := l.call("GET", "/v2/images/"+id+"/file", nil); status != http.StatusNotFound {
			l.fail("GET /v2/images/%s/file, deleted: %d, want 404", id, status)
		}
		return
	}
	var img struct {
		Status    string
		HashValue string `json:"os_hash_value"`
	}
	if status != http.StatusOK || json.Unmarshal(b, &img) != nil {
		l.fail("GET /v2/images/%s: %d %q, want 200", id, status, b)
		return
	}
	if img.Status != "active" || img.HashValue != sum {
		l.fail("image %s is %s with os_hash_value %s, want active with %s", id, img.Status, img.HashValue, sum)
	}
	status, data := l.call("GET", "/v2/images/"+id+"/file", nil)
	if got := sha512.Sum512(data); status != http.StatusOK || hex.EncodeToString(got[:]) != sum {
		l.fail("GET /v2/images/%s/file: %d, %d bytes that are not those uploaded", id, status, len(data))
	}
}
