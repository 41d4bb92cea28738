// Command cloudimage-bench measures the image service with a big catalog.
//
//	cloudimage-bench seed -data-dir DIR -n 100000      # bulk-insert a catalog
//	cloudimage-bench run -state DIR/bench-state.json   # drive a running server
//	cloudimage-bench plot -o p99.png r10k.json r100k.json
//	cloudimage-bench startup -binary ./cloudimage -data-dir D1 -data-dir D2
//
// seed writes images straight into the database, without HTTP; run drives
// a server on 127.0.0.1 at a fixed concurrency for a fixed time per
// scenario and writes JSON and a Markdown table; plot draws p99 latency
// against the catalog size from several result files; startup starts the
// server on each data directory in turn and times it until it is ready.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cloudimage-bench:", err)
		os.Exit(1)
	}
}

const usage = "usage: cloudimage-bench seed|run|plot|startup [flags]"

// run runs the mode named by args[0] with the rest of args as its flags.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", usage)
	}
	switch args[0] {
	case "seed":
		return seedCommand(ctx, args[1:], stdout)
	case "run":
		return runCommand(ctx, args[1:], stdout)
	case "plot":
		return plotCommand(args[1:], stdout)
	case "startup":
		return startupCommand(ctx, args[1:], stdout)
	}
	return fmt.Errorf("unknown mode %q; %s", args[0], usage)
}
