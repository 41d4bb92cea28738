package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/cloudimage/cloudimage"
)

// Ensure DB implements the store interfaces.
var (
	_ cloudimage.ImageStore    = (*DB)(nil)
	_ cloudimage.IdentityStore = (*DB)(nil)
)

const imageColumns = `id, name, status, visibility, protected, hidden, disk_format, container_format,
	min_disk, min_ram, size, virtual_size, checksum, hash_algo, hash_value, owner, properties,
	created_at, updated_at, deleted_at`

// queryer is what both *sql.DB and *sql.Tx offer for reads.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// CreateImage inserts img with its tags.
func (db *DB) CreateImage(ctx context.Context, img *cloudimage.Image) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		return insertImage(ctx, tx, img)
	})
}

// InsertImages inserts many images in one transaction: the bulk path that
// seeds large catalogs for benchmarks and migrations.
func (db *DB) InsertImages(ctx context.Context, imgs []*cloudimage.Image) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		for _, img := range imgs {
			if err := insertImage(ctx, tx, img); err != nil {
				return err
			}
		}
		return nil
	})
}

func insertImage(ctx context.Context, tx *sql.Tx, img *cloudimage.Image) error {
	args, err := imageArgs(img)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO images (`+imageColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
	if isUniqueViolation(err) {
		return cloudimage.Errorf(cloudimage.ECONFLICT, "An image with ID %s already exists", img.ID)
	} else if err != nil {
		return fmt.Errorf("insert image %s: %w", img.ID, err)
	}
	return insertTags(ctx, tx, img.ID, img.Tags)
}

func insertTags(ctx context.Context, tx *sql.Tx, id string, tags []string) error {
	for _, tag := range tags {
		if _, err := tx.ExecContext(ctx,
			`INSERT OR IGNORE INTO image_tags (image_id, tag) VALUES (?, ?)`, id, tag); err != nil {
			return fmt.Errorf("insert tag of image %s: %w", id, err)
		}
	}
	return nil
}

// imageArgs returns img's columns in the order of imageColumns.
func imageArgs(img *cloudimage.Image) ([]any, error) {
	props := img.Properties
	if props == nil {
		props = map[string]string{}
	}
	pj, err := json.Marshal(props)
	if err != nil {
		return nil, err
	}
	var deletedAt *int64
	if img.DeletedAt != nil {
		us := micros(*img.DeletedAt)
		deletedAt = &us
	}
	return []any{
		img.ID, img.Name, string(img.Status), string(img.Visibility), img.Protected, img.Hidden,
		img.DiskFormat, img.ContainerFormat, img.MinDisk, img.MinRAM, img.Size, img.VirtualSize,
		img.Checksum, img.HashAlgo, img.HashValue, img.Owner, string(pj),
		micros(img.CreatedAt), micros(img.UpdatedAt), deletedAt,
	}, nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanImage(s scanner) (*cloudimage.Image, error) {
	var (
		img                          cloudimage.Image
		status, visibility, props    string
		createdAt, updatedAt         int64
		size, virtualSize, deletedAt sql.NullInt64
	)
	err := s.Scan(&img.ID, &img.Name, &status, &visibility, &img.Protected, &img.Hidden,
		&img.DiskFormat, &img.ContainerFormat, &img.MinDisk, &img.MinRAM, &size, &virtualSize,
		&img.Checksum, &img.HashAlgo, &img.HashValue, &img.Owner, &props,
		&createdAt, &updatedAt, &deletedAt)
	if err != nil {
		return nil, err
	}
	img.Status = cloudimage.Status(status)
	img.Visibility = cloudimage.Visibility(visibility)
	if size.Valid {
		img.Size = &size.Int64
	}
	if virtualSize.Valid {
		img.VirtualSize = &virtualSize.Int64
	}
	if err := json.Unmarshal([]byte(props), &img.Properties); err != nil {
		return nil, fmt.Errorf("properties of image %s: %w", img.ID, err)
	}
	img.CreatedAt = fromMicros(createdAt)
	img.UpdatedAt = fromMicros(updatedAt)
	if deletedAt.Valid {
		t := fromMicros(deletedAt.Int64)
		img.DeletedAt = &t
	}
	return &img, nil
}

// Image returns the image with the given ID, deleted or not, with its tags.
func (db *DB) Image(ctx context.Context, id string) (*cloudimage.Image, error) {
	return getImage(ctx, db.read, id)
}

func getImage(ctx context.Context, q queryer, id string) (*cloudimage.Image, error) {
	img, err := scanImage(q.QueryRowContext(ctx, `SELECT `+imageColumns+` FROM images WHERE id = ?`, id))
	if err != nil {
		return nil, notFound(err, "No image found with ID %s", id)
	}
	if err := loadTags(ctx, q, []*cloudimage.Image{img}); err != nil {
		return nil, err
	}
	return img, nil
}

// loadTags fills in the tags of imgs with one query.
func loadTags(ctx context.Context, q queryer, imgs []*cloudimage.Image) error {
	if len(imgs) == 0 {
		return nil
	}
	byID := make(map[string]*cloudimage.Image, len(imgs))
	args := make([]any, len(imgs))
	for i, img := range imgs {
		img.Tags = []string{}
		byID[img.ID] = img
		args[i] = img.ID
	}
	rows, err := q.QueryContext(ctx, `SELECT image_id, tag FROM image_tags WHERE image_id IN (?`+
		strings.Repeat(", ?", len(imgs)-1)+`) ORDER BY image_id, tag`, args...)
	if err != nil {
		return fmt.Errorf("load tags: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, tag string
		if err := rows.Scan(&id, &tag); err != nil {
			return err
		}
		byID[id].Tags = append(byID[id].Tags, tag)
	}
	return rows.Err()
}

// UpdateImage reads, changes and writes back an image in one transaction.
func (db *DB) UpdateImage(ctx context.Context, id string, fn func(*cloudimage.Image) error) (*cloudimage.Image, error) {
	var img *cloudimage.Image
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if img, err = getImage(ctx, tx, id); err != nil {
			return err
		}
		oldTags := slices.Clone(img.Tags)
		if err := fn(img); err != nil {
			return err
		}
		args, err := imageArgs(img)
		if err != nil {
			return err
		}
		// The ID is the key and stays: the first argument is moved last.
		_, err = tx.ExecContext(ctx, `UPDATE images SET name = ?, status = ?, visibility = ?,
			protected = ?, hidden = ?, disk_format = ?, container_format = ?, min_disk = ?,
			min_ram = ?, size = ?, virtual_size = ?, checksum = ?, hash_algo = ?, hash_value = ?,
			owner = ?, properties = ?, created_at = ?, updated_at = ?, deleted_at = ?
			WHERE id = ?`, append(args[1:], id)...)
		if err != nil {
			return fmt.Errorf("update image %s: %w", id, err)
		}
		if slices.Equal(oldTags, img.Tags) {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM image_tags WHERE image_id = ?`, id); err != nil {
			return fmt.Errorf("update tags of image %s: %w", id, err)
		}
		return insertTags(ctx, tx, id, img.Tags)
	})
	if err != nil {
		return nil, err
	}
	return img, nil
}

// ListImages returns one page of a project's view in the default order.
// Each branch of the view (own images, public images of other projects)
// walks its own keyset index from the cursor and stops after q.Limit
// rows, so a page deep in the list costs what the first page costs.
func (db *DB) ListImages(ctx context.Context, q cloudimage.ImageQuery) ([]*cloudimage.Image, error) {
	if q.Limit <= 0 {
		return nil, cloudimage.Errorf(cloudimage.EINVALID, "limit must be positive")
	}
	query, args := listQuery(q)
	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	defer rows.Close()
	imgs := make([]*cloudimage.Image, 0, min(q.Limit, 1000))
	for rows.Next() {
		img, err := scanImage(rows)
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, img)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	if q.Tags {
		if err := loadTags(ctx, db.read, imgs); err != nil {
			return nil, err
		}
	}
	return imgs, nil
}

// listQuery returns the SQL and arguments of ListImages: a union of one
// keyset walk per branch of the view, each ordered by its own index.
func listQuery(q cloudimage.ImageQuery) (string, []any) {
	after, args := "", []any{q.Viewer, q.Limit}
	if q.After != nil {
		after = `AND (created_at, id) < (?3, ?4)`
		args = append(args, micros(q.After.CreatedAt), q.After.ID)
	}
	return `SELECT ` + imageColumns + ` FROM (
		SELECT * FROM (SELECT ` + imageColumns + ` FROM images
			WHERE owner = ?1 AND deleted_at IS NULL ` + after + `
			ORDER BY created_at DESC, id DESC LIMIT ?2)
		UNION ALL
		SELECT * FROM (SELECT ` + imageColumns + ` FROM images
			WHERE visibility = 'public' AND deleted_at IS NULL AND owner <> ?1 ` + after + `
			ORDER BY created_at DESC, id DESC LIMIT ?2)
	) ORDER BY created_at DESC, id DESC LIMIT ?2`, args
}

// ImagesInStatus returns up to limit images in status, oldest first.
func (db *DB) ImagesInStatus(ctx context.Context, status cloudimage.Status, limit int) ([]*cloudimage.Image, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+imageColumns+` FROM images
		WHERE status = ? ORDER BY created_at, id LIMIT ?`, string(status), limit)
	if err != nil {
		return nil, fmt.Errorf("list images in status %s: %w", status, err)
	}
	defer rows.Close()
	var imgs []*cloudimage.Image
	for rows.Next() {
		img, err := scanImage(rows)
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, img)
	}
	return imgs, rows.Err()
}
