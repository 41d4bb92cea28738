package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cloudimage/cloudimage"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// "migrate" copies a whole catalog, with its image data, from one pair of
// backends to another: the code of the copy is in migrate_copy.go.

func migrateCommand(e *env) *cobra.Command {
	var from, to, blobsFrom, blobsTo string
	var verifyExisting bool
	cmd := &cobra.Command{
		Use:   "migrate --from DB --to DB [--blobs-from STORE --blobs-to STORE]",
		Short: "Copy a whole catalog and its image data to other backends, verifying every hash",
		Long: strings.TrimSpace(`
Copy a whole catalog from one metadata database to another, and the image
data it references from one blob store to another: projects, users (with
their password hashes), role assignments and images of every status, with
their tags, properties and members. Tokens are not copied: users issue new
ones from the destination.

DB is sqlite:PATH (the file, e.g. sqlite:./cloudimage-data/cloudimage.db) or
a PostgreSQL URL (postgres://USER:PASSWORD@HOST:PORT/DBNAME?sslmode=...).
STORE is file:DIR (e.g. file:./cloudimage-data/images) or
s3://BUCKET[/PREFIX]?endpoint=HOST:PORT&region=REGION with credentials in
AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. Without --blobs-from and
--blobs-to only metadata is copied, for a destination that keeps using the
source's blob store.

Each image's data is copied before its record, and read back from the
destination to check its size, MD5 checksum and SHA-512 hash against the
record. A run that was interrupted can be run again: what the destination
holds already and equal is skipped, what is missing or partial is copied
again. A destination that holds different data under the same IDs, names
or appkeys is refused before anything is written. Stop the source's
servers first: a catalog that changes while it is copied is refused on the
next run.`),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			m, closeAll, err := openMigration(ctx, from, to, blobsFrom, blobsTo)
			if err != nil {
				return err
			}
			defer closeAll()
			m.verifyExisting = verifyExisting
			m.log = e.stderr
			if isTerminal(e.stderr) {
				m.newBar = func(total int64) *progressbar.ProgressBar {
					return progressbar.DefaultBytes(total, "copying image data")
				}
			}
			err = m.run(ctx)
			m.sum.print(e.stdout)
			if err != nil && ctx.Err() != nil {
				return fmt.Errorf("migration interrupted (%w): run the same command again to finish it", ctx.Err())
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "the source database: sqlite:PATH or postgres://... (required)")
	f.StringVar(&to, "to", "", "the destination database: sqlite:PATH or postgres://... (required)")
	f.StringVar(&blobsFrom, "blobs-from", "", "the source blob store: file:DIR or s3://BUCKET?...")
	f.StringVar(&blobsTo, "blobs-to", "", "the destination blob store: file:DIR or s3://BUCKET?...")
	f.BoolVar(&verifyExisting, "verify-existing", false,
		"read back and hash the data of images the destination holds already, not only check its size")
	cmd.MarkFlagRequired("from")
	cmd.MarkFlagRequired("to")
	return cmd
}

// catalogDB is a metadata database a catalog can be copied from and to.
type catalogDB interface {
	cloudimage.CatalogReader
	cloudimage.CatalogWriter
	Close() error
}

// openMigration opens the four ends of a migration and returns it with a
// function that closes what was opened.
func openMigration(ctx context.Context, from, to, blobsFrom, blobsTo string) (*migration, func(), error) {
	var closers []func() error
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	switch {
	case from == to:
		return nil, nil, errors.New("--from and --to name the same database")
	case (blobsFrom == "") != (blobsTo == ""):
		return nil, nil, errors.New("give both --blobs-from and --blobs-to, or neither to copy metadata only")
	case blobsFrom != "" && blobsFrom == blobsTo:
		return nil, nil, errors.New("--blobs-from and --blobs-to name the same store: " +
			"give neither to copy metadata only")
	}
	m := &migration{pageSize: migratePageSize}
	src, err := openCatalogDB(ctx, "--from", from, false)
	if err != nil {
		return nil, nil, err
	}
	closers = append(closers, src.Close)
	m.from = src
	dst, err := openCatalogDB(ctx, "--to", to, true)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	closers = append(closers, dst.Close)
	m.to = dst
	if blobsFrom == "" {
		return m, closeAll, nil
	}
	if m.blobsFrom, err = openMigrateBlobs(ctx, "--blobs-from", blobsFrom, false); err != nil {
		closeAll()
		return nil, nil, err
	}
	if m.blobsTo, err = openMigrateBlobs(ctx, "--blobs-to", blobsTo, true); err != nil {
		closeAll()
		return nil, nil, err
	}
	return m, closeAll, nil
}

// openCatalogDB opens the database that raw names for flag, as --database
// names one. Only a destination is created when it does not exist: a
// mistyped source must not become an empty catalog that copies nothing.
func openCatalogDB(ctx context.Context, flag, raw string, create bool) (catalogDB, error) {
	if raw == "" {
		return nil, fmt.Errorf("%s: want sqlite:PATH or postgres://...", flag)
	}
	d, err := parseDatabase(raw, "")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	var db metadata
	if create {
		db, err = d.open(ctx, 0)
	} else {
		db, err = d.openExisting(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, d, err)
	}
	c, ok := db.(catalogDB)
	if !ok {
		db.Close()
		return nil, fmt.Errorf("%s %s: this database cannot be copied", flag, d)
	}
	return c, nil
}

// openMigrateBlobs opens the blob store that raw names for flag, as
// --blob names one; as with databases, only a destination directory is
// created.
func openMigrateBlobs(ctx context.Context, flag, raw string, create bool) (cloudimage.BlobStore, error) {
	b, err := parseBlob(raw, "")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	if b.dir != "" && !create {
		if st, err := os.Stat(b.dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("%s: no blob directory at %s", flag, b.dir)
		}
	}
	s, err := b.open(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, b, err)
	}
	return s, nil
}

// migrateCounts is how many things of one kind a migration copied and
// how many the destination held already.
type migrateCounts struct {
	Copied, Skipped int
}

// migrateSummary is what a migration did.
type migrateSummary struct {
	Projects, Users, Roles, Images migrateCounts
	Blobs                          migrateCounts // data of images
	Bytes                          int64         // of the blobs copied
	MissingData                    int           // images whose data the source did not have
	MetadataOnly                   bool          // no blob stores were given
}

func (s *migrateSummary) print(w io.Writer) {
	fmt.Fprintf(w, "projects: %d copied, %d skipped\n", s.Projects.Copied, s.Projects.Skipped)
	fmt.Fprintf(w, "users: %d copied, %d skipped\n", s.Users.Copied, s.Users.Skipped)
	fmt.Fprintf(w, "role assignments: %d copied, %d skipped\n", s.Roles.Copied, s.Roles.Skipped)
	fmt.Fprintf(w, "images: %d copied, %d skipped\n", s.Images.Copied, s.Images.Skipped)
	if s.MetadataOnly {
		fmt.Fprintln(w, "data: not copied (no --blobs-from and --blobs-to)")
		return
	}
	fmt.Fprintf(w, "data: %d copied (%d bytes, verified), %d skipped, %d missing at the source\n",
		s.Blobs.Copied, s.Bytes, s.Blobs.Skipped, s.MissingData)
}
