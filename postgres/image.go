package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/jackc/pgx/v5"
)

// Ensure DB implements the store interfaces.
var (
	_ cloudimage.ImageStore    = (*DB)(nil)
	_ cloudimage.IdentityStore = (*DB)(nil)
)

const imageColumns = `id, name, status, visibility, protected, hidden, disk_format, container_format,
	min_disk, min_ram, size, virtual_size, checksum, hash_algo, hash_value, owner, properties,
	created_at, updated_at, deleted_at`

// tagsColumn is the column of an image's tags, in byte order, for the
// images aliased i.
const tagsColumn = `ARRAY(SELECT t.tag FROM image_tags t WHERE t.image_id = i.id ORDER BY t.tag)`

// queryer is what both the pool and a transaction offer for reads.
type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// CreateImage inserts img with its tags.
func (db *DB) CreateImage(ctx context.Context, img *cloudimage.Image) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		return insertImage(ctx, tx, img)
	})
}

func insertImage(ctx context.Context, tx pgx.Tx, img *cloudimage.Image) error {
	args, err := imageArgs(img)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO images (`+imageColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`,
		args...)
	if isUniqueViolation(err) {
		return cloudimage.Errorf(cloudimage.ECONFLICT, "An image with ID %s already exists", img.ID)
	} else if err != nil {
		return fmt.Errorf("insert image %s: %w", img.ID, err)
	}
	return insertTags(ctx, tx, img.ID, img.Tags)
}

func insertTags(ctx context.Context, tx pgx.Tx, id string, tags []string) error {
	if len(tags) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO image_tags (image_id, tag) SELECT $1, unnest($2::text[])
		ON CONFLICT DO NOTHING`, id, tags); err != nil {
		return fmt.Errorf("insert tags of image %s: %w", id, err)
	}
	return nil
}

// imageArgs returns img's columns in the order of imageColumns, or
// EINVALID if one of its texts cannot be stored.
func imageArgs(img *cloudimage.Image) ([]any, error) {
	if err := checkImageText(img); err != nil {
		return nil, err
	}
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

// checkImageText returns EINVALID if a text of img cannot be stored.
func checkImageText(img *cloudimage.Image) error {
	for _, f := range []struct{ name, v string }{
		{"id", img.ID}, {"name", img.Name}, {"status", string(img.Status)},
		{"visibility", string(img.Visibility)}, {"disk_format", img.DiskFormat},
		{"container_format", img.ContainerFormat}, {"checksum", img.Checksum},
		{"hash algorithm", img.HashAlgo}, {"hash", img.HashValue}, {"owner", img.Owner},
	} {
		if !storable(f.v) {
			return unstorable("The image's " + f.name)
		}
	}
	for _, tag := range img.Tags {
		if !storable(tag) {
			return unstorable("A tag")
		}
	}
	for k, v := range img.Properties {
		if !storable(k) || !storable(v) {
			return unstorable("A property")
		}
	}
	return nil
}

// scanImage reads the columns imageColumns names and, if withTags, the
// tags after them.
func scanImage(row pgx.Row, withTags bool) (*cloudimage.Image, error) {
	var (
		img                  cloudimage.Image
		status, visibility   string
		props                []byte
		createdAt, updatedAt int64
		deletedAt            *int64
		tags                 []string
	)
	dest := []any{&img.ID, &img.Name, &status, &visibility, &img.Protected, &img.Hidden,
		&img.DiskFormat, &img.ContainerFormat, &img.MinDisk, &img.MinRAM, &img.Size, &img.VirtualSize,
		&img.Checksum, &img.HashAlgo, &img.HashValue, &img.Owner, &props,
		&createdAt, &updatedAt, &deletedAt}
	if withTags {
		dest = append(dest, &tags)
	}
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	img.Status = cloudimage.Status(status)
	img.Visibility = cloudimage.Visibility(visibility)
	if err := json.Unmarshal(props, &img.Properties); err != nil {
		return nil, fmt.Errorf("properties of image %s: %w", img.ID, err)
	}
	img.CreatedAt = fromMicros(createdAt)
	img.UpdatedAt = fromMicros(updatedAt)
	if deletedAt != nil {
		t := fromMicros(*deletedAt)
		img.DeletedAt = &t
	}
	if withTags {
		img.Tags = tags
		if img.Tags == nil {
			img.Tags = []string{}
		}
	}
	return &img, nil
}

// Image returns the image with the given ID, deleted or not, with its tags.
func (db *DB) Image(ctx context.Context, id string) (*cloudimage.Image, error) {
	return getImage(ctx, db.pool, id, "")
}

// getImage reads an image with its tags. lock is "" or a clause that
// locks the row ("FOR UPDATE"); then the tags are read by a statement of
// their own, once the lock is held: a statement that waited for a lock
// sees the row as the transaction before it left it, but other tables as
// they were when the statement began, without the tags that transaction
// wrote. Without a lock, one statement reads both, from one snapshot.
func getImage(ctx context.Context, q queryer, id, lock string) (*cloudimage.Image, error) {
	if !storable(id) {
		return nil, notFound(pgx.ErrNoRows, "No image found with ID %s", id)
	}
	if lock == "" {
		img, err := scanImage(q.QueryRow(ctx, `SELECT `+qualifiedImageColumns+`, `+tagsColumn+`
			FROM images i WHERE i.id = $1`, id), true)
		if err != nil {
			return nil, notFound(err, "No image found with ID %s", id)
		}
		return img, nil
	}
	row := q.QueryRow(ctx, `SELECT `+imageColumns+` FROM images WHERE id = $1 `+lock, id)
	img, err := scanImage(row, false)
	if err != nil {
		return nil, notFound(err, "No image found with ID %s", id)
	}
	if err := q.QueryRow(ctx, `SELECT ARRAY(SELECT tag FROM image_tags WHERE image_id = $1 ORDER BY tag)`,
		id).Scan(&img.Tags); err != nil {
		return nil, fmt.Errorf("tags of image %s: %w", id, err)
	}
	return img, nil
}

// UpdateImage reads, changes and writes back an image in one transaction,
// with the image's row locked throughout. If the transaction is run again
// after a deadlock, fn is called again, on the image as it is then.
func (db *DB) UpdateImage(ctx context.Context, id string,
	fn func(*cloudimage.Image) error) (*cloudimage.Image, error) {
	return db.UpdateImageWithin(ctx, id, cloudimage.Quotas{}, fn)
}

// UpdateImageWithin is UpdateImage, refused when it would leave the
// image's owner over q.
func (db *DB) UpdateImageWithin(ctx context.Context, id string, q cloudimage.Quotas,
	fn func(*cloudimage.Image) error) (*cloudimage.Image, error) {
	var img *cloudimage.Image
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		if img, err = getImage(ctx, tx, id, "FOR UPDATE"); err != nil {
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
		if err := lockUsage(ctx, tx, img.Owner, q); err != nil {
			return err
		}
		// The ID is the key and stays: the first argument is moved last.
		_, err = tx.Exec(ctx, `UPDATE images SET name = $1, status = $2, visibility = $3,
			protected = $4, hidden = $5, disk_format = $6, container_format = $7, min_disk = $8,
			min_ram = $9, size = $10, virtual_size = $11, checksum = $12, hash_algo = $13, hash_value = $14,
			owner = $15, properties = $16, created_at = $17, updated_at = $18, deleted_at = $19
			WHERE id = $20`, append(args[1:], id)...)
		if err != nil {
			return fmt.Errorf("update image %s: %w", id, err)
		}
		if err := checkUsage(ctx, tx, img.Owner, q); err != nil {
			return err
		}
		if slices.Equal(oldTags, img.Tags) {
			return nil
		}
		if _, err := tx.Exec(ctx, `DELETE FROM image_tags WHERE image_id = $1`, id); err != nil {
			return fmt.Errorf("update tags of image %s: %w", id, err)
		}
		return insertTags(ctx, tx, id, img.Tags)
	})
	if err != nil {
		return nil, err
	}
	return img, nil
}

// InsertImages inserts many images, with their tags, in one transaction
// by COPY: the bulk path that seeds large catalogs for benchmarks and
// migrations. An ID that exists already is ECONFLICT and inserts nothing.
func (db *DB) InsertImages(ctx context.Context, imgs []*cloudimage.Image) error {
	rows := make([][]any, len(imgs))
	var tags [][]any
	for i, img := range imgs {
		args, err := imageArgs(img)
		if err != nil {
			return err
		}
		rows[i] = args
		for _, tag := range slices.Compact(slices.Sorted(slices.Values(img.Tags))) {
			tags = append(tags, []any{img.ID, tag})
		}
	}
	cols := strings.Split(imageColumns, ",")
	for i, c := range cols {
		cols[i] = strings.TrimSpace(c)
	}
	return db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"images"}, cols, pgx.CopyFromRows(rows)); err != nil {
			if isUniqueViolation(err) {
				return cloudimage.Errorf(cloudimage.ECONFLICT, "An image of these already exists")
			}
			return fmt.Errorf("copy images: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"image_tags"}, []string{"image_id", "tag"},
			pgx.CopyFromRows(tags)); err != nil {
			return fmt.Errorf("copy tags: %w", err)
		}
		return nil
	})
}

// ImagesInStatus returns up to limit images in status, oldest first.
func (db *DB) ImagesInStatus(ctx context.Context, status cloudimage.Status,
	limit int) ([]*cloudimage.Image, error) {
	if !storable(string(status)) {
		return nil, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT `+imageColumns+` FROM images
		WHERE status = $1 ORDER BY created_at, id LIMIT $2`, string(status), limit)
	if err != nil {
		return nil, fmt.Errorf("list images in status %s: %w", status, unavailable(err))
	}
	return scanImages(rows, false)
}

// ImagesPendingDeleteBefore returns up to limit pending_delete images
// deleted at or before t, the longest deleted first.
func (db *DB) ImagesPendingDeleteBefore(ctx context.Context, t time.Time,
	limit int) ([]*cloudimage.Image, error) {
	// The status is written out, not bound, so that the planner can use
	// the partial index images_pending_delete.
	rows, err := db.pool.Query(ctx, `SELECT `+imageColumns+` FROM images
		WHERE status = 'pending_delete' AND deleted_at <= $1 ORDER BY deleted_at, id LIMIT $2`, micros(t), limit)
	if err != nil {
		return nil, fmt.Errorf("list images pending delete: %w", unavailable(err))
	}
	return scanImages(rows, false)
}

// scanImages reads every image of rows and closes them.
func scanImages(rows pgx.Rows, withTags bool) ([]*cloudimage.Image, error) {
	defer rows.Close()
	var imgs []*cloudimage.Image
	for rows.Next() {
		img, err := scanImage(rows, withTags)
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, img)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return imgs, nil
}

// qualifiedImageColumns is imageColumns as the alias i names them.
var qualifiedImageColumns = func() string {
	cols := strings.Split(imageColumns, ",")
	for i, c := range cols {
		cols[i] = "i." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}()
