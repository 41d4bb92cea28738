// Command cloudimage is the image service and its command-line client:
// "serve" runs the server, "project" and "user" administer its database
// offline, and "image" and "token" talk to a running server.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/client"
	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		for _, line := range errorLines(err) {
			fmt.Fprintf(os.Stderr, "cloudimage: %s\n", line)
		}
		os.Exit(1)
	}
}

// errorLines says what went wrong, one line per error when several were
// joined: a server's refusal with its result code, a domain error by its
// message alone.
func errorLines(err error) []string {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var lines []string
		for _, e := range joined.Unwrap() {
			lines = append(lines, errorLines(e)...)
		}
		return lines
	}
	var ce *client.Error
	var de *cloudimage.Error
	switch {
	case errors.As(err, &ce):
		return []string{err.Error()}
	case errors.As(err, &de):
		return []string{de.Message}
	}
	return []string{err.Error()}
}

// env is where configuration that flags do not give comes from.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// or returns the environment variable name, or def when it is unset.
func (e *env) or(name, def string) string {
	if v := e.getenv(name); v != "" {
		return v
	}
	return def
}

// run is the whole program; main only supplies the process's context,
// arguments, environment and standard streams, and tests call it the same
// way.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "cloudimage",
		Short:         "A VM image service speaking the NHN Cloud v1.0 and OpenStack Image v2 APIs",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	dataDir := root.PersistentFlags().String("data-dir", e.or("CLOUDIMAGE_DATA_DIR", "./cloudimage-data"),
		"directory of the database and image data, unless --database and --blob put them elsewhere "+
			"(CLOUDIMAGE_DATA_DIR)")
	root.AddCommand(
		serveCommand(e, dataDir),
		projectCommand(e, dataDir),
		userCommand(e, dataDir),
		imageCommand(e),
		tokenCommand(e),
		migrateCommand(e),
	)
	return root.ExecuteContext(ctx)
}

// group returns a command that only holds subcommands: run alone it shows
// its help, and with an unknown subcommand it fails.
func group(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
}
