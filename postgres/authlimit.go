package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/jackc/pgx/v5"
)

var _ cloudimage.AuthFailureStore = (*DB)(nil)

// errAuthRefused rolls back a TakeAuthAttempt that must take nothing.
var errAuthRefused = errors.New("auth attempt refused")

// authKeys returns keys sorted, so that transactions lock their rows in
// one order and cannot deadlock, or an error if one cannot be stored.
func authKeys(keys []string) ([]string, error) {
	for _, k := range keys {
		if !storable(k) {
			return nil, unstorable("An auth failure key")
		}
	}
	return slices.Sorted(slices.Values(keys)), nil
}

// TakeAuthAttempt implements cloudimage.AuthFailureStore. The rows of
// keys are made to exist, then locked, so that concurrent attempts on any
// replica take from a budget one after the other.
func (db *DB) TakeAuthAttempt(ctx context.Context, keys []string, burst int, interval time.Duration, now time.Time) (time.Duration, error) {
	keys, err := authKeys(keys)
	if err != nil {
		return 0, err
	}
	var wait time.Duration
	err = db.tx(ctx, func(tx pgx.Tx) error {
		wait = 0
		next := make([]time.Time, len(keys))
		for i, k := range keys {
			if _, err := tx.Exec(ctx, `INSERT INTO auth_failures (key, full_at) VALUES ($1, $2)
				ON CONFLICT (key) DO NOTHING`, k, micros(now)); err != nil {
				return err
			}
			var us int64
			if err := tx.QueryRow(ctx, `SELECT full_at FROM auth_failures WHERE key = $1 FOR UPDATE`,
				k).Scan(&us); err != nil {
				return err
			}
			var w time.Duration
			next[i], w = cloudimage.AuthBudgetTake(time.UnixMicro(us), burst, interval, now)
			wait = max(wait, w)
		}
		if wait > 0 {
			return errAuthRefused // and the rows just made go too
		}
		for i, k := range keys {
			if _, err := tx.Exec(ctx, `UPDATE auth_failures SET full_at = $2 WHERE key = $1`,
				k, micros(next[i])); err != nil {
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
	keys, err := authKeys(keys)
	if err != nil {
		return err
	}
	err = db.tx(ctx, func(tx pgx.Tx) error {
		for _, k := range keys {
			if _, err := tx.Exec(ctx, `UPDATE auth_failures SET full_at = full_at - $2 WHERE key = $1`,
				k, interval.Microseconds()); err != nil {
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
	err := db.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM auth_failures WHERE full_at <= $1`, micros(now))
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("purge auth failures: %w", err)
	}
	return n, nil
}
