package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/google/uuid"
	"github.com/spf13/cobra"
)

// lifecycleConfig is serve's configuration of delayed delete and of the
// cleanup that runs in the background.
type lifecycleConfig struct {
	DelayedDelete bool
	ScrubDelay    time.Duration // how long a pending_delete image may be restored
	ScrubInterval time.Duration // how often the janitor runs
	OrphanGrace   time.Duration // how old unreferenced data must be to be removed
}

// The defaults. An hour of delay gives an admin time to notice a mistaken
// delete and restore it, while bounding the data that deleted images keep
// on disk, which no quota counts any more, to an hour's worth of deletes.
const (
	defaultScrubDelay    = time.Hour
	defaultScrubInterval = time.Minute
	defaultOrphanGrace   = time.Hour
)

// addLifecycleFlags defines the flags of cfg on cmd, their defaults taken
// from the environment; a bad variable goes into envErrs by its flag.
func addLifecycleFlags(cmd *cobra.Command, e *env, envErrs map[string]error, cfg *lifecycleConfig) {
	duration := func(name, flag string, def time.Duration) time.Duration {
		v := e.getenv(name)
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			envErrs[flag] = fmt.Errorf("%s: %w", name, err)
			return def
		}
		return d
	}
	delayed := false
	if v := e.getenv("CLOUDIMAGE_DELAYED_DELETE"); v != "" {
		var err error
		if delayed, err = strconv.ParseBool(v); err != nil {
			envErrs["delayed-delete"] = fmt.Errorf("CLOUDIMAGE_DELAYED_DELETE: not a boolean: %w", err)
		}
	}
	f := cmd.Flags()
	f.BoolVar(&cfg.DelayedDelete, "delayed-delete", delayed,
		"make deleted images pending_delete, restorable by an admin, until the scrubber removes their data "+
			"(CLOUDIMAGE_DELAYED_DELETE)")
	f.DurationVar(&cfg.ScrubDelay, "scrub-delay",
		duration("CLOUDIMAGE_SCRUB_DELAY", "scrub-delay", defaultScrubDelay),
		"how long a pending_delete image keeps its data before the scrubber removes it (CLOUDIMAGE_SCRUB_DELAY)")
	f.DurationVar(&cfg.ScrubInterval, "scrub-interval",
		duration("CLOUDIMAGE_SCRUB_INTERVAL", "scrub-interval", defaultScrubInterval),
		"how often the scrubber, the orphan sweep and the repair of transfers that a stopped replica left "+
			"behind run, on one replica at a time (CLOUDIMAGE_SCRUB_INTERVAL)")
	f.DurationVar(&cfg.OrphanGrace, "orphan-grace",
		duration("CLOUDIMAGE_ORPHAN_GRACE", "orphan-grace", defaultOrphanGrace),
		"how old data that no image references must be before the sweep removes it; 0 for no grace "+
			"(CLOUDIMAGE_ORPHAN_GRACE)")
}

// check refuses settings that make no sense.
func (c lifecycleConfig) check() error {
	switch {
	case c.ScrubInterval <= 0:
		return fmt.Errorf("scrub interval must be positive, not %s", c.ScrubInterval)
	case c.ScrubDelay < 0:
		return fmt.Errorf("scrub delay must not be negative, not %s", c.ScrubDelay)
	case c.OrphanGrace < 0:
		return fmt.Errorf("orphan grace must not be negative, not %s", c.OrphanGrace)
	}
	return nil
}

// deleteOption is the image service option of delayed delete, or one
// that changes nothing when it is off.
func (c lifecycleConfig) deleteOption() cloudimage.ServiceOption {
	if !c.DelayedDelete {
		return func(*cloudimage.ImageService) {}
	}
	return cloudimage.WithDelayedDelete(c.ScrubDelay)
}

// logAttrs are the settings for the config log line, in a group without
// a name, which handlers write inline.
func (c lifecycleConfig) logAttrs() slog.Attr {
	return slog.Group("", "delayed_delete", c.DelayedDelete, "scrub_delay", c.ScrubDelay,
		"scrub_interval", c.ScrubInterval, "orphan_grace", c.OrphanGrace)
}

// sweepAtStart removes the data that no image references, as a crash may
// have left, before the server takes requests. It runs whoever holds the
// janitor lease: a restart after kill -9 must not wait for the dead
// process's lease to run out, and the sweep is safe beside other replicas.
func sweepAtStart(ctx context.Context, images *cloudimage.ImageService, cfg lifecycleConfig) error {
	if _, err := images.SweepOrphans(ctx, cfg.OrphanGrace); err != nil {
		return fmt.Errorf("sweep orphaned data: %w", err)
	}
	return nil
}

// startJanitor runs the scrubber and the orphan sweep every scrub
// interval, under the janitor lease in leases, until the returned stop is
// called; stop waits for the janitor to release its lease.
func startJanitor(ctx context.Context, images *cloudimage.ImageService, leases cloudimage.LeaseStore,
	cfg lifecycleConfig, logger *slog.Logger) (stop func()) {
	holder := janitorHolder()
	j := cloudimage.NewJanitor(images, leases, holder, cfg.ScrubInterval, cfg.OrphanGrace)
	logger.Info("janitor started", "holder", holder, "lease_ttl", j.LeaseTTL())
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		j.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// janitorHolder names this process among the replicas: its host and
// process ID, for whoever reads the leases table, and a random part, as
// process IDs repeat across restarts.
func janitorHolder() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), uuid.NewString()[:8])
}
