//go:build !windows

package main

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/client"
)

// TestKillDuringUploads runs the real binary as a child process, kills it
// with SIGKILL while concurrent clients upload, delete and create images,
// at a different moment in each cycle, and restarts it on the same data
// directory. After every start it checks what crash recovery promises:
// no image is left saving; every acknowledged upload is active with the
// size and sha512 that were sent and downloads byte-identical; every
// active image's blob file matches its record; no blob file is left that
// no image references, and nothing is left in staging; an acknowledged
// delete stays deleted; and an interrupted upload can be retried.
func TestKillDuringUploads(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	dir := t.TempDir()
	w := &crashWorkload{
		uploads: map[string]sentData{}, acked: map[string]bool{},
		deleting: map[string]bool{}, deleted: map[string]bool{},
	}
	// Each cycle kills the server at another moment.
	kills := []struct {
		name     string
		when     killPoint
		creating bool // most images stay empty, uploads are small
	}{
		{"while most uploaders are mid-stream", killMidStream, false},
		{"right after an upload is acknowledged", killAfterAck, false},
		{"during creates and deletes", killDuringCreates, true},
		{"at a random moment", killAtRandom, false},
	}
	var appKey string
	var token string
	for cycle, k := range kills {
		s := startChild(t, bin, dir)
		if cycle == 0 {
			// Standard output comes through its own pipe: it may lag
			// behind the listening line.
			appKey = s.stdout.waitFor(t, appKeyRE, s.exited)[1]
		}
		c := testClient(s.url)
		c.AppKey, c.Username, c.Password, c.Token = appKey, "admin", testAdminPassword, token
		if token == "" {
			if _, err := c.IssueToken(t.Context()); err != nil {
				t.Fatalf("issue a token: %v", err)
			}
			token = c.Token
		}
		w.check(t, c, dir)
		if t.Failed() {
			t.Fatalf("invariants broken before cycle %d", cycle)
		}
		w.run(t, c, s, k.when, k.creating)
		t.Logf("cycle %d: killed %s; in all %d creates, %d uploads acknowledged (%d of them retries "+
			"of interrupted ones), %d deletes", cycle, k.name, w.creates.Load(), w.acks.Load(),
			w.retried.Load(), len(w.deleted))
	}

	s := startChild(t, bin, dir)
	c := testClient(s.url)
	c.AppKey, c.Token = appKey, token
	w.check(t, c, dir)
	if len(w.acked) == 0 || len(w.deleted) == 0 {
		t.Errorf("%d uploads and %d deletes acknowledged: the workload did not do its work",
			len(w.acked), len(w.deleted))
	}
	// An upload the last kill interrupted can be retried.
	if len(w.queued) > 0 {
		id := w.queued[0]
		u := newUpload(rand.New(rand.NewPCG(1, 2)))
		if err := c.UploadImage(t.Context(), id, u.data(), u.size); err != nil {
			t.Fatalf("retry the upload of %s: %v", id, err)
		}
		img, err := c.GetImage(t.Context(), id)
		if err != nil || img.Status != "active" || deref(img.HashValue) != u.sum {
			t.Errorf("retried upload of %s: %v %v, want active with the data's sha512", id, img, err)
		}
		checkSentDownload(t, c, id, u)
	}
	// A clean stop after all this still works.
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.exited:
		if s.err != nil {
			t.Errorf("serve after an interrupt: %v\n%s", s.err, s.stderr)
		}
	case <-time.After(waitTimeout):
		t.Error("serve did not stop on an interrupt")
	}
}

// buildBinary builds the program into a temporary directory, with the
// race detector when the tests have it.
func buildBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no go command on PATH to build the binary with")
		}
		t.Skip("no go command on PATH to build the binary with")
	}
	bin := filepath.Join(t.TempDir(), "cloudimage")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		// The same flags as the test binary reuse its build cache.
		args = append(args, "-race")
	}
	if out, err := exec.Command(goTool, append(args, ".")...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// child is the server running as a child process.
type child struct {
	cmd            *exec.Cmd
	url            string
	stdout, stderr *syncBuffer
	exited         chan struct{}
	err            error // of the process, once exited is closed
}

// startChild starts "serve" on dataDir on a free port of 127.0.0.1, with
// the orphan sweep's grace at zero so that the start removes every
// unreferenced blob, and waits until it listens. It is killed when the
// test ends, if it still runs.
func startChild(t *testing.T, bin, dataDir string) *child {
	t.Helper()
	s := &child{stdout: newSyncBuffer(), stderr: newSyncBuffer(), exited: make(chan struct{})}
	s.cmd = exec.Command(bin, "serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0",
		"--orphan-grace", "0s")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CLOUDIMAGE_") {
			s.cmd.Env = append(s.cmd.Env, kv)
		}
	}
	s.cmd.Env = append(s.cmd.Env, "CLOUDIMAGE_ADMIN_PASSWORD="+testAdminPassword)
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() { s.kill(t) })
	s.url = "http://" + s.stderr.waitFor(t, listeningRE, s.exited)[1]
	return s
}

// kill kills the process with SIGKILL and waits until it is gone.
func (s *child) kill(t *testing.T) {
	t.Helper()
	select {
	case <-s.exited:
		return
	default:
	}
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("kill: %v", err)
	}
	select {
	case <-s.exited:
	case <-time.After(waitTimeout):
		t.Errorf("the killed server did not exit")
	}
}

// sentData is what one upload sent: its data is regenerated from the seed.
type sentData struct {
	seed [32]byte
	size int64
	sum  string // sha512 hex
}

func (u sentData) data() io.Reader {
	return io.LimitReader(rand.NewChaCha8(u.seed), u.size)
}

func newUpload(r *rand.Rand) sentData {
	u := sentData{size: 256<<10 + r.Int64N(2<<20)}
	for i := 0; i < len(u.seed); i += 8 {
		binary.LittleEndian.PutUint64(u.seed[i:], r.Uint64())
	}
	h := sha512.New()
	io.Copy(h, u.data())
	u.sum = hex.EncodeToString(h.Sum(nil))
	return u
}

// killPoint decides when a cycle's server is killed: it is asked after
// every step of the workload, and the kill comes as soon as it says.
type killPoint func(w *crashWorkload, since time.Duration, justAcked bool) bool

func killMidStream(w *crashWorkload, since time.Duration, _ bool) bool {
	mid := 0
	for i := range w.sent {
		if w.sent[i].Load() > 256<<10 {
			mid++
		}
	}
	return w.cycleAcks.Load() >= 3 && mid >= crashWorkers/2+1
}

func killAfterAck(w *crashWorkload, _ time.Duration, justAcked bool) bool {
	return justAcked && w.cycleAcks.Load() >= 3
}

func killDuringCreates(w *crashWorkload, _ time.Duration, _ bool) bool {
	return w.cycleCreates.Load() >= 40
}

func killAtRandom(w *crashWorkload, since time.Duration, _ bool) bool {
	return since >= w.randomKill
}

// crashWorkers is how many clients work at once.
const crashWorkers = 6

// crashWorkload is what the clients did, across every cycle.
type crashWorkload struct {
	mu       sync.Mutex
	uploads  map[string]sentData // the last upload attempted, by image
	acked    map[string]bool     // uploads answered 204
	deleting map[string]bool     // deletes sent but not answered
	deleted  map[string]bool     // deletes answered
	queued   []string            // images found queued, to retry

	creates      atomic.Int64
	acks         atomic.Int64 // uploads answered 204, in all
	retried      atomic.Int64 // of them, to images an earlier kill left queued
	cycleCreates atomic.Int64
	cycleAcks    atomic.Int64
	sent         [crashWorkers]atomic.Int64 // bytes of the current body, by worker
	randomKill   time.Duration
}

// run runs the clients against s until when says, then kills s.
func (w *crashWorkload) run(t *testing.T, c *client.Client, s *child, when killPoint, creating bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	w.cycleCreates.Store(0)
	w.cycleAcks.Store(0)
	w.randomKill = time.Duration(200+rand.IntN(1000)) * time.Millisecond
	start := time.Now()
	var killed atomic.Bool
	var killOnce sync.Once
	kill := func() {
		killOnce.Do(func() {
			killed.Store(true)
			s.kill(t)
			cancel()
		})
	}
	step := func(justAcked bool) {
		if when(w, time.Since(start), justAcked) {
			kill()
		}
	}
	var wg sync.WaitGroup
	for i := range crashWorkers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(rand.Uint64(), uint64(i)))
			for ctx.Err() == nil {
				err := w.step(ctx, c, r, i, creating, step)
				if err != nil && !killed.Load() {
					t.Errorf("worker %d before the kill: %v", i, err)
					kill()
				}
			}
		})
	}
	watch := time.NewTicker(5 * time.Millisecond)
	defer watch.Stop()
	deadline := time.After(20 * time.Second)
	for !killed.Load() {
		select {
		case <-watch.C:
			step(false)
		case <-deadline:
			t.Errorf("the kill point was not reached within 20s")
			kill()
		}
	}
	wg.Wait()
}

// step does one thing a client does: retry an upload the last crash
// interrupted, or create an image and upload to it; and now and then
// delete an image whose upload was acknowledged. With creating, most
// images stay empty and uploads are small.
func (w *crashWorkload) step(ctx context.Context, c *client.Client, r *rand.Rand, worker int,
	creating bool, step func(bool)) error {
	w.mu.Lock()
	var id string
	if n := len(w.queued); n > 0 {
		id, w.queued = w.queued[n-1], w.queued[:n-1]
	}
	w.mu.Unlock()
	retry := id != ""
	if id == "" {
		img, err := c.CreateImage(ctx, map[string]any{
			"name": "crash", "disk_format": "raw", "container_format": "bare",
			"os_type": "linux", "nhncloud_allow_download": "true",
		})
		if err != nil {
			return fmt.Errorf("create: %w", err)
		}
		w.creates.Add(1)
		w.cycleCreates.Add(1)
		step(false)
		id = img.ID
		if creating && r.IntN(3) != 0 {
			return nil
		}
	}
	u := newUpload(r)
	if creating {
		u = sentData{seed: u.seed, size: 1 + r.Int64N(64<<10)}
		h := sha512.New()
		io.Copy(h, u.data())
		u.sum = hex.EncodeToString(h.Sum(nil))
	}
	w.mu.Lock()
	w.uploads[id] = u
	w.mu.Unlock()
	body := &slowReader{ctx: ctx, r: u.data(), sent: &w.sent[worker]}
	err := c.UploadImage(ctx, id, body, u.size)
	w.sent[worker].Store(0)
	if err != nil {
		return fmt.Errorf("upload %s: %w", id, err)
	}
	w.mu.Lock()
	w.acked[id] = true
	w.mu.Unlock()
	w.cycleAcks.Add(1)
	w.acks.Add(1)
	if retry {
		w.retried.Add(1)
	}
	step(true)

	if r.IntN(4) != 0 {
		return nil
	}
	w.mu.Lock()
	w.deleting[id] = true
	w.mu.Unlock()
	if err := c.DeleteImage(ctx, id); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	w.mu.Lock()
	delete(w.deleting, id)
	delete(w.acked, id)
	delete(w.uploads, id)
	w.deleted[id] = true
	w.mu.Unlock()
	step(false)
	return nil
}

// slowReader sends its data in small chunks with pauses, so that a kill
// finds bodies part way through, and counts what it has sent.
type slowReader struct {
	ctx  context.Context
	r    io.Reader
	sent *atomic.Int64
}

func (s *slowReader) Read(p []byte) (int, error) {
	select {
	case <-s.ctx.Done():
		return 0, s.ctx.Err()
	case <-time.After(2 * time.Millisecond):
	}
	n, err := s.r.Read(p[:min(len(p), 32<<10)])
	s.sent.Add(int64(n))
	return n, err
}

// check verifies every crash-recovery invariant against a freshly started
// server, and queues the images whose upload was interrupted for retry.
func (w *crashWorkload) check(t *testing.T, c *client.Client, dataDir string) {
	t.Helper()
	ctx := t.Context()
	w.mu.Lock()
	defer w.mu.Unlock()
	listed, err := c.ListImages(ctx, client.ListOptions{})
	if err != nil {
		t.Fatalf("list images: %v", err)
	}
	withData := map[string]bool{} // images whose status keeps a blob
	seen := map[string]bool{}
	w.queued = w.queued[:0]
	for _, li := range listed {
		seen[li.ID] = true
		img, err := c.GetImage(ctx, li.ID)
		if err != nil {
			t.Fatalf("get image %s: %v", li.ID, err)
		}
		u, sent := w.uploads[img.ID]
		switch img.Status {
		case string(cloudimage.StatusActive):
			withData[img.ID] = true
			if !sent {
				t.Errorf("image %s is active, but no upload was ever sent to it", img.ID)
				continue
			}
			if img.Size == nil || *img.Size != u.size || img.HashValue == nil || *img.HashValue != u.sum {
				t.Errorf("active image %s: size %v sha512 %v, want the %d bytes sent with sha512 %s",
					img.ID, deref(img.Size), deref(img.HashValue), u.size, u.sum)
				continue
			}
			checkSentDownload(t, c, img.ID, u)
			checkBlobFile(t, dataDir, img.ID, u)
		case string(cloudimage.StatusQueued):
			if w.acked[img.ID] {
				t.Errorf("image %s: its upload was acknowledged, but it is queued", img.ID)
			}
			w.queued = append(w.queued, img.ID)
		default:
			t.Errorf("image %s is %s after a restart, want active or queued", img.ID, img.Status)
		}
		if w.deleted[img.ID] {
			t.Errorf("image %s was deleted, and the delete acknowledged, but it is listed", img.ID)
		}
	}
	for id := range w.acked {
		if !seen[id] && !w.deleting[id] {
			img, err := c.GetImage(ctx, id)
			if err == nil {
				t.Errorf("image %s: its upload was acknowledged, and it is %s, but not listed", id, img.Status)
			} else {
				t.Errorf("image %s: its upload was acknowledged, but it is gone: %v", id, err)
			}
		}
	}
	for id := range w.deleting {
		// A delete that got no answer either happened or did not; the
		// image is either gone or still whole (checked above).
		if !seen[id] {
			delete(w.acked, id)
			delete(w.uploads, id)
			w.deleted[id] = true
		}
		delete(w.deleting, id)
	}
	for id := range w.deleted {
		if _, err := c.GetImage(ctx, id); cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
			t.Errorf("deleted image %s: %v, want not found", id, err)
		}
	}
	checkBlobFiles(t, dataDir, withData)
}

// checkSentDownload checks that the image's data downloads byte-identical to
// what was sent.
func checkSentDownload(t *testing.T, c *client.Client, id string, u sentData) {
	t.Helper()
	rc, err := c.DownloadImage(t.Context(), id)
	if err != nil {
		t.Errorf("download %s: %v", id, err)
		return
	}
	defer rc.Close()
	if err := sameData(rc, u.data()); err != nil {
		t.Errorf("download of %s: %v", id, err)
	}
}

// sameData reports how got differs from want, if it does.
func sameData(got, want io.Reader) error {
	a, b := make([]byte, 64<<10), make([]byte, 64<<10)
	for off := int64(0); ; {
		n, errA := io.ReadFull(got, a)
		m, errB := io.ReadFull(want, b)
		if n != m || !bytes.Equal(a[:n], b[:m]) {
			return fmt.Errorf("differs from what was sent within bytes %d to %d", off, off+int64(max(n, m)))
		}
		off += int64(n)
		endA := errA == io.EOF || errA == io.ErrUnexpectedEOF
		endB := errB == io.EOF || errB == io.ErrUnexpectedEOF
		switch {
		case errA != nil && !endA:
			return errA
		case endA && endB:
			return nil
		case endA != endB:
			return fmt.Errorf("length differs from what was sent after %d bytes", off)
		}
	}
}

// checkBlobFile checks the active image's file against what was sent.
func checkBlobFile(t *testing.T, dataDir, id string, u sentData) {
	t.Helper()
	f, err := os.Open(filepath.Join(dataDir, "images", id[:2], id))
	if err != nil {
		t.Errorf("blob of active image %s: %v", id, err)
		return
	}
	defer f.Close()
	h := sha512.New()
	n, err := io.Copy(h, f)
	if err != nil || n != u.size || hex.EncodeToString(h.Sum(nil)) != u.sum {
		t.Errorf("blob of active image %s: %d bytes (%v), sha512 %x; want %d bytes, sha512 %s",
			id, n, err, h.Sum(nil), u.size, u.sum)
	}
}

// checkBlobFiles checks that the only files under the blob store are
// those of images that keep data, and that staging is empty.
func checkBlobFiles(t *testing.T, dataDir string, withData map[string]bool) {
	t.Helper()
	root := filepath.Join(dataDir, "images")
	staging := filepath.Join(root, ".staging")
	if entries, err := os.ReadDir(staging); err != nil || len(entries) != 0 {
		t.Errorf("staging after a restart: %v (%v), want empty", entries, err)
	}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		name := d.Name()
		if !withData[name] || rel != filepath.Join(name[:min(2, len(name))], name) {
			t.Errorf("blob file %s: no active or deactivated image references it", rel)
		}
		return nil
	})
	if err != nil {
		t.Errorf("walk the blob store: %v", err)
	}
}
