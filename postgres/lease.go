package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/jackc/pgx/v5"
)

var _ cloudimage.LeaseStore = (*DB)(nil)

// nowMicros is the SQL of the database server's clock in Unix
// microseconds: replicas on several hosts share one database, and so
// this clock, whatever their own say.
const nowMicros = `(extract(epoch FROM clock_timestamp()) * 1000000)::bigint`

// AcquireLease takes the lease name for holder until ttl from now, by the
// database server's clock, if it is free, has run out or is holder's.
func (db *DB) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if !storable(name) || !storable(holder) {
		return false, unstorable("The lease's name or holder")
	}
	var held bool
	err := db.tx(ctx, func(tx pgx.Tx) error {
		// The upsert updates only a row that is holder's or has run out
		// (excluded.expires_at - ttl is now); otherwise it changes nothing,
		// and the lease is another's.
		tag, err := tx.Exec(ctx, `INSERT INTO leases (name, holder, expires_at)
			VALUES ($1, $2, `+nowMicros+` + $3::bigint)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE leases.holder = excluded.holder OR leases.expires_at <= excluded.expires_at - $3::bigint`,
			name, holder, ttl.Microseconds())
		held = tag.RowsAffected() > 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return held, nil
}

// ReleaseLease frees the lease name if holder holds it.
func (db *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	if !storable(name) || !storable(holder) {
		return nil // no such lease is held
	}
	err := db.tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM leases WHERE name = $1 AND holder = $2`, name, holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}
