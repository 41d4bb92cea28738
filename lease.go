package cloudimage

import (
	"context"
	"time"
)

// LeaseStore grants named, time-limited leases, so that work meant for
// one replica at a time runs on one when several share a database. The
// store's clock decides when a lease runs out.
type LeaseStore interface {
	// AcquireLease takes the lease name for holder for ttl and reports
	// whether holder holds it now. It does when the lease was free, had
	// run out, or was holder's already; holder's hold then lasts ttl
	// from now. A lease another holder still holds is false, not an error.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)

	// ReleaseLease frees the lease name if holder holds it, so that
	// another holder need not wait for it to run out. Releasing a lease
	// that holder does not hold does nothing.
	ReleaseLease(ctx context.Context, name, holder string) error
}
