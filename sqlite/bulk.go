package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/cloudimage/cloudimage"
)

// BulkInsertImages inserts many images, with their tags, in one
// transaction through two statements prepared once: the fast path that
// seeds large catalogs for benchmarks. Unlike InsertImages it does not
// name the image whose ID exists already; such an ID is ECONFLICT and
// inserts nothing.
func (db *DB) BulkInsertImages(ctx context.Context, imgs []*cloudimage.Image) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		insImage, err := tx.PrepareContext(ctx, `INSERT INTO images (`+imageColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("prepare image insert: %w", err)
		}
		defer insImage.Close()
		insTag, err := tx.PrepareContext(ctx,
			`INSERT OR IGNORE INTO image_tags (image_id, tag) VALUES (?, ?)`)
		if err != nil {
			return fmt.Errorf("prepare tag insert: %w", err)
		}
		defer insTag.Close()
		for _, img := range imgs {
			args, err := imageArgs(img)
			if err != nil {
				return err
			}
			if _, err := insImage.ExecContext(ctx, args...); isUniqueViolation(err) {
				return cloudimage.Errorf(cloudimage.ECONFLICT, "An image with ID %s already exists", img.ID)
			} else if err != nil {
				return fmt.Errorf("insert image %s: %w", img.ID, err)
			}
			for _, tag := range img.Tags {
				if _, err := insTag.ExecContext(ctx, img.ID, tag); err != nil {
					return fmt.Errorf("insert tag of image %s: %w", img.ID, err)
				}
			}
		}
		return nil
	})
}
