package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/cloudimage/cloudimage"
)

// usageQuery counts a project's images that are not deleted and sums
// their sizes. It walks the project's entries of images_owner_order, the
// partial index of images not deleted, and reads only those rows.
const usageQuery = `SELECT count(*), coalesce(sum(size), 0) FROM images
	WHERE owner = ? AND deleted_at IS NULL`

// ProjectUsage returns how many of the project's images are not deleted
// and the sum of their sizes.
func (db *DB) ProjectUsage(ctx context.Context, project string) (images int, bytes int64, err error) {
	return projectUsage(ctx, db.read, project)
}

func projectUsage(ctx context.Context, q queryer, project string) (images int, bytes int64, err error) {
	if err := q.QueryRowContext(ctx, usageQuery, project).Scan(&images, &bytes); err != nil {
		return 0, 0, fmt.Errorf("usage of project %s: %w", project, err)
	}
	return images, bytes, nil
}

// checkUsage returns ETOOLARGE if project's usage, as tx sees it, is over
// q. Writes go through one connection, so no other write can change the
// usage between this check and the commit of tx.
func checkUsage(ctx context.Context, tx *sql.Tx, project string, q cloudimage.Quotas) error {
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
	return db.tx(ctx, func(tx *sql.Tx) error {
		if err := insertImage(ctx, tx, img); err != nil {
			return err
		}
		return checkUsage(ctx, tx, img.Owner, q)
	})
}
