package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// runConfig says how to drive the server.
type runConfig struct {
	URL         string        // the server, on 127.0.0.1
	State       string        // the state file seed wrote
	Concurrency int           // requests in flight
	Duration    time.Duration // per scenario
	Scenarios   []string      // empty: all
	NoLimitMax  int           // the no-limit list runs only at catalogs this small
	JSON, MD    string        // result files; empty: none
}

// scenario is one kind of request, run alone for the duration.
type scenario struct {
	name string
	// request returns the next request's method and path, false when it
	// has none left (the delete scenario runs out of images).
	request func() (method, path string, ok bool)
	base    string // the server; the reference scenario has its own
}

// Result is one scenario's measurement.
type Result struct {
	Name       string  `json:"name"`
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds"`
	RPS        float64 `json:"rps"`
	P50        float64 `json:"p50_ms"`
	P99        float64 `json:"p99_ms"`
	P999       float64 `json:"p999_ms"`
	Max        float64 `json:"max_ms"`
	BodyBytes  int64   `json:"body_bytes"` // of all responses
}

// Results is one run over one catalog.
type Results struct {
	N           int       `json:"n"`
	Concurrency int       `json:"concurrency"`
	Duration    string    `json:"duration"`
	GoMaxProcs  int       `json:"gomaxprocs"`
	StartedAt   time.Time `json:"started_at"`
	Scenarios   []Result  `json:"scenarios"`
	// FirstPageVsReference is the first page's requests/s over the
	// reference server's, at the same concurrency.
	FirstPageVsReference float64 `json:"first_page_vs_reference,omitempty"`
	// DeepVsFirstP99 is the deep page's p99 over the first page's.
	DeepVsFirstP99 float64 `json:"deep_vs_first_p99,omitempty"`
}

// The scenarios, in the order they run: delete last, since it changes
// the catalog.
var scenarioNames = []string{
	"v1_first_page", "reference", "v1_deep_page", "v1_no_limit",
	"v2_filter_sort", "v2_get", "v2_delete",
}

func runCommand(ctx context.Context, args []string, stdout io.Writer) error {
	var cfg runConfig
	var scenarios string
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:9292", "the server")
	fs.StringVar(&cfg.State, "state", "", "the state file seed wrote")
	fs.IntVar(&cfg.Concurrency, "concurrency", 16, "requests in flight")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "time per scenario")
	fs.StringVar(&scenarios, "scenarios", "", "comma-separated scenarios (default all: "+
		strings.Join(scenarioNames, ",")+")")
	fs.IntVar(&cfg.NoLimitMax, "no-limit-max", 10000, "run v1_no_limit only at catalogs this small")
	fs.StringVar(&cfg.JSON, "json", "bench-results.json", "JSON results file")
	fs.StringVar(&cfg.MD, "markdown", "bench-results.md", "Markdown results file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.State == "" {
		return fmt.Errorf("run: -state is required")
	}
	if scenarios != "" {
		cfg.Scenarios = strings.Split(scenarios, ",")
	}
	res, err := runBench(ctx, cfg)
	if err != nil {
		return err
	}
	return writeResults(stdout, res, markdown(res), cfg.JSON, cfg.MD)
}

// newClient returns a client that keeps a connection per worker.
func newClient(concurrency int) *http.Client {
	return &http.Client{
		Timeout: time.Minute,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        concurrency,
			MaxIdleConnsPerHost: concurrency,
			MaxConnsPerHost:     concurrency,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
}

// runBench runs the scenarios of cfg against the server.
func runBench(ctx context.Context, cfg runConfig) (*Results, error) {
	if cfg.Concurrency <= 0 || cfg.Duration <= 0 {
		return nil, fmt.Errorf("run: concurrency and duration must be positive")
	}
	var st state
	if err := readJSON(cfg.State, &st); err != nil {
		return nil, err
	}
	client := newClient(cfg.Concurrency)
	defer client.CloseIdleConnections()
	token, err := issueToken(ctx, client, cfg.URL, &st)
	if err != nil {
		return nil, err
	}
	want := cfg.Scenarios
	if len(want) == 0 {
		want = scenarioNames
	}
	res := &Results{N: st.N, Concurrency: cfg.Concurrency, Duration: cfg.Duration.String(),
		GoMaxProcs: runtime.GOMAXPROCS(0), StartedAt: time.Now().UTC()}
	d := &driver{client: client, token: token, cfg: cfg}
	for _, name := range want {
		if name == "v1_no_limit" && st.N > cfg.NoLimitMax {
			continue
		}
		sc, stop, err := newScenario(ctx, name, cfg.URL, &st, d)
		if err != nil {
			return nil, err
		}
		r := d.run(ctx, sc)
		stop()
		res.Scenarios = append(res.Scenarios, r)
	}
	res.FirstPageVsReference = ratio(res, "v1_first_page", "reference", func(r Result) float64 { return r.RPS })
	res.DeepVsFirstP99 = ratio(res, "v1_deep_page", "v1_first_page", func(r Result) float64 { return r.P99 })
	return res, ctx.Err()
}

// ratio returns f of scenario a over f of scenario b, 0 if either is missing.
func ratio(res *Results, a, b string, f func(Result) float64) float64 {
	var x, y float64
	for _, r := range res.Scenarios {
		switch r.Name {
		case a:
			x = f(r)
		case b:
			y = f(r)
		}
	}
	if x == 0 || y == 0 {
		return 0
	}
	return x / y
}

// newScenario returns the scenario called name and what stops it.
func newScenario(ctx context.Context, name, base string, st *state, d *driver) (*scenario, func(), error) {
	v1 := "/v1.0/appkeys/" + st.AppKey + "/images"
	fixed := func(path string) func() (string, string, bool) {
		return func() (string, string, bool) { return http.MethodGet, path, true }
	}
	nop := func() {}
	var next atomic.Int64
	switch name {
	case "v1_first_page":
		return &scenario{name: name, base: base, request: fixed(v1 + "?limit=100")}, nop, nil
	case "v1_deep_page":
		return &scenario{name: name, base: base, request: fixed(v1 + "?limit=100&marker=" + st.DeepMarker)}, nop, nil
	case "v1_no_limit":
		return &scenario{name: name, base: base, request: fixed(v1)}, nop, nil
	case "v2_filter_sort":
		return &scenario{name: name, base: base,
			request: fixed("/v2/images?status=active&tag=x&sort=name:asc")}, nop, nil
	case "v2_get":
		if len(st.GetIDs) == 0 {
			return nil, nil, fmt.Errorf("run: the state has no active images to get")
		}
		return &scenario{name: name, base: base, request: func() (string, string, bool) {
			i := next.Add(1) - 1
			return http.MethodGet, "/v2/images/" + st.GetIDs[i%int64(len(st.GetIDs))], true
		}}, nop, nil
	case "v2_delete":
		return &scenario{name: name, base: base, request: func() (string, string, bool) {
			i := next.Add(1) - 1
			if i >= int64(len(st.DeleteIDs)) {
				return "", "", false
			}
			return http.MethodDelete, "/v2/images/" + st.DeleteIDs[i], true
		}}, nop, nil
	case "reference":
		ref, err := startReference(ctx, d, base+v1+"?limit=100")
		if err != nil {
			return nil, nil, err
		}
		return &scenario{name: name, base: ref.url, request: fixed("/")}, ref.close, nil
	}
	return nil, nil, fmt.Errorf("run: unknown scenario %q (want one of %s)", name, strings.Join(scenarioNames, ","))
}

// issueToken gets a v1.0 token for the state's user.
func issueToken(ctx context.Context, client *http.Client, base string, st *state) (string, error) {
	var req struct {
		Auth struct {
			Username string `json:"username"`
			Password string `json:"password"`
		} `json:"auth"`
	}
	req.Auth.Username, req.Auth.Password = st.Username, st.Password
	body, _ := json.Marshal(req)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1.0/appkeys/"+st.AppKey+"/tokens",
		bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(hr)
	if err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Access struct {
			Token struct {
				ID string `json:"id"`
			} `json:"token"`
		} `json:"access"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Access.Token.ID == "" {
		return "", fmt.Errorf("issue token: status %s, %v", resp.Status, err)
	}
	return out.Access.Token.ID, nil
}

// driver runs scenarios.
type driver struct {
	client *http.Client
	token  string
	cfg    runConfig
}

// do sends one request and reads its whole body.
func (d *driver) do(ctx context.Context, method, url string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-Auth-Token", d.token)
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return n, err
	}
	if resp.StatusCode/100 != 2 {
		return n, fmt.Errorf("%s %s: %s", method, url, resp.Status)
	}
	return n, nil
}

// run drives sc at the configured concurrency for the configured time.
// Workers stop starting requests at the deadline but finish the ones in
// flight, so that slow requests are not left out of the latencies.
func (d *driver) run(ctx context.Context, sc *scenario) Result {
	deadline := time.Now().Add(d.cfg.Duration)
	var (
		mu       sync.Mutex
		total    histogram
		errs     int64
		bytes    int64
		firstErr string
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range d.cfg.Concurrency {
		wg.Go(func() {
			var h histogram
			var e, b int64
			var first string
			for ctx.Err() == nil && time.Now().Before(deadline) {
				method, path, ok := sc.request()
				if !ok {
					break
				}
				t := time.Now()
				n, err := d.do(ctx, method, sc.base+path)
				if err != nil && ctx.Err() != nil {
					break // interrupted
				}
				h.add(time.Since(t))
				b += n
				if err != nil {
					e++
					if first == "" {
						first = err.Error()
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			total.merge(&h)
			errs += e
			bytes += b
			if firstErr == "" {
				firstErr = first
			}
		})
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return Result{
		Name: sc.name, Requests: total.n, Errors: errs, FirstError: firstErr,
		Seconds: secs, RPS: float64(total.n) / secs,
		P50: ms(total.quantile(0.50)), P99: ms(total.quantile(0.99)), P999: ms(total.quantile(0.999)),
		Max: ms(total.max), BodyBytes: bytes,
	}
}
