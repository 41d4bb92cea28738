package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// buildServer builds cmd/cloudimage into a temporary directory.
func buildServer(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no go command on PATH to build the server with")
		}
		t.Skip("no go command on PATH to build the server with")
	}
	bin := filepath.Join(t.TempDir(), "cloudimage")
	if out, err := exec.Command(goTool, "build", "-o", bin, "../cloudimage").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// seedDir seeds n images into a new data directory.
func seedDir(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	cfg := seedConfig{DataDir: dir, N: n, Batch: 500, Active: 0.5, State: filepath.Join(dir, "bench-state.json")}
	if _, err := seed(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestStartup starts the real server on two small catalogs and checks
// that each start is timed, each catalog counted, and the ratio given.
func TestStartup(t *testing.T) {
	bin := buildServer(t)
	small, large := seedDir(t, 100), seedDir(t, 1000)
	out := t.TempDir()
	jsonPath, mdPath := filepath.Join(out, "startup.json"), filepath.Join(out, "startup.md")
	const runs = 3
	err := run(context.Background(), []string{"startup", "-binary", bin, "-data-dir", small, "-data-dir", large,
		"-runs", strconv.Itoa(runs), "-json", jsonPath, "-markdown", mdPath}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var res StartupResults
	if err := readJSON(jsonPath, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Dirs) != 2 {
		t.Fatalf("got %d data dirs, want 2", len(res.Dirs))
	}
	for i, want := range []struct {
		dir    string
		images int64
	}{{small, 100}, {large, 1000}} {
		d := res.Dirs[i]
		if d.DataDir != want.dir || d.Images != want.images {
			t.Errorf("dir %d: got %s with %d images, want %s with %d", i, d.DataDir, d.Images, want.dir, want.images)
		}
		if len(d.Samples) != runs || d.FirstMS <= 0 {
			t.Errorf("%s: got %d samples and a first start of %v ms, want %d and a time",
				d.DataDir, len(d.Samples), d.FirstMS, runs)
		}
		for _, s := range d.Samples {
			if s <= 0 || s > d.Max {
				t.Errorf("%s: got a sample of %v ms with a max of %v, want 0 < sample ≤ max", d.DataDir, s, d.Max)
			}
		}
		if !(d.Median > 0 && d.Median <= d.Max) {
			t.Errorf("%s: got median %v ms, max %v, want 0 < median ≤ max", d.DataDir, d.Median, d.Max)
		}
	}
	if want := res.Dirs[1].Median / res.Dirs[0].Median; res.Ratio != want {
		t.Errorf("got ratio %v, want the larger catalog's median over the smaller's, %v", res.Ratio, want)
	}
	md, err := os.ReadFile(mdPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "| 1,000 |") || !strings.Contains(string(md), "target ≤ 2×") {
		t.Errorf("markdown lacks the 1,000-image row or the target:\n%s", md)
	}
	if testing.Verbose() {
		t.Log("\n" + string(md))
	}
}
