package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/fsblob"
	"github.com/cloudimage/cloudimage/postgres"
	"github.com/cloudimage/cloudimage/s3blob"
	"github.com/cloudimage/cloudimage/sqlite"
	"github.com/spf13/cobra"
)

// metadata is what serve needs of a metadata database: *sqlite.DB and
// *postgres.DB are.
type metadata interface {
	cloudimage.ImageStore
	cloudimage.IdentityStore
	cloudimage.LeaseStore
	cloudimage.AuthFailureStore // so that replicas share failure budgets
	Ping(ctx context.Context) error
	Close() error
}

// blobs is what serve needs of a blob store: *fsblob.Store and
// *s3blob.Store are.
type blobs interface {
	cloudimage.BlobStore
	Ping(ctx context.Context) error
}

var (
	_ metadata = (*sqlite.DB)(nil)
	_ metadata = (*postgres.DB)(nil)
	_ blobs    = (*fsblob.Store)(nil)
	_ blobs    = (*s3blob.Store)(nil)
)

// databaseFlag defines --database on cmd.
func databaseFlag(cmd *cobra.Command, e *env, database *string) {
	cmd.PersistentFlags().StringVar(database, "database", e.or("CLOUDIMAGE_DATABASE", ""),
		"metadata database: postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=... (or postgresql://) for "+
			"PostgreSQL, sqlite:PATH for an SQLite file; default the SQLite file "+dbFile+
			" in --data-dir (CLOUDIMAGE_DATABASE)")
}

// blobFlag defines --blob on cmd.
func blobFlag(cmd *cobra.Command, e *env, blob *string) {
	cmd.Flags().StringVar(blob, "blob", e.or("CLOUDIMAGE_BLOB", ""),
		"image data store: s3://BUCKET[/PREFIX]?endpoint=HOST:PORT&region=R[&insecure=true] for S3, "+
			"credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; file:DIR for a directory; "+
			"default the directory images in --data-dir (CLOUDIMAGE_BLOB)")
}

// databaseBackend is what a --database value selects.
type databaseBackend struct {
	postgres string // the DSN of a PostgreSQL database, or
	sqlite   string // the path of an SQLite file
	inData   bool   // the SQLite file is the default one, in the data directory
}

// parseDatabase returns the database that spec names, the default one
// under dataDir when it is empty.
func parseDatabase(spec, dataDir string) (databaseBackend, error) {
	switch {
	case spec == "":
		return databaseBackend{sqlite: filepath.Join(dataDir, dbFile), inData: true}, nil
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		return databaseBackend{postgres: spec}, nil
	case strings.HasPrefix(spec, "sqlite:"):
		if path := strings.TrimPrefix(spec, "sqlite:"); path != "" {
			return databaseBackend{sqlite: path}, nil
		}
	}
	return databaseBackend{}, fmt.Errorf("database %q: want postgres://..., postgresql://... or sqlite:PATH",
		redactDSN(spec))
}

// String describes the database for the log, without a password.
func (d databaseBackend) String() string {
	if d.postgres != "" {
		return redactDSN(d.postgres)
	}
	return "sqlite:" + d.sqlite
}

// open opens the database, creating an SQLite file if need be; busy is
// how long a write waits for a lock that another process or transaction
// holds (SQLite's busy timeout, PostgreSQL's lock_timeout).
func (d databaseBackend) open(ctx context.Context, busy time.Duration) (metadata, error) {
	if d.postgres != "" {
		db, err := postgres.OpenWith(ctx, d.postgres, postgres.Options{BusyTimeout: busy})
		if err != nil {
			return nil, err
		}
		return db, nil
	}
	// The database holds password and token hashes: for the owner only.
	if err := os.MkdirAll(filepath.Dir(d.sqlite), 0o700); err != nil {
		return nil, fmt.Errorf("create database directory: %w", err)
	}
	db, err := sqlite.OpenWith(ctx, d.sqlite, sqlite.Options{BusyTimeout: busy})
	if err != nil {
		return nil, err
	}
	return db, nil
}

// openExisting opens the database for an offline command: only serve
// creates one, so that a command given a mistyped --data-dir or
// sqlite:PATH does not quietly start an empty catalog there.
func (d databaseBackend) openExisting(ctx context.Context) (metadata, error) {
	if d.postgres == "" {
		if _, err := os.Stat(d.sqlite); errors.Is(err, fs.ErrNotExist) {
			if d.inData {
				return nil, fmt.Errorf("no database at %s: give the server's --data-dir, or start the server once",
					d.sqlite)
			}
			return nil, fmt.Errorf("no database at %s: give the server's --database, or start the server once",
				d.sqlite)
		}
	}
	return d.open(ctx, 0)
}

// redactDSN returns a URL without its password, whether in its user
// information or its query. What does not parse as a URL, or names a
// password outside one (a "key=value" DSN), is not shown at all.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme == "" && strings.Contains(strings.ToLower(dsn), "password")) {
		return "(not shown)"
	}
	return redactSecrets(u)
}

// redactSecrets returns u without any password or secret: in its user
// information and in query parameters whose names say they hold one.
func redactSecrets(u *url.URL) string {
	c := *u
	if _, ok := c.User.Password(); ok {
		c.User = url.UserPassword(c.User.Username(), "xxxxx")
	}
	q := c.Query()
	changed := false
	for name := range q {
		lower := strings.ToLower(name)
		if strings.Contains(lower, "password") || strings.Contains(lower, "secret") ||
			strings.Contains(lower, "token") {
			q.Set(name, "xxxxx")
			changed = true
		}
	}
	if changed {
		c.RawQuery = q.Encode()
	}
	return c.String()
}

// blobBackend is what a --blob value selects.
type blobBackend struct {
	s3  string // the URL of an S3 bucket, or
	dir string // the directory of a file store
}

// parseBlob returns the blob store that spec names, the default one
// under dataDir when it is empty.
func parseBlob(spec, dataDir string) (blobBackend, error) {
	switch {
	case spec == "":
		return blobBackend{dir: filepath.Join(dataDir, "images")}, nil
	case strings.HasPrefix(spec, "s3://"):
		return blobBackend{s3: spec}, nil
	case strings.HasPrefix(spec, "file:"):
		if dir := strings.TrimPrefix(spec, "file:"); dir != "" {
			return blobBackend{dir: dir}, nil
		}
	}
	return blobBackend{}, fmt.Errorf("blob store %q: want s3://BUCKET?... or file:DIR", redactDSN(spec))
}

// String describes the blob store for the log, without secrets.
func (b blobBackend) String() string {
	if b.s3 != "" {
		return redactDSN(b.s3)
	}
	return "file:" + b.dir
}

func (b blobBackend) open(ctx context.Context) (blobs, error) {
	if b.s3 != "" {
		s, err := s3blob.Open(ctx, b.s3)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	s, err := fsblob.Open(b.dir)
	if err != nil {
		return nil, err
	}
	return s, nil
}
