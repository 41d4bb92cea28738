//go:build !windows

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStartupStopsServer starts a program that never gets ready: the
// start must fail at the timeout and leave no process behind.
func TestStartupStopsServer(t *testing.T) {
	dir := seedDir(t, 10)
	pidFile := filepath.Join(t.TempDir(), "pid")
	fake := filepath.Join(t.TempDir(), "cloudimage")
	script := "#!/bin/sh\necho $$ > " + pidFile + "\nexec sleep 60\n"
	if err := os.WriteFile(fake, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := timeToReady(context.Background(), fake, dir, 2*time.Millisecond, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "not ready") {
		t.Errorf("got %v, want not ready by the timeout", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %v, want about the 300ms timeout", took)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("process %d after the failed start: %v, want it gone", pid, err)
	}
}

// notReadyFor is how long the helper server answers /readyz with 503.
const notReadyFor = 300 * time.Millisecond

// TestStartupWaitsForReady starts a server that listens at once but is
// not ready for a while: the time must cover the wait. A server that
// exits with an error on SIGTERM fails the start.
func TestStartupWaitsForReady(t *testing.T) {
	dir := seedDir(t, 10)
	for _, exit := range []int{0, 1} {
		wrapper := filepath.Join(t.TempDir(), "cloudimage")
		script := fmt.Sprintf("#!/bin/sh\nBENCH_HELPER_SERVER=%d exec %s %s -- \"$@\"\n",
			exit, os.Args[0], "-test.run='^TestHelperServer$'")
		if err := os.WriteFile(wrapper, []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
		took, err := timeToReady(context.Background(), wrapper, dir, 2*time.Millisecond, 30*time.Second)
		if exit != 0 {
			if err == nil || !strings.Contains(err.Error(), "exit after SIGTERM") {
				t.Errorf("exit status %d on SIGTERM: got %v, want an error", exit, err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if took < notReadyFor {
			t.Errorf("got ready after %v, want at least the %v the server is not ready", took, notReadyFor)
		}
	}
}

// TestHelperServer is the server of TestStartupWaitsForReady, run as a
// child process: it serves /readyz on --listen, 503 until notReadyFor has
// passed, then 200, until SIGTERM; then it exits with the status
// BENCH_HELPER_SERVER holds.
func TestHelperServer(t *testing.T) {
	exit, err := strconv.Atoi(os.Getenv("BENCH_HELPER_SERVER"))
	if err != nil {
		t.Skip("run as a child of TestStartupWaitsForReady")
	}
	start := time.Now()
	args := os.Args
	i := slices.Index(args, "--listen")
	if i < 0 || i+1 == len(args) {
		t.Fatalf("no --listen in %v", args)
	}
	l, err := net.Listen("tcp", args[i+1])
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if time.Since(start) < notReadyFor {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	go http.Serve(l, mux)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	os.Exit(exit)
}
