package postgres

import (
	"context"
	"fmt"
	"sync"
)

// versions turns the snapshots PostgreSQL reports into growing numbers.
type versions struct {
	mu      sync.Mutex
	last    string // the snapshot last read
	version uint64 // what Version returns
}

// Version returns the database's version, which changes once any change
// is committed to it, by this replica or another. It makes DB a
// cloudimage.Versioner.
//
// It is derived from the cluster's current snapshot
// (pg_current_snapshot(), PostgreSQL 13 and later): the next transaction
// ID to be assigned and the IDs of the transactions still in progress.
// A transaction that writes takes an ID, which moves the first, and its
// commit takes it out of the second, so two equal snapshots mean that
// nothing committed in between; a later query sees at least what the
// snapshot called committed. Writes to other databases of the cluster,
// and transactions that write and roll back, move the version too: a
// cache over it is then emptied for nothing, never kept too long.
func (db *DB) Version(ctx context.Context) (uint64, error) {
	// The server's start time joins the snapshot: a server restarted, or
	// another one after a failover, starts a new series of versions even
	// if its snapshot happens to read as the last one did.
	var snap string
	err := db.pool.QueryRow(ctx, `SELECT pg_current_snapshot()::text || '@' || pg_postmaster_start_time()::text`).Scan(&snap)
	v := &db.versions
	v.mu.Lock()
	defer v.mu.Unlock()
	if err != nil {
		// Whatever happened meanwhile, the next snapshot is news.
		v.last = ""
		return 0, unavailable(fmt.Errorf("read snapshot: %w", err))
	}
	// Of two calls racing here, the one with the older snapshot may come
	// second: the version then moves on once more, which only costs a
	// miss. A version is handed out for a snapshot only while it is the
	// last one read, so a reader never gets a version whose snapshot is
	// not its own.
	if snap != v.last {
		v.last = snap
		v.version++
	}
	return v.version, nil
}
