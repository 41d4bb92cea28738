package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/internal/sqlorder"
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

// InsertImages inserts many images, with their tags, in one transaction
// through two statements prepared once: the bulk path that seeds large
// catalogs for benchmarks and tests. An ID that exists already is
// ECONFLICT and inserts nothing.
func (db *DB) InsertImages(ctx context.Context, imgs []*cloudimage.Image) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		insImage, err := tx.PrepareContext(ctx, insertImageSQL)
		if err != nil {
			return fmt.Errorf("prepare image insert: %w", err)
		}
		defer insImage.Close()
		insTag, err := tx.PrepareContext(ctx, insertTagSQL)
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

// The statements that insert an image and one of its tags.
const (
	insertImageSQL = `INSERT INTO images (` + imageColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertTagSQL = `INSERT OR IGNORE INTO image_tags (image_id, tag) VALUES (?, ?)`
)

func insertImage(ctx context.Context, tx *sql.Tx, img *cloudimage.Image) error {
	args, err := imageArgs(img)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, insertImageSQL, args...)
	if isUniqueViolation(err) {
		return cloudimage.Errorf(cloudimage.ECONFLICT, "An image with ID %s already exists", img.ID)
	} else if err != nil {
		return fmt.Errorf("insert image %s: %w", img.ID, err)
	}
	return insertTags(ctx, tx, img.ID, img.Tags)
}

func insertTags(ctx context.Context, tx *sql.Tx, id string, tags []string) error {
	for _, tag := range tags {
		if _, err := tx.ExecContext(ctx, insertTagSQL, id, tag); err != nil {
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
	if img.Properties, err = decodeProperties(props); err != nil {
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

// decodeProperties decodes an image's stored properties, as json.Unmarshal
// into a map would. The store writes them with json.Marshal, which puts
// out no space, and most properties are plain text that it writes as it
// is; such an object is read directly, in a quarter of json.Unmarshal's
// time and with a tenth of its allocations (BenchmarkDecodeProperties),
// and any other text goes to json.Unmarshal.
func decodeProperties(s string) (map[string]string, error) {
	if m, ok := plainProperties(s); ok {
		return m, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, err
	}
	return m, nil
}

// plainProperties decodes s if it is a JSON object of strings with no
// space between tokens and no escape, control character or invalid
// UTF-8 in a string: the only form whose strings are their own text.
func plainProperties(s string) (map[string]string, bool) {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, false
	}
	m := make(map[string]string, strings.Count(s, `":"`))
	rest := s[1 : len(s)-1]
	for rest != "" {
		k, after, ok := plainString(rest)
		if !ok || !strings.HasPrefix(after, ":") {
			return nil, false
		}
		v, after, ok := plainString(after[1:])
		if !ok {
			return nil, false
		}
		m[k] = v
		if after == "" {
			break
		}
		if rest, ok = strings.CutPrefix(after, ","); !ok || rest == "" {
			return nil, false
		}
	}
	return m, true
}

// plainString returns the JSON string that s starts with and the text
// after it, if the string needs no unescaping and is valid UTF-8.
func plainString(s string) (str, rest string, ok bool) {
	if !strings.HasPrefix(s, `"`) {
		return "", "", false
	}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return s[1:i], s[i+1:], utf8.ValidString(s[1:i])
		case c == '\\' || c < 0x20:
			return "", "", false
		}
	}
	return "", "", false
}

// Image returns the image with the given ID, deleted or not, with its tags.
func (db *DB) Image(ctx context.Context, id string) (*cloudimage.Image, error) {
	return getImage(ctx, db.stmts, id)
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

// The statements that read the tags of one image and of many. The many
// are bound as one JSON array rather than a parameter each, so that the
// text stays the same whatever their number and is prepared once.
const (
	tagsOfImageSQL  = `SELECT image_id, tag FROM image_tags WHERE image_id = ? ORDER BY tag`
	tagsOfImagesSQL = `SELECT image_id, tag FROM image_tags
		WHERE image_id IN (SELECT value FROM json_each(?)) ORDER BY image_id, tag`
)

// loadTags fills in the tags of imgs with one query.
func loadTags(ctx context.Context, q queryer, imgs []*cloudimage.Image) error {
	if len(imgs) == 0 {
		return nil
	}
	byID := make(map[string]*cloudimage.Image, len(imgs))
	ids := make([]string, len(imgs))
	for i, img := range imgs {
		img.Tags = []string{}
		byID[img.ID] = img
		ids[i] = img.ID
	}
	var rows *sql.Rows
	var err error
	if len(ids) == 1 {
		rows, err = q.QueryContext(ctx, tagsOfImageSQL, ids[0])
	} else {
		var arg []byte
		if arg, err = json.Marshal(ids); err != nil {
			return fmt.Errorf("load tags: %w", err)
		}
		rows, err = q.QueryContext(ctx, tagsOfImagesSQL, string(arg))
	}
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
	return db.UpdateImageWithin(ctx, id, cloudimage.Quotas{}, fn)
}

// UpdateImageWithin is UpdateImage, refused when it would leave the
// image's owner over q.
func (db *DB) UpdateImageWithin(ctx context.Context, id string, q cloudimage.Quotas,
	fn func(*cloudimage.Image) error) (*cloudimage.Image, error) {
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
		if err := checkUsage(ctx, tx, img.Owner, q); err != nil {
			return err
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

// ListImages returns one page of a project's view: the images q selects,
// in q's order, strictly after q.After. The view is a union of branches
// (the project's own images, public ones, community ones, those shared
// with it); each branch walks from the marker on its own and stops after
// q.Limit rows, so that in the default order, where each branch has an
// index in that order, a page deep in the list costs what the first costs.
func (db *DB) ListImages(ctx context.Context, q cloudimage.ImageQuery) ([]*cloudimage.Image, error) {
	if q.Limit <= 0 {
		return nil, cloudimage.Errorf(cloudimage.EINVALID, "limit must be positive")
	}
	query, args, err := listQuery(q)
	if err != nil {
		return nil, err
	}
	imgs := make([]*cloudimage.Image, 0, min(q.Limit, 1000))
	if query == "" { // no branch of the view can match
		return imgs, nil
	}
	rows, err := db.stmts.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	defer rows.Close()
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
		if err := loadTags(ctx, db.stmts, imgs); err != nil {
			return nil, err
		}
	}
	return imgs, nil
}

// qualifiedImageColumns is imageColumns as the alias i names them, for
// the branches of a list, which may join another table.
var qualifiedImageColumns = func() string {
	cols := strings.Split(imageColumns, ",")
	for i, c := range cols {
		cols[i] = "i." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}()

// sqlArgs collects the arguments of a statement; arg returns the numbered
// parameter that binds v, so that text may name one argument many times.
type sqlArgs []any

func (a *sqlArgs) arg(v any) string {
	*a = append(*a, v)
	return "?" + strconv.Itoa(len(*a))
}

// in returns "expr IN (?, ...)" binding vals.
func in[T ~string](a *sqlArgs, expr string, vals []T) string {
	ps := make([]string, len(vals))
	for i, v := range vals {
		ps[i] = a.arg(string(v))
	}
	return expr + " IN (" + strings.Join(ps, ", ") + ")"
}

// sqlBool returns the literal of b as SQLite stores it.
func sqlBool(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// timeOps maps the time filters' operators to SQL.
var timeOps = map[cloudimage.CompareOp]string{
	cloudimage.OpEq: "=", cloudimage.OpNeq: "<>", cloudimage.OpGt: ">",
	cloudimage.OpGte: ">=", cloudimage.OpLt: "<", cloudimage.OpLte: "<=",
}

// filterConds returns the conditions of f on the images aliased i.
func filterConds(a *sqlArgs, f cloudimage.ImageFilter) ([]string, error) {
	var conds []string
	if len(f.IDs) > 0 {
		conds = append(conds, in(a, "i.id", f.IDs))
	}
	if len(f.Names) > 0 {
		conds = append(conds, in(a, "i.name", f.Names))
	}
	if len(f.Statuses) > 0 {
		conds = append(conds, in(a, "i.status", f.Statuses))
	} else {
		conds = append(conds, "i.status <> '"+string(cloudimage.StatusKilled)+"'")
	}
	if len(f.ContainerFormats) > 0 {
		conds = append(conds, in(a, "i.container_format", f.ContainerFormats))
	}
	if len(f.DiskFormats) > 0 {
		conds = append(conds, in(a, "i.disk_format", f.DiskFormats))
	}
	if f.Owner != "" {
		conds = append(conds, "i.owner = "+a.arg(f.Owner))
	}
	// A NULL size fails both comparisons: an image without data has no size.
	if f.SizeMin != nil {
		conds = append(conds, "i.size >= "+a.arg(*f.SizeMin))
	}
	if f.SizeMax != nil {
		conds = append(conds, "i.size <= "+a.arg(*f.SizeMax))
	}
	// The Booleans choose between fixed texts rather than bind: SQLite
	// compiles a statement again when a value it planned with is bound,
	// and it does so for these.
	if f.Protected != nil {
		conds = append(conds, "i.protected = "+sqlBool(*f.Protected))
	}
	conds = append(conds, "i.hidden = "+sqlBool(f.Hidden != nil && *f.Hidden))
	for _, tag := range f.Tags {
		conds = append(conds, "EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = i.id AND t.tag = "+a.arg(tag)+")")
	}
	for _, k := range slices.Sorted(maps.Keys(f.Properties)) {
		conds = append(conds, "EXISTS (SELECT 1 FROM json_each(i.properties) p WHERE p.key = "+
			a.arg(k)+" AND p.value = "+a.arg(f.Properties[k])+")")
	}
	for _, tf := range []struct {
		col     string
		filters []cloudimage.TimeFilter
	}{{"i.created_at", f.CreatedAt}, {"i.updated_at", f.UpdatedAt}} {
		for _, tc := range tf.filters {
			op, ok := timeOps[tc.Op]
			if !ok {
				return nil, cloudimage.Errorf(cloudimage.EINVALID, "Invalid operator: %s", tc.Op)
			}
			// Compared as stored, in microseconds: a finer filter time is
			// truncated to its microsecond.
			conds = append(conds, tf.col+" "+op+" "+a.arg(micros(tc.Time)))
		}
	}
	return conds, nil
}

// listBranch is one part of a list's view.
type listBranch struct {
	from string   // "images i", or a join that yields i
	cond []string // what selects the branch's images
}

// listQuery returns the SQL and arguments of ListImages, or no SQL when no
// branch of the view can match. Caller strings only ever reach the
// statement as bound arguments.
func listQuery(q cloudimage.ImageQuery) (string, []any, error) {
	if !q.Visibility.Valid() {
		return "", nil, cloudimage.Errorf(cloudimage.EINVALID, "Invalid visibility value: %s", q.Visibility)
	}
	ms := q.MemberStatus
	if ms == "" {
		ms = cloudimage.MemberAccepted
	} else if ms != cloudimage.MemberAny && !ms.Valid() {
		return "", nil, cloudimage.Errorf(cloudimage.EINVALID, "Invalid status value: %s", ms)
	}
	sorts, err := sqlorder.Total(q.Sort)
	if err != nil {
		return "", nil, err
	}
	var a sqlArgs
	viewer := a.arg(q.Viewer)
	// The limit is written out, not bound: SQLite plans with a bound
	// LIMIT's value and compiles the statement again whenever another
	// value is bound, so that clients alternating page sizes would undo
	// the prepared-statement cache. Each page size is a text of its own;
	// clients use few. It is an int, so its text is digits only.
	limit := strconv.Itoa(q.Limit)

	// The branches. A branch of the viewer's own images is left out when
	// the owner filter names someone else, and a branch of other projects'
	// images when it names the viewer: SQLite would walk such a branch's
	// index to the end to find nothing.
	mine := q.Filter.Owner == "" || q.Filter.Owner == q.Viewer
	theirs := q.Filter.Owner != q.Viewer
	var branches []listBranch
	own := func(vis ...cloudimage.Visibility) {
		if mine {
			cond := []string{"i.owner = " + viewer}
			for _, v := range vis {
				cond = append(cond, "i.visibility = '"+string(v)+"'")
			}
			branches = append(branches, listBranch{"images i", cond})
		}
	}
	visible := func(v cloudimage.Visibility, othersOnly bool) {
		cond := []string{"i.visibility = '" + string(v) + "'"}
		if othersOnly {
			if !theirs {
				return
			}
			cond = append(cond, "i.owner <> "+viewer)
		}
		branches = append(branches, listBranch{"images i", cond})
	}
	sharedWithViewer := func() {
		if !theirs {
			return
		}
		// CROSS JOIN keeps image_members the outer loop: the branch reads
		// the viewer's memberships rather than every shared image.
		cond := []string{"m.member = " + viewer}
		if ms != cloudimage.MemberAny {
			cond = append(cond, "m.status = "+a.arg(string(ms)))
		}
		cond = append(cond, "i.id = m.image_id",
			"i.visibility = '"+string(cloudimage.VisibilityShared)+"'", "i.owner <> "+viewer)
		branches = append(branches, listBranch{"image_members m CROSS JOIN images i", cond})
	}
	sqlorder.View(q.Visibility, sqlorder.Branches{Own: own, Visible: visible, Shared: sharedWithViewer})
	if len(branches) == 0 {
		return "", nil, nil
	}

	// The conditions every branch shares, with their arguments bound once.
	common := []string{"i.deleted_at IS NULL"}
	filters, err := filterConds(&a, q.Filter)
	if err != nil {
		return "", nil, err
	}
	common = append(common, filters...)
	if q.After != nil {
		common = append(common, sqlorder.After(a.arg, sorts, q.After))
	}

	where := func(b listBranch) string {
		return ` FROM ` + b.from + ` WHERE ` + strings.Join(slices.Concat(b.cond, common), " AND ") +
			` ORDER BY ` + sqlorder.OrderBy(sorts, "i.") + ` LIMIT ` + limit
	}
	if len(branches) == 1 {
		return `SELECT ` + qualifiedImageColumns + where(branches[0]), a, nil
	}
	// Several branches: each yields the IDs and sort keys of its first
	// rows, the union keeps the first of those, and only they are read
	// whole. Carrying every column through the union costs SQLite more to
	// compile than the whole query costs to run.
	keys := make([]string, len(sorts))
	for i, s := range sorts {
		keys[i] = sqlorder.Expr(s.Key, "i.") + " AS k" + strconv.Itoa(i)
	}
	keyOrder := func(prefix string) string {
		terms := make([]string, len(sorts))
		for i, s := range sorts {
			terms[i] = prefix + "k" + strconv.Itoa(i)
			if s.Desc {
				terms[i] += " DESC"
			}
		}
		return strings.Join(terms, ", ")
	}
	parts := make([]string, len(branches))
	for i, b := range branches {
		parts[i] = `SELECT * FROM (SELECT i.id, ` + strings.Join(keys, ", ") + where(b) + `)`
	}
	return `SELECT ` + qualifiedImageColumns + ` FROM (` + strings.Join(parts, ` UNION ALL `) +
		` ORDER BY ` + keyOrder("") + ` LIMIT ` + limit + `) p CROSS JOIN images i ON i.id = p.id` +
		` ORDER BY ` + keyOrder("p."), a, nil
}

// ImagesInStatus returns up to limit images in status, oldest first.
func (db *DB) ImagesInStatus(ctx context.Context, status cloudimage.Status, limit int) ([]*cloudimage.Image, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+imageColumns+` FROM images
		WHERE status = ? ORDER BY created_at, id LIMIT ?`, string(status), limit)
	if err != nil {
		return nil, fmt.Errorf("list images in status %s: %w", status, err)
	}
	return scanImages(rows)
}

// ImagesPendingDeleteBefore returns up to limit pending_delete images
// deleted at or before t, the longest deleted first.
func (db *DB) ImagesPendingDeleteBefore(ctx context.Context, t time.Time, limit int) ([]*cloudimage.Image, error) {
	// The status is written out, not bound, so that the planner can use
	// the partial index images_pending_delete.
	rows, err := db.read.QueryContext(ctx, `SELECT `+imageColumns+` FROM images
		WHERE status = 'pending_delete' AND deleted_at <= ? ORDER BY deleted_at, id LIMIT ?`, micros(t), limit)
	if err != nil {
		return nil, fmt.Errorf("list images pending delete: %w", err)
	}
	return scanImages(rows)
}

// scanImages reads every image of rows and closes them.
func scanImages(rows *sql.Rows) ([]*cloudimage.Image, error) {
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
