package cloudimage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// JanitorLease names the lease under which a Janitor works.
const JanitorLease = "janitor"

// Janitor does an ImageService's background cleanup, RecoverUploads
// when the service has transfer leases (see WithTransferLeases), Scrub
// and then SweepOrphans, every interval and on one replica at a time:
// it works only while it holds JanitorLease, which it renews each round
// and releases when it stops. A Janitor is not safe for concurrent use; each
// replica runs its own.
type Janitor struct {
	svc      *ImageService
	leases   LeaseStore
	holder   string
	interval time.Duration
	grace    time.Duration // of SweepOrphans
	logger   *slog.Logger
	held     bool // by the last round, so that only changes are logged
}

// NewJanitor returns a janitor for svc that takes leases from leases as
// holder, which must be unique to the process, and sweeps orphaned data
// older than grace.
func NewJanitor(svc *ImageService, leases LeaseStore, holder string, interval, grace time.Duration) *Janitor {
	return &Janitor{svc: svc, leases: leases, holder: holder, interval: interval, grace: grace,
		logger: svc.logger.With("holder", holder)}
}

// LeaseTTL is how long a round's hold on the lease lasts: three
// intervals, so that a slow round does not hand the lease to another
// replica, while one that died frees it soon. Both jobs are safe to run
// twice at once, so an overrun duplicates work but breaks nothing.
func (j *Janitor) LeaseTTL() time.Duration {
	return 3 * j.interval
}

// RunOnce does one round if this janitor holds the lease or can take it,
// and reports whether it did.
func (j *Janitor) RunOnce(ctx context.Context) (bool, error) {
	ok, err := j.leases.AcquireLease(ctx, JanitorLease, j.holder, j.LeaseTTL())
	if err != nil {
		return false, fmt.Errorf("take the janitor lease: %w", err)
	}
	if ok != j.held {
		j.logger.Info("janitor lease changed hands", "held_here", ok)
		j.held = ok
	}
	if !ok {
		return false, nil
	}
	var recoverErr error
	if j.svc.leases != nil {
		// Transfers that a replica which stopped left behind; only with
		// transfer leases can the janitor tell them from running ones.
		_, recoverErr = j.svc.RecoverUploads(ctx)
	}
	_, scrubErr := j.svc.Scrub(ctx)
	_, sweepErr := j.svc.SweepOrphans(ctx, j.grace)
	return true, errors.Join(recoverErr, scrubErr, sweepErr)
}

// Run does a round every interval until ctx is done, then releases the
// lease so that another replica can take over at once.
func (j *Janitor) Run(ctx context.Context) {
	tick := time.NewTicker(j.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			release, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := j.leases.ReleaseLease(release, JanitorLease, j.holder); err != nil {
				j.logger.Error("release the janitor lease", "err", err)
			}
			return
		case <-tick.C:
			if _, err := j.RunOnce(ctx); err != nil && ctx.Err() == nil {
				j.logger.Error("janitor round", "err", err)
			}
		}
	}
}
