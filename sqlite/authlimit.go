package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cloudimage/cloudimage"
)

var _ cloudimage.AuthFailureStore = (*DB)(nil)

// errAuthRefused rolls back a TakeAuthAttempt that must take nothing.
var errAuthRefused = errors.New("auth attempt refused")

// TakeAuthAttempt implements cloudimage.AuthFailureStore, in one write
// transaction: SQLite has one writer at a time, so replicas on the file
// cannot interleave between the reads and the writes.
func (db *DB) TakeAuthAttempt(ctx context.Context, keys []string, burst int, interval time.Duration, now time.Time) (time.Duration, error) {
	var wait time.Duration
	err := db.tx(ctx, func(tx *sql.Tx) error {
		next := make([]time.Time, len(keys))
		for i, k := range keys {
			var fullAt time.Time
			var us int64
			err := tx.QueryRowContext(ctx, `SELECT full_at FROM auth_failures WHERE key = ?`, k).Scan(&us)
			if err == nil {
				fullAt = time.UnixMicro(us)
			} else if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			var w time.Duration
			next[i], w = cloudimage.AuthBudgetTake(fullAt, burst, interval, now)
			wait = max(wait, w)
		}
		if wait > 0 {
			return errAuthRefused
		}
		for i, k := range keys {
			if _, err := tx.ExecContext(ctx, `INSERT INTO auth_failures (key, full_at) VALUES (?, ?)
				ON CONFLICT (key) DO UPDATE SET full_at = excluded.full_at`, k, micros(next[i])); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, errAuthRefused) {
		return wait, nil
	} else if err != nil {
		return 0, fmt.Errorf("take an auth attempt: %w", err)
	}
	return 0, nil
}

// ReturnAuthAttempt implements cloudimage.AuthFailureStore.
func (db *DB) ReturnAuthAttempt(ctx context.Context, keys []string, interval time.Duration, now time.Time) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, `UPDATE auth_failures SET full_at = full_at - ? WHERE key = ?`,
				interval.Microseconds(), k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("return an auth attempt: %w", err)
	}
	return nil
}

// PurgeAuthFailures implements cloudimage.AuthFailureStore.
func (db *DB) PurgeAuthFailures(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM auth_failures WHERE full_at <= ?`, micros(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("purge auth failures: %w", err)
	}
	return n, nil
}
