package postgres

import (
	"context"
	"fmt"

	"github.com/cloudimage/cloudimage"
	"github.com/jackc/pgx/v5"
)

// usageQuery counts a project's images that are not deleted and sums
// their sizes, from the partial index images_owner_size.
const usageQuery = `SELECT count(*), coalesce(sum(size), 0)::bigint FROM images
	WHERE owner = $1 AND deleted_at IS NULL`

// ProjectUsage returns how many of the project's images are not deleted
// and the sum of their sizes.
func (db *DB) ProjectUsage(ctx context.Context, project string) (images int, bytes int64, err error) {
	if !storable(project) {
		return 0, 0, nil
	}
	return projectUsage(ctx, db.pool, project)
}

func projectUsage(ctx context.Context, q queryer, project string) (images int, bytes int64, err error) {
	if err := q.QueryRow(ctx, usageQuery, project).Scan(&images, &bytes); err != nil {
		return 0, 0, fmt.Errorf("usage of project %s: %w", project, unavailable(err))
	}
	return images, bytes, nil
}

// usageLock is the first key of the transaction advisory locks that
// serialize the quota-checked writes of one project ("quot" in ASCII);
// the second is a hash of the project's ID. Two projects whose IDs hash
// alike only wait for each other.
const usageLock = 0x71756f74

// lockUsage takes, when q sets a quota, the lock on project's usage until
// tx ends: another transaction checking the same project's usage waits
// until tx commits, and then counts what tx wrote.
func lockUsage(ctx context.Context, tx pgx.Tx, project string, q cloudimage.Quotas) error {
	if q.Images <= 0 && q.Bytes <= 0 {
		return nil
	}
	if !storable(project) {
		return unstorable("The image's owner")
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, usageLock, project); err != nil {
		return fmt.Errorf("lock usage of project %s: %w", project, err)
	}
	return nil
}

// checkUsage returns ETOOLARGE if project's usage, as tx sees it, is over
// q. The caller holds the project's usage lock (lockUsage), and each
// statement of a READ COMMITTED transaction sees what committed before
// it began, so the count includes every write that held the lock before.
func checkUsage(ctx context.Context, tx pgx.Tx, project string, q cloudimage.Quotas) error {
	if q.Images <= 0 && q.Bytes <= 0 {
		return nil
	}
	images, bytes, err := projectUsage(ctx, tx, project)
	if err != nil {
		return err
	}
	return q.Check(project, images, bytes)
}

// CreateImageWithin inserts img with its tags, unless its owner would
// then be over q.
func (db *DB) CreateImageWithin(ctx context.Context, img *cloudimage.Image, q cloudimage.Quotas) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		if err := lockUsage(ctx, tx, img.Owner, q); err != nil {
			return err
		}
		if err := insertImage(ctx, tx, img); err != nil {
			return err
		}
		return checkUsage(ctx, tx, img.Owner, q)
	})
}
