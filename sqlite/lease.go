package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/cloudimage/cloudimage"
)

var _ cloudimage.LeaseStore = (*DB)(nil)

// AcquireLease takes the lease name for holder until ttl from now, by the
// clock of this process, if it is free, has run out or is holder's. All
// replicas of one SQLite database run on one host, so they share a clock.
func (db *DB) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now := time.Now()
	var held bool
	err := db.tx(ctx, func(tx *sql.Tx) error {
		// The upsert updates only a row that is holder's or has run out;
		// otherwise it changes nothing, and the lease is another's.
		res, err := tx.ExecContext(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`,
			name, holder, micros(now.Add(ttl)), micros(now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		held = n > 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return held, nil
}

// ReleaseLease frees the lease name if holder holds it.
func (db *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}
