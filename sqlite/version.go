package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// versions keeps the connection that PRAGMA data_version is asked on.
// SQLite's data_version is a number of one connection's: it changes
// between two calls on that connection whenever another connection, of
// this process or another, has committed a change to the file in
// between. This connection never writes, so every commit shows. Its
// numbers mean nothing on another connection: when the connection is
// lost and a new one opened, the version moves on regardless.
type versions struct {
	mu      sync.Mutex
	db      *sql.DB
	conn    *sql.Conn
	stmt    *sql.Stmt
	last    int64  // data_version last read on conn
	version uint64 // what Version returns
}

// Version returns the database's version, which changes once any change
// to the database file is committed, by this process or another one. It
// makes DB a cloudimage.Versioner.
func (db *DB) Version(ctx context.Context) (uint64, error) {
	v := &db.versions
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.conn == nil {
		conn, err := v.db.Conn(ctx)
		if err != nil {
			return 0, unavailable(fmt.Errorf("open version connection: %w", err))
		}
		stmt, err := conn.PrepareContext(ctx, `PRAGMA data_version`)
		if err != nil {
			conn.Close()
			return 0, unavailable(fmt.Errorf("prepare version query: %w", err))
		}
		v.conn, v.stmt = conn, stmt
		v.version++
	}
	// The pragma only reads a counter: it has nothing to give up on, and
	// a context that cannot be cancelled spares the driver the goroutine
	// it starts for every query to watch one.
	var dv int64
	if err := v.stmt.QueryRowContext(context.WithoutCancel(ctx)).Scan(&dv); err != nil {
		v.closeLocked()
		return 0, unavailable(fmt.Errorf("read data_version: %w", err))
	}
	if dv != v.last {
		v.last = dv
		v.version++
	}
	return v.version, nil
}

// closeLocked drops the version connection; the next Version opens a new
// one and moves the version on.
func (v *versions) closeLocked() {
	if v.conn != nil {
		v.stmt.Close()
		v.conn.Close()
		v.conn, v.stmt = nil, nil
	}
}

// close closes the version connection and its pool.
func (v *versions) close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.closeLocked()
	if v.db == nil {
		return nil
	}
	return v.db.Close()
}
