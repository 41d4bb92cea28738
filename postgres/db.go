// Package postgres stores cloudimage's metadata (images and identity) in
// PostgreSQL, for several replicas that share one database.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudimage/cloudimage"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is an open PostgreSQL database: a pool of connections to it.
type DB struct {
	pool     *pgxpool.Pool
	versions versions
}

// Options tune how a database is opened; the zero value is Open's.
type Options struct {
	// BusyTimeout is how long a statement waits for a lock that another
	// transaction holds (PostgreSQL's lock_timeout) before it fails with
	// EUNAVAILABLE, as sqlite.Options.BusyTimeout does for SQLite. Zero
	// or less means DefaultBusyTimeout. A lock_timeout given in the DSN
	// wins over it.
	BusyTimeout time.Duration
}

// DefaultBusyTimeout is how long a statement waits for a lock unless
// configured otherwise.
const DefaultBusyTimeout = 10 * time.Second

// Open connects to the database that dsn names and applies any
// migrations it lacks. dsn is a PostgreSQL connection URL,
// postgres://user:password@host:port/dbname?sslmode=disable, or a libpq
// key=value string ("host=... dbname=..."); what it leaves out comes from
// the PG* environment variables (PGPASSWORD, PGHOST, ...) as libpq takes
// them. pgxpool's settings may be given in it too, pool_max_conns=8 say.
//
// Replicas starting together may all call Open: one applies the
// migrations while the others wait for it.
func Open(ctx context.Context, dsn string) (*DB, error) {
	return OpenWith(ctx, dsn, Options{})
}

// OpenWith is Open with opts.
func OpenWith(ctx context.Context, dsn string, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// The error may quote the DSN, password and all: it is left out.
		return nil, errors.New("parse PostgreSQL DSN: invalid connection string")
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = DefaultBusyTimeout
	}
	params := cfg.ConnConfig.RuntimeParams
	if _, ok := params["lock_timeout"]; !ok {
		// In milliseconds: round up, so that 1µs is not none (0 is "forever").
		params["lock_timeout"] = strconv.FormatInt(int64((busy+time.Millisecond-1)/time.Millisecond), 10)
	}
	if _, ok := params["application_name"]; !ok {
		params["application_name"] = "cloudimage"
	}
	if err := migrate(ctx, cfg.ConnConfig.Copy()); err != nil {
		return nil, fmt.Errorf("migrate PostgreSQL database %s: %w", cfg.ConnConfig.Database, err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL database %s: %w", cfg.ConnConfig.Database, err)
	}
	return &DB{pool: pool}, nil
}

// Close closes every connection of the pool, waiting for those in use to
// be given back.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// Ping checks that the database answers a query that reads its schema.
func (db *DB) Ping(ctx context.Context) error {
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		return fmt.Errorf("database does not answer: %w", err)
	}
	return nil
}

// migrationLock is the key of the session advisory lock that the replica
// applying migrations holds: "cloudimg" in ASCII.
const migrationLock int64 = 0x636c6f7564696d67

// migrate applies, in order and each in its own transaction, the embedded
// migrations the database has not seen yet. It does so on a connection of
// its own that holds migrationLock throughout, so that of several
// replicas starting together one migrates and the others then find
// nothing left to do; closing the connection releases the lock whatever
// happened.
func migrate(ctx context.Context, cfg *pgx.ConnConfig) error {
	// A migration may wait for another replica's to end, or for a lock
	// its own DDL needs, for as long as ctx allows.
	cfg.RuntimeParams["lock_timeout"] = "0"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return unavailable(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY, applied_at bigint NOT NULL)`); err != nil {
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
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`,
				version).Scan(&n); err != nil || n > 0 {
				return err
			}
			body, err := migrations.ReadFile(name)
			if err != nil {
				return err
			}
			// Without arguments Exec uses the simple protocol, which runs
			// every statement of the file.
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return fmt.Errorf("apply %s: %w", base, err)
			}
			_, err = tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`,
				version, time.Now().UnixMicro())
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// maxAttempts is how many times tx runs a transaction that fails with a
// serialization failure or a deadlock before it gives up.
const maxAttempts = 4

// tx runs fn in a transaction, committing if fn returns nil and rolling
// back on an error or a panic. A transaction that PostgreSQL aborts for a
// serialization failure or a deadlock is run again, fn included, a few
// times with a short random wait; if it still fails, or a lock stays
// taken past the busy timeout, the error is EUNAVAILABLE.
func (db *DB) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := db.tryTx(ctx, fn)
		if attempt >= maxAttempts || !transient(err) {
			return unavailable(err)
		}
		wait := time.Duration(attempt) * (5*time.Millisecond + rand.N(10*time.Millisecond))
		select {
		case <-ctx.Done():
			return unavailable(err)
		case <-time.After(wait):
		}
	}
}

func (db *DB) tryTx(ctx context.Context, fn func(pgx.Tx) error) (err error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() {
		// The rollback must reach the server even when ctx is done.
		if p := recover(); p != nil {
			tx.Rollback(context.Background())
			panic(p)
		} else if err != nil {
			tx.Rollback(context.Background())
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// SQLSTATE codes this package tells apart.
const (
	codeUniqueViolation   = "23505"
	codeSerialization     = "40001"
	codeDeadlock          = "40P01"
	codeLockNotAvailable  = "55P03"
	codeCannotConnectNow  = "57P03"
	codeTooManyConnection = "53300"
)

// sqlState returns err's SQLSTATE, or "" if it is not PostgreSQL's.
func sqlState(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// isUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY
// constraint failure.
func isUniqueViolation(err error) bool {
	return sqlState(err) == codeUniqueViolation
}

// transient reports whether err aborted a transaction that may succeed
// if it is run again at once.
func transient(err error) bool {
	c := sqlState(err)
	return c == codeSerialization || c == codeDeadlock
}

// unavailable gives err the code EUNAVAILABLE when the database is busy:
// a transaction that kept conflicting with others, a lock that stayed
// taken past the busy timeout, a server that takes no more connections
// or cannot be reached. The cause stays in the chain for the log; other
// errors are returned as they are.
func unavailable(err error) error {
	var ce *pgconn.ConnectError
	switch sqlState(err) {
	case codeSerialization, codeDeadlock, codeLockNotAvailable, codeCannotConnectNow, codeTooManyConnection:
	default:
		if !errors.As(err, &ce) {
			return err
		}
	}
	return fmt.Errorf("%w: %w", errBusy, err)
}

// errBusy is what a caller is told when the database stays busy, with a
// short wait before trying again.
var errBusy = &cloudimage.RetryError{
	Err:   cloudimage.Errorf(cloudimage.EUNAVAILABLE, "The database is busy; try again later."),
	After: time.Second,
}

// notFound turns pgx.ErrNoRows into the domain's ENOTFOUND, and a busy
// database into EUNAVAILABLE.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return cloudimage.Errorf(cloudimage.ENOTFOUND, format, args...)
	}
	return unavailable(err)
}

// micros and fromMicros convert between times and the stored Unix
// microseconds.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// storable reports whether s can be a PostgreSQL text value: valid UTF-8
// without NUL. Lookups of a key that is not are ENOTFOUND without asking
// the server, which would refuse the value, and filters on such a value
// match nothing: no stored text can equal it, as in SQLite.
func storable(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// unstorable returns EINVALID for a write of a text that PostgreSQL
// cannot store; what says which one.
func unstorable(what string) error {
	return cloudimage.Errorf(cloudimage.EINVALID, "%s is not valid UTF-8 text without NUL characters", what)
}
