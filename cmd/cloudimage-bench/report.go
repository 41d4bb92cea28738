package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// markdown renders res as a Markdown table with the target ratios below.
func markdown(res *Results) string {
	var b strings.Builder
	fmt.Fprintf(&b, "N = %d images, concurrency %d, %s per scenario, GOMAXPROCS %d\n\n",
		res.N, res.Concurrency, res.Duration, res.GoMaxProcs)
	b.WriteString("| scenario | requests | errors | req/s | p50 ms | p99 ms | p999 ms |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range res.Scenarios {
		fmt.Fprintf(&b, "| %s | %d | %d | %.0f | %.2f | %.2f | %.2f |\n",
			r.Name, r.Requests, r.Errors, r.RPS, r.P50, r.P99, r.P999)
	}
	b.WriteString("\n")
	if res.FirstPageVsReference != 0 {
		fmt.Fprintf(&b, "v1 first page vs reference, req/s: %.1f%% (target ≥ 50%%)\n",
			100*res.FirstPageVsReference)
	}
	if res.DeepVsFirstP99 != 0 {
		fmt.Fprintf(&b, "v1 deep page p99 / first page p99: %.2f× (target ≤ 1.5×)\n", res.DeepVsFirstP99)
	}
	for _, r := range res.Scenarios {
		if r.FirstError != "" {
			fmt.Fprintf(&b, "first error of %s: %s\n", r.Name, r.FirstError)
		}
	}
	return b.String()
}

func writeFile(path, s string) error {
	return os.WriteFile(path, []byte(s), 0o644)
}

// writeResults prints md to stdout and writes res as JSON to jsonPath and
// md to mdPath, each unless its path is empty.
func writeResults(stdout io.Writer, res any, md, jsonPath, mdPath string) error {
	fmt.Fprint(stdout, md)
	if jsonPath != "" {
		if err := writeJSON(jsonPath, res); err != nil {
			return err
		}
	}
	if mdPath != "" {
		return writeFile(mdPath, md)
	}
	return nil
}
