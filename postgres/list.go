package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/internal/sqlorder"
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
	sqlorder.View(q.Visibility, sqlorder.Branches{Own: own, Visible: visible, Shared: sharedWithViewer})
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
		common = append(common, sqlorder.After(a.arg, sorts, q.After))
	}
	where := func(b listBranch) string {
		return ` FROM ` + b.from + ` WHERE ` + strings.Join(slices.Concat(b.cond, common), " AND ") +
			` ORDER BY ` + sqlorder.OrderBy(sorts, "i.") + ` LIMIT ` + limit
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
		keys[i] = sqlorder.Expr(s.Key, "i.") + " AS " + k
		keyOrder[i] = "p." + k + sqlorder.Direction(s.Desc)
	}
	parts := make([]string, len(branches))
	for i, b := range branches {
		parts[i] = `(SELECT i.id, ` + strings.Join(keys, ", ") + where(b) + `)`
	}
	return `SELECT ` + cols + ` FROM (SELECT * FROM (` + strings.Join(parts, ` UNION ALL `) + `) p` +
		` ORDER BY ` + strings.Join(keyOrder, ", ") + ` LIMIT ` + limit + `) p JOIN images i ON i.id = p.id` +
		` ORDER BY ` + strings.Join(keyOrder, ", "), a, nil
}
