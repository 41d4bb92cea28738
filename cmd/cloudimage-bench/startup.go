package main

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// startupConfig says which server to start on which catalogs.
type startupConfig struct {
	Binary   string        // the cloudimage program
	DataDirs []string      // one catalog each
	Runs     int           // measured starts of each data directory
	Poll     time.Duration // between two readiness requests
	Timeout  time.Duration // the most one start may take to be ready
	JSON, MD string        // result files; empty: none
}

// StartupDir is the start-up times of one data directory, in ms from
// starting the process to the first 200 from /readyz.
type StartupDir struct {
	DataDir string    `json:"data_dir"`
	Images  int64     `json:"images"`   // rows in the images table
	FirstMS float64   `json:"first_ms"` // the warm-up start, not in the samples
	Samples []float64 `json:"samples_ms"`
	Median  float64   `json:"median_ms"`
	Max     float64   `json:"max_ms"`
}

// StartupResults is one start-up measurement over several catalogs.
type StartupResults struct {
	Binary     string       `json:"binary"`
	Runs       int          `json:"runs"`
	PollMS     float64      `json:"poll_ms"`
	GoMaxProcs int          `json:"gomaxprocs"`
	StartedAt  time.Time    `json:"started_at"`
	Dirs       []StartupDir `json:"dirs"`
	// Ratio is the median of the largest catalog over the smallest's; 0
	// with a single catalog.
	Ratio  float64 `json:"largest_vs_smallest"`
	Target float64 `json:"target_ratio"`
}

// startupTarget is the most the largest catalog's start-up may take, as
// a multiple of the smallest's.
const startupTarget = 2.0

// stopTimeout is how long a stopped server may take to exit before it
// is killed.
const stopTimeout = 30 * time.Second

// dirList is a flag that may be given more than once.
type dirList []string

func (l *dirList) String() string     { return strings.Join(*l, ",") }
func (l *dirList) Set(v string) error { *l = append(*l, v); return nil }

func startupCommand(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg startupConfig
	fs := flag.NewFlagSet("startup", flag.ContinueOnError)
	fs.StringVar(&cfg.Binary, "binary", "cloudimage", "the cloudimage program to start")
	fs.Var((*dirList)(&cfg.DataDirs), "data-dir", "a data directory to start on (repeat for several)")
	fs.IntVar(&cfg.Runs, "runs", 5, "measured starts of each data directory, after one warm-up start")
	fs.DurationVar(&cfg.Poll, "poll", 2*time.Millisecond, "time between two requests to /readyz")
	fs.DurationVar(&cfg.Timeout, "timeout", 2*time.Minute, "the most one start may take to be ready")
	fs.StringVar(&cfg.JSON, "json", "startup-results.json", "JSON results file")
	fs.StringVar(&cfg.MD, "markdown", "startup-results.md", "Markdown results file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	res, err := measureStartup(ctx, cfg)
	if err != nil {
		return err
	}
	return writeResults(stdout, res, startupMarkdown(res), cfg.JSON, cfg.MD)
}

// measureStartup starts the server on each data directory once to warm
// up (the first start also creates the admin user), then cfg.Runs times
// more, taking the directories in turn in each round so that any drift
// of the machine weighs on all of them alike.
func measureStartup(ctx context.Context, cfg startupConfig) (*StartupResults, error) {
	if len(cfg.DataDirs) == 0 || cfg.Runs <= 0 || cfg.Poll <= 0 || cfg.Timeout <= 0 {
		return nil, fmt.Errorf("startup: give -data-dir, and positive -runs, -poll and -timeout")
	}
	bin, err := exec.LookPath(cfg.Binary)
	if err != nil {
		return nil, fmt.Errorf("startup: %w", err)
	}
	res := &StartupResults{Binary: bin, Runs: cfg.Runs, PollMS: ms(cfg.Poll),
		GoMaxProcs: runtime.GOMAXPROCS(0), StartedAt: time.Now().UTC(), Target: startupTarget}
	for _, dir := range cfg.DataDirs {
		n, err := countImages(ctx, dir)
		if err != nil {
			return nil, err
		}
		res.Dirs = append(res.Dirs, StartupDir{DataDir: dir, Images: n})
	}
	for round := -1; round < cfg.Runs; round++ {
		for i := range res.Dirs {
			d := &res.Dirs[i]
			took, err := timeToReady(ctx, bin, d.DataDir, cfg.Poll, cfg.Timeout)
			if err != nil {
				return nil, err
			}
			if round < 0 {
				d.FirstMS = ms(took)
			} else {
				d.Samples = append(d.Samples, ms(took))
			}
		}
	}
	for i := range res.Dirs {
		d := &res.Dirs[i]
		d.Median, d.Max = median(d.Samples), slices.Max(d.Samples)
	}
	if len(res.Dirs) > 1 {
		byImages := func(a, b StartupDir) int { return cmp.Compare(a.Images, b.Images) }
		small, large := slices.MinFunc(res.Dirs, byImages), slices.MaxFunc(res.Dirs, byImages)
		res.Ratio = large.Median / small.Median
	}
	return res, nil
}

// countImages returns the rows of the images table in dir's SQLite
// database, opened read-only (the driver is modernc.org/sqlite, which
// the sqlite package registers).
func countImages(ctx context.Context, dir string) (int64, error) {
	path := filepath.Join(dir, "cloudimage.db")
	if _, err := os.Stat(path); err != nil {
		return 0, fmt.Errorf("startup: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM images`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count the images of %s: %w", path, err)
	}
	return n, nil
}

// timeToReady starts "serve" of bin on dataDir, listening on a free port
// of 127.0.0.1, and returns how long it took from starting the process
// until /readyz answered 200. The server is stopped, and waited for,
// before timeToReady returns, whatever happened.
func timeToReady(ctx context.Context, bin, dataDir string, poll, timeout time.Duration) (
	took time.Duration, err error) {
	addr, err := freeAddr()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(bin, "--data-dir", dataDir, "serve", "--listen", addr, "--log-level", "warn")
	cmd.Env = serverEnv()
	// The first start on a catalog prints the admin password: drop it.
	cmd.Stdout = io.Discard
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	killWithParent(cmd)
	exited := make(chan struct{})
	var exitErr error
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		exitErr = cmd.Wait()
		close(exited)
	}()
	defer func() {
		stopErr := stop(cmd, exited)
		if err == nil && stopErr == nil && exitErr != nil {
			stopErr = fmt.Errorf("exit after SIGTERM: %w", exitErr)
		}
		if err == nil && stopErr != nil {
			err = stopErr
		}
		if err != nil {
			// The server has exited: its stderr is complete.
			err = fmt.Errorf("serve on %s: %w\n%s", dataDir, err, stderr.Bytes())
		}
	}()
	if err := waitReady(ctx, "http://"+addr+"/readyz", poll, start.Add(timeout), exited); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// waitReady asks url every poll until it answers 200, the process exits,
// ctx is done or the deadline passes.
func waitReady(ctx context.Context, url string, poll time.Duration, deadline time.Time,
	exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready at %s by the timeout", url)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return errors.New("the server exited before it was ready")
		case <-tick.C:
		}
	}
}

// stop asks the server to shut down with SIGTERM and waits for it to
// exit; past stopTimeout it kills it. It returns an error if the server
// had to be killed.
func stop(cmd *exec.Cmd, exited <-chan struct{}) error {
	select {
	case <-exited:
		return nil
	default:
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("stop: %w", err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(stopTimeout):
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("no exit within %s of SIGTERM: killed", stopTimeout)
	}
}

// freeAddr returns an address on 127.0.0.1 with a port nothing listens
// on at the moment.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// serverEnv is the environment without the CLOUDIMAGE_ variables, so
// that the server runs on its defaults and the data directory given.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CLOUDIMAGE_") {
			env = append(env, kv)
		}
	}
	return env
}

// median returns the median of xs, which must not be empty.
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// startupMarkdown returns res as a Markdown table and the ratio line.
func startupMarkdown(res *StartupResults) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Start-up to ready (/readyz 200), %d runs per catalog, polled every %.0f ms:\n\n",
		res.Runs, res.PollMS)
	b.WriteString("| data dir | images | first start ms | median ms | max ms |\n|---|---:|---:|---:|---:|\n")
	for _, d := range res.Dirs {
		fmt.Fprintf(&b, "| %s | %s | %.1f | %.1f | %.1f |\n",
			d.DataDir, thousands(d.Images), d.FirstMS, d.Median, d.Max)
	}
	if res.Ratio > 0 {
		verdict := "met"
		if res.Ratio > res.Target {
			verdict = "missed"
		}
		fmt.Fprintf(&b, "\nlargest vs smallest catalog (median): %.2f× (target ≤ %.0f×: %s)\n",
			res.Ratio, res.Target, verdict)
	}
	return b.String()
}

// thousands returns n with commas between groups of three digits.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
