package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cloudimage/cloudimage"
	"github.com/jackc/pgx/v5"
)

// ListImages returns one page of a project's view: the images q selects,
// in q's order, strictly after q.After. The view is a union of branches
// (the project's own images, public ones, community ones, those shared
// with it); each branch walks from the marker on its own and stops after
// q.Limit rows, so that in an order that has an index for each branch (the
// default, and by name), a page deep in the list costs what the first
// costs. The page comes from one statement, so from one snapshot.
func (db *DB) ListImages(ctx context.Context, q cloudimage.ImageQuery) ([]*cloudimage.Image, error) {
	if q.Limit <= 0 {
		return nil, cloudimage.Errorf(cloudimage.EINVALID, "limit must be positive")
	}
	query, args, err := listQuery(q)
	if err != nil {
		return nil, err
	}
	if query == "" { // no branch of the view can match
		return []*cloudimage.Image{}, nil
	}
	rows, err := db.pool.Query(ctx, query, append([]any{listExecMode}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", unavailable(err))
	}
	imgs, err := scanImages(rows, q.Tags)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	if imgs == nil {
		imgs = []*cloudimage.Image{}
	}
	return imgs, nil
}

// listExecMode is how ListImages runs its statement: unprepared, so that
// it is planned for its arguments each time, not once for any (how
// selective owner = $1 is differs from one project to the next), and so
// that the many shapes a list takes do not fill the statement cache.
const listExecMode = pgx.QueryExecModeExec

// sortExpr returns the SQL expression that key sorts by, its columns
// prefixed with prefix ("i." inside a branch). Keys come only from this
// fixed list.
func sortExpr(key cloudimage.SortKey, prefix string) string {
	switch key {
	case cloudimage.SortSize:
		return "COALESCE(" + prefix + "size, -1)"
	case cloudimage.SortName, cloudimage.SortStatus, cloudimage.SortContainerFormat,
		cloudimage.SortDiskFormat, cloudimage.SortID, cloudimage.SortCreatedAt, cloudimage.SortUpdatedAt:
		return prefix + string(key)
	}
	panic("postgres: unknown sort key " + string(key))
}

// sortValue returns img's value of key as stored and as sortExpr sorts it.
func sortValue(img *cloudimage.Image, key cloudimage.SortKey) any {
	switch key {
	case cloudimage.SortName:
		return img.Name
	case cloudimage.SortStatus:
		return string(img.Status)
	case cloudimage.SortContainerFormat:
		return img.ContainerFormat
	case cloudimage.SortDiskFormat:
		return img.DiskFormat
	case cloudimage.SortSize:
		if img.Size == nil {
			return int64(-1)
		}
		return *img.Size
	case cloudimage.SortID:
		return img.ID
	case cloudimage.SortCreatedAt:
		return micros(img.CreatedAt)
	case cloudimage.SortUpdatedAt:
		return micros(img.UpdatedAt)
	}
	panic("postgres: unknown sort key " + string(key))
}

// listSort checks sorts and makes the order total: empty means the
// default order, a repeated key adds nothing, and an order without id
// ends with it, in the direction of the last key.
func listSort(sorts []cloudimage.Sort) ([]cloudimage.Sort, error) {
	if len(sorts) == 0 {
		return cloudimage.DefaultSort, nil
	}
	out := make([]cloudimage.Sort, 0, len(sorts)+1)
	for _, s := range sorts {
		if !s.Key.Valid() {
			return nil, cloudimage.Errorf(cloudimage.EINVALID, "Invalid sort key: %s", s.Key)
		}
		if !slices.ContainsFunc(out, func(o cloudimage.Sort) bool { return o.Key == s.Key }) {
			out = append(out, s)
		}
	}
	if !slices.ContainsFunc(out, func(o cloudimage.Sort) bool { return o.Key == cloudimage.SortID }) {
		out = append(out, cloudimage.Sort{Key: cloudimage.SortID, Desc: out[len(out)-1].Desc})
	}
	return out, nil
}

// direction returns the SQL of a sort direction.
func direction(desc bool) string {
	if desc {
		return " DESC"
	}
	return " ASC"
}

// sqlArgs collects the arguments of a statement; arg returns the numbered
// parameter that binds v, so that text may name one argument many times.
type sqlArgs []any

func (a *sqlArgs) arg(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// in returns "expr = ANY($n)" binding the values of vals that can be
// stored, and ok false if none can: then nothing matches.
func in[T ~string](a *sqlArgs, expr string, vals []T) (cond string, ok bool) {
	var keep []string
	for _, v := range vals {
		if storable(string(v)) {
			keep = append(keep, string(v))
		}
	}
	if len(keep) == 0 {
		return "", false
	}
	return expr + " = ANY(" + a.arg(keep) + "::text[])", true
}

// timeOps maps the time filters' operators to SQL.
var timeOps = map[cloudimage.CompareOp]string{
	cloudimage.OpEq: "=", cloudimage.OpNeq: "<>", cloudimage.OpGt: ">",
	cloudimage.OpGte: ">=", cloudimage.OpLt: "<", cloudimage.OpLte: "<=",
}

// filterConds returns the conditions of f on the images aliased i, and ok
// false when f can match nothing because it names a text that cannot be
// stored.
func filterConds(a *sqlArgs, f cloudimage.ImageFilter) (conds []string, ok bool, err error) {
	for _, l := range []struct {
		expr string
		vals []string
	}{
		{"i.id", f.IDs}, {"i.name", f.Names},
		{"i.container_format", f.ContainerFormats}, {"i.disk_format", f.DiskFormats},
	} {
		if len(l.vals) == 0 {
			continue
		}
		cond, ok := in(a, l.expr, l.vals)
		if !ok {
			return nil, false, nil
		}
		conds = append(conds, cond)
	}
	if len(f.Statuses) > 0 {
		cond, ok := in(a, "i.status", f.Statuses)
		if !ok {
			return nil, false, nil
		}
		conds = append(conds, cond)
	} else {
		conds = append(conds, "i.status <> '"+string(cloudimage.StatusKilled)+"'")
	}
	if f.Owner != "" {
		if !storable(f.Owner) {
			return nil, false, nil
		}
		conds = append(conds, "i.owner = "+a.arg(f.Owner))
	}
	// A NULL size fails both comparisons: an image without data has no size.
	if f.SizeMin != nil {
		conds = append(conds, "i.size >= "+a.arg(*f.SizeMin))
	}
	if f.SizeMax != nil {
		conds = append(conds, "i.size <= "+a.arg(*f.SizeMax))
	}
	if f.Protected != nil {
		conds = append(conds, "i.protected = "+strconv.FormatBool(*f.Protected))
	}
	conds = append(conds, "i.hidden = "+strconv.FormatBool(f.Hidden != nil && *f.Hidden))
	for _, tag := range slices.Compact(slices.Sorted(slices.Values(f.Tags))) {
		if !storable(tag) {
			return nil, false, nil
		}
		conds = append(conds, "EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = i.id AND t.tag = "+a.arg(tag)+")")
	}
	if len(f.Properties) > 0 {
		for k, v := range f.Properties {
			if !storable(k) || !storable(v) {
				return nil, false, nil
			}
		}
		// One containment test of every property, which the GIN index
		// images_properties answers.
		pj, err := json.Marshal(f.Properties)
		if err != nil {
			return nil, false, err
		}
		conds = append(conds, "i.properties @> "+a.arg(string(pj))+"::jsonb")
	}
	for _, tf := range []struct {
		col     string
		filters []cloudimage.TimeFilter
	}{{"i.created_at", f.CreatedAt}, {"i.updated_at", f.UpdatedAt}} {
		for _, tc := range tf.filters {
			op, ok := timeOps[tc.Op]
			if !ok {
				return nil, false, cloudimage.Errorf(cloudimage.EINVALID, "Invalid operator: %s", tc.Op)
			}
			// Compared as stored, in microseconds: a finer filter time is
			// truncated to its microsecond.
			conds = append(conds, tf.col+" "+op+" "+a.arg(micros(tc.Time)))
		}
	}
	return conds, true, nil
}

// afterCond returns the condition of the rows strictly after marker in
// the order sorts. One direction throughout is a row-value comparison,
// which an index in that order answers with a range; mixed directions
// expand lexicographically, each level bounding its key first:
// k1 >= v1 AND (k1 > v1 OR (k2 <= v2 AND (k2 < v2 OR ...))).
func afterCond(a *sqlArgs, sorts []cloudimage.Sort, marker *cloudimage.Image) string {
	vals := make([]string, len(sorts))
	exprs := make([]string, len(sorts))
	mixed := false
	for i, s := range sorts {
		vals[i] = a.arg(sortValue(marker, s.Key))
		exprs[i] = sortExpr(s.Key, "i.")
		mixed = mixed || s.Desc != sorts[0].Desc
	}
	op := func(desc bool) string {
		if desc {
			return "<"
		}
		return ">"
	}
	if !mixed {
		return "(" + strings.Join(exprs, ", ") + ") " + op(sorts[0].Desc) + " (" + strings.Join(vals, ", ") + ")"
	}
	last := len(sorts) - 1
	cond := exprs[last] + " " + op(sorts[last].Desc) + " " + vals[last]
	for i := last - 1; i >= 0; i-- {
		o := op(sorts[i].Desc)
		cond = exprs[i] + " " + o + "= " + vals[i] +
			" AND (" + exprs[i] + " " + o + " " + vals[i] + " OR (" + cond + "))"
	}
	return "(" + cond + ")"
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
	sorts, err := listSort(q.Sort)
	if err != nil {
		return "", nil, err
	}
	var a sqlArgs
	// The viewer is bound once, when a branch names it first: PostgreSQL
	// refuses an argument that the statement does not use.
	var viewerParam string
	viewer := func() string {
		if viewerParam == "" {
			viewerParam = a.arg(q.Viewer)
		}
		return viewerParam
	}
	limit := strconv.Itoa(q.Limit) // an int: digits only

	// The branches. A branch of the viewer's own images is left out when
	// the owner filter names someone else, and a branch of other projects'
	// images when it names the viewer: it could only walk its index to
	// the end to find nothing.
	// A viewer that PostgreSQL cannot store is no project: it owns nothing
	// and is no member, and every image is another's.
	stranger := !storable(q.Viewer)
	mine := (q.Filter.Owner == "" || q.Filter.Owner == q.Viewer) && !stranger
	theirs := q.Filter.Owner != q.Viewer
	var branches []listBranch
	own := func(vis ...cloudimage.Visibility) {
		if mine {
			cond := []string{"i.owner = " + viewer()}
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
			if !stranger {
				cond = append(cond, "i.owner <> "+viewer())
			}
		}
		branches = append(branches, listBranch{"images i", cond})
	}
	sharedWithViewer := func() {
		if !theirs || stranger {
			return
		}
		// The branch reads the viewer's memberships and then their images,
		// rather than walking every shared image.
		cond := []string{"m.member = " + viewer()}
		if ms != cloudimage.MemberAny {
			cond = append(cond, "m.status = "+a.arg(string(ms)))
		}
		cond = append(cond, "i.visibility = '"+string(cloudimage.VisibilityShared)+"'", "i.owner <> "+viewer())
		branches = append(branches, listBranch{"image_members m JOIN images i ON i.id = m.image_id", cond})
	}
	switch q.Visibility {
	case cloudimage.ListDefault, cloudimage.ListAll:
		own()
		visible(cloudimage.VisibilityPublic, true)
		if q.Visibility == cloudimage.ListAll {
			visible(cloudimage.VisibilityCommunity, true)
		}
		sharedWithViewer()
	case cloudimage.ListPublic:
		visible(cloudimage.VisibilityPublic, false)
	case cloudimage.ListCommunity:
		visible(cloudimage.VisibilityCommunity, false)
	case cloudimage.ListShared:
		own(cloudimage.VisibilityShared)
		sharedWithViewer()
	case cloudimage.ListPrivate:
		own(cloudimage.VisibilityPrivate)
	}
	if len(branches) == 0 {
		return "", nil, nil
	}

	// The conditions every branch shares, with their arguments bound once.
	common := []string{"i.deleted_at IS NULL"}
	filters, ok, err := filterConds(&a, q.Filter)
	if err != nil {
		return "", nil, err
	} else if !ok {
		return "", nil, nil
	}
	common = append(common, filters...)
	if q.After != nil {
		common = append(common, afterCond(&a, sorts, q.After))
	}
	order := make([]string, len(sorts))
	for i, s := range sorts {
		order[i] = sortExpr(s.Key, "i.") + direction(s.Desc)
	}
	where := func(b listBranch) string {
		return ` FROM ` + b.from + ` WHERE ` + strings.Join(slices.Concat(b.cond, common), " AND ") +
			` ORDER BY ` + strings.Join(order, ", ") + ` LIMIT ` + limit
	}
	cols := qualifiedImageColumns
	if q.Tags {
		cols += ", " + tagsColumn
	}
	if len(branches) == 1 {
		return `SELECT ` + cols + where(branches[0]), a, nil
	}
	// Several branches: each yields the IDs and sort keys of its first
	// rows, the union keeps the first of those, and only they are read
	// whole.
	keys := make([]string, len(sorts))
	keyOrder := make([]string, len(sorts))
	for i, s := range sorts {
		k := "k" + strconv.Itoa(i)
		keys[i] = sortExpr(s.Key, "i.") + " AS " + k
		keyOrder[i] = "p." + k + direction(s.Desc)
	}
	parts := make([]string, len(branches))
	for i, b := range branches {
		parts[i] = `(SELECT i.id, ` + strings.Join(keys, ", ") + where(b) + `)`
	}
	return `SELECT ` + cols + ` FROM (SELECT * FROM (` + strings.Join(parts, ` UNION ALL `) + `) p` +
		` ORDER BY ` + strings.Join(keyOrder, ", ") + ` LIMIT ` + limit + `) p JOIN images i ON i.id = p.id` +
		` ORDER BY ` + strings.Join(keyOrder, ", "), a, nil
}
