// Package sqlite stores cloudimage's metadata (images and identity) in an
// embedded SQLite database, the zero-configuration default.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cloudimage/cloudimage"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is an open SQLite database. Writes go through a single connection,
// so writers queue in Go rather than spin on SQLite's lock; reads use a
// pool of their own, which WAL lets run beside the writer.
type DB struct {
	path     string
	write    *sql.DB
	read     *sql.DB
	stmts    *stmtCache // prepared statements of read
	versions versions
}

// Open opens (creating if needed) the database file at path and applies
// any migrations it lacks.
func Open(ctx context.Context, path string) (*DB, error) {
	return OpenWith(ctx, path, Options{})
}

// Options tune how a database is opened; the zero value is Open's.
type Options struct {
	// BusyTimeout is how long a statement waits, retrying, for a lock
	// that another connection holds (another process writing the same
	// file, say) before it fails with EUNAVAILABLE. Zero or less means
	// DefaultBusyTimeout.
	BusyTimeout time.Duration
}

// DefaultBusyTimeout is how long a statement waits for a lock unless
// configured otherwise.
const DefaultBusyTimeout = 10 * time.Second

// OpenWith is Open with opts.
func OpenWith(ctx context.Context, path string, opts Options) (*DB, error) {
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = DefaultBusyTimeout
	}
	// busy_timeout is in milliseconds: round up, so that 1µs is not none.
	busyMS := (busy + time.Millisecond - 1) / time.Millisecond
	// FULL makes each commit durable once it returns: an acknowledged
	// change survives a power cut, not only a crash of the process.
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)",
		fmt.Sprintf("busy_timeout(%d)", busyMS)} {
		q.Add("_pragma", p)
	}
	dsn := "file:" + path + "?" + q.Encode()
	write, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	db := &DB{path: path, write: write}
	if err := db.migrate(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	if db.read, err = sql.Open("sqlite", dsn); err != nil {
		write.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	db.read.SetMaxOpenConns(n)
	db.read.SetMaxIdleConns(n)
	db.stmts = newStmtCache(db.read, stmtCacheSize)
	if db.versions.db, err = sql.Open("sqlite", dsn); err != nil {
		db.read.Close()
		write.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.versions.db.SetMaxOpenConns(1)
	return db, nil
}

// Close closes the database.
func (db *DB) Close() error {
	return errors.Join(db.versions.close(), db.stmts.close(), db.read.Close(), db.write.Close())
}

// Path returns the path of the database file.
func (db *DB) Path() string {
	return db.path
}

// Ping checks that the database answers a query that reads its file.
func (db *DB) Ping(ctx context.Context) error {
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master`).Scan(&n); err != nil {
		return fmt.Errorf("database does not answer: %w", err)
	}
	return nil
}

// migrate applies, in order and each in its own transaction, the embedded
// migrations the database has not seen yet.
func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		version, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with a number", name)
		}
		err = db.tx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx,
				`SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil || n > 0 {
				return err
			}
			body, err := migrations.ReadFile(name)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("apply %s: %w", base, err)
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
				version, time.Now().UnixMicro())
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// tx runs fn in a write transaction, committing if fn returns nil and
// rolling back on an error or a panic. A lock that stays taken past the
// busy timeout is EUNAVAILABLE.
func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) (err error) {
	defer func() { err = unavailable(err) }()
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			tx.Rollback()
			panic(p)
		} else if err != nil {
			tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// isUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY
// constraint failure.
func isUniqueViolation(err error) bool {
	var e *msqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// unavailable gives err the code EUNAVAILABLE when it is SQLite's
// SQLITE_BUSY or SQLITE_LOCKED: SQLite retried for the busy timeout and
// the lock stayed taken, so the caller may try again later. The cause
// stays in the chain for the log; other errors are returned as they are.
func unavailable(err error) error {
	var e *msqlite.Error
	if !errors.As(err, &e) {
		return err
	}
	// Extended codes (SQLITE_BUSY_SNAPSHOT, say) keep the primary code in
	// their low byte.
	if c := e.Code() & 0xff; c != sqlite3.SQLITE_BUSY && c != sqlite3.SQLITE_LOCKED {
		return err
	}
	return fmt.Errorf("%w: %w", errBusy, err)
}

// errBusy is what a caller is told when the database stays locked, with
// a short wait before trying again.
var errBusy = &cloudimage.RetryError{
	Err:   cloudimage.Errorf(cloudimage.EUNAVAILABLE, "The database is busy; try again later."),
	After: time.Second,
}

// micros and fromMicros convert between times and the stored Unix
// microseconds.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// notFound turns sql.ErrNoRows into the domain's ENOTFOUND, and a lock
// that stayed taken into EUNAVAILABLE.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, sql.ErrNoRows) {
		return cloudimage.Errorf(cloudimage.ENOTFOUND, format, args...)
	}
	return unavailable(err)
}
