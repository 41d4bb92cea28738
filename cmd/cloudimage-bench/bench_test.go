package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/fsblob"
	"github.com/cloudimage/cloudimage/httpapi"
	"github.com/cloudimage/cloudimage/sqlite"
)

// The smoke test seeds a small catalog, serves it in-process on
// 127.0.0.1 and runs every scenario briefly.

// startServer serves the data directory dir as serve would, and returns
// its URL.
func startServer(t *testing.T, dir string) string {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "cloudimage.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := fsblob.Open(filepath.Join(dir, "images"))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	images := cloudimage.NewImageService(db, blobs, logger)
	t.Cleanup(func() { images.Close() })
	srv := httpapi.New(httpapi.Config{
		Images:   images,
		Identity: cloudimage.NewIdentityService(db, time.Hour),
		Logger:   logger,
	})
	if err := srv.Open("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Close(ctx)
	})
	return srv.PublicURL()
}

func TestSmoke(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	const n = 2000
	statePath := filepath.Join(dir, "bench-state.json")
	st, err := seed(ctx, seedConfig{DataDir: dir, N: n, Batch: 500, Active: 0.5, State: statePath})
	if err != nil {
		t.Fatal(err)
	}
	if st.N != n || st.DeepMarker == "" || len(st.GetIDs) == 0 || len(st.DeleteIDs) == 0 {
		t.Fatalf("state: got %d images, marker %q, %d to get, %d to delete",
			st.N, st.DeepMarker, len(st.GetIDs), len(st.DeleteIDs))
	}

	url := startServer(t, dir)
	cfg := runConfig{
		URL: url, State: statePath, Concurrency: 4, Duration: 700 * time.Millisecond,
		NoLimitMax: 10000,
		JSON:       filepath.Join(dir, "results.json"), MD: filepath.Join(dir, "results.md"),
	}
	res, err := runBench(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range res.Scenarios {
		names = append(names, r.Name)
		if r.Requests == 0 || r.Errors != 0 {
			t.Errorf("%s: got %d requests, %d errors (%s); want some, none",
				r.Name, r.Requests, r.Errors, r.FirstError)
		}
		if !(r.P50 > 0 && r.P50 <= r.P99 && r.P99 <= r.P999 && r.P999 <= r.Max) {
			t.Errorf("%s: got p50 %.3f, p99 %.3f, p999 %.3f, max %.3f ms; want 0 < p50 ≤ p99 ≤ p999 ≤ max",
				r.Name, r.P50, r.P99, r.P999, r.Max)
		}
	}
	if !slices.Equal(names, scenarioNames) {
		t.Errorf("got scenarios %v, want %v", names, scenarioNames)
	}
	if res.FirstPageVsReference <= 0 {
		t.Errorf("got first page vs reference %v, want a ratio", res.FirstPageVsReference)
	}
	if testing.Verbose() {
		t.Log("\n" + markdown(res))
	}

	// The outputs: a Markdown table, JSON that reads back, and a plot.
	if err := writeJSON(cfg.JSON, res); err != nil {
		t.Fatal(err)
	}
	big := *res
	big.N = 10 * n
	bigPath := filepath.Join(dir, "results-big.json")
	if err := writeJSON(bigPath, &big); err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(dir, "p99.png")
	if err := run(ctx, []string{"plot", "-o", png, cfg.JSON, bigPath}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(png); err != nil || fi.Size() == 0 {
		t.Errorf("plot: %v, want a PNG", err)
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {0.999, 999 * time.Millisecond}} {
		got := h.quantile(c.q)
		if got < c.want || float64(got) > float64(c.want)*1.011 {
			t.Errorf("quantile(%v): got %v, want %v within 1%%", c.q, got, c.want)
		}
	}
}
