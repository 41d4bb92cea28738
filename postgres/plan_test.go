package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/jackc/pgx/v5"
)

// planNode is one node of a plan as EXPLAIN (FORMAT JSON) gives it.
type planNode struct {
	NodeType     string     `json:"Node Type"`
	RelationName string     `json:"Relation Name"`
	IndexName    string     `json:"Index Name"`
	Alias        string     `json:"Alias"`
	IndexCond    string     `json:"Index Cond"`
	ActualRows   float64    `json:"Actual Rows"`
	ActualLoops  float64    `json:"Actual Loops"`
	Plans        []planNode `json:"Plans"`
}

// walk calls fn on n and every node below it.
func (n *planNode) walk(fn func(*planNode)) {
	fn(n)
	for i := range n.Plans {
		n.Plans[i].walk(fn)
	}
}

// String sums the plan up, one node a line, for failure messages.
func (n *planNode) String() string {
	var b strings.Builder
	var write func(n *planNode, depth int)
	write = func(n *planNode, depth int) {
		fmt.Fprintf(&b, "%s%s", strings.Repeat("  ", depth), n.NodeType)
		if n.RelationName != "" {
			fmt.Fprintf(&b, " on %s %s", n.RelationName, n.Alias)
		}
		if n.IndexName != "" {
			fmt.Fprintf(&b, " using %s", n.IndexName)
		}
		if n.IndexCond != "" {
			fmt.Fprintf(&b, " (%s)", n.IndexCond)
		}
		fmt.Fprintf(&b, " rows=%g loops=%g\n", n.ActualRows, n.ActualLoops)
		for i := range n.Plans {
			write(&n.Plans[i], depth+1)
		}
	}
	write(n, 0)
	return b.String()
}

// explain runs the statement ListImages would run for q under EXPLAIN
// ANALYZE, as ListImages runs it (planned for its arguments), and returns
// the plan.
func explain(t *testing.T, db *DB, q cloudimage.ImageQuery) *planNode {
	t.Helper()
	query, args, err := listQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	if query == "" {
		t.Fatalf("no statement for %+v", q)
	}
	var out []byte
	err = db.pool.QueryRow(context.Background(), "EXPLAIN (ANALYZE, FORMAT JSON) "+query,
		append([]any{listExecMode}, args...)...).Scan(&out)
	if err != nil {
		t.Fatalf("explain: %v\n%s", err, query)
	}
	var plans []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal(out, &plans); err != nil || len(plans) != 1 {
		t.Fatalf("plan %s: %v", out, err)
	}
	return &plans[0].Plan
}

// catalog is the seeded database of the plan tests, shared by them: it
// takes a while to build.
var catalog struct {
	once sync.Once
	db   *DB
	imgs []*cloudimage.Image
	err  error
}

// seedCatalog returns a database of 100,000 images shaped as the v1.0
// benchmark's catalog: most are project a's (half of them shared), one
// in twenty is b's and public, one in a thousand is b's and shared with
// a; 20,000 memberships of a's shared images are other tenants'; one in seven is queued rather than active, one in ten is tagged
// "gpu". The database lives until the test binary ends.
func seedCatalog(t testing.TB) (*DB, []*cloudimage.Image) {
	t.Helper()
	dsn := adminDSN(t)
	catalog.once.Do(func() {
		catalog.db, catalog.imgs, catalog.err = buildCatalog(dsn)
	})
	if catalog.err != nil {
		t.Fatal(catalog.err)
	}
	return catalog.db, catalog.imgs
}

func buildCatalog(admin string) (*DB, []*cloudimage.Image, error) {
	ctx := context.Background()
	// The database outlives the test that first asks for it: freshDatabase
	// needs a test to drop it, so the plan tests' shared one is dropped
	// by TestMain's cleanup instead.
	name, err := createDatabase(ctx, admin)
	if err != nil {
		return nil, nil, err
	}
	sharedDatabases = append(sharedDatabases, name)
	db, err := Open(ctx, dsnWithDatabase(admin, name))
	if err != nil {
		return nil, nil, err
	}
	for _, p := range []string{"a", "b"} {
		if err := db.CreateProject(ctx, &cloudimage.Project{ID: p, Name: p, AppKey: p}); err != nil {
			return nil, nil, err
		}
	}
	base := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	const n = 100_000
	imgs := make([]*cloudimage.Image, n)
	for i := range imgs {
		owner, vis := "a", cloudimage.VisibilityPrivate
		switch {
		case i%20 == 0:
			owner, vis = "b", cloudimage.VisibilityPublic
		case i%1000 == 1:
			owner, vis = "b", cloudimage.VisibilityShared
		case i%2 == 0:
			vis = cloudimage.VisibilityShared
		}
		status := cloudimage.StatusActive
		if i%7 == 0 {
			status = cloudimage.StatusQueued
		}
		var tags []string
		if i%10 == 3 {
			tags = []string{"gpu"}
		}
		size := int64(1<<30 + i)
		imgs[i] = &cloudimage.Image{
			ID: fmt.Sprintf("%08d-0000-4000-8000-000000000000", i), Name: fmt.Sprintf("image-%06d", i%5000),
			Status: status, Visibility: vis, DiskFormat: "qcow2", ContainerFormat: "bare",
			Size: &size, Owner: owner, Tags: tags, Properties: map[string]string{"os_type": "linux"},
			CreatedAt: base.Add(time.Duration(i) * time.Microsecond), UpdatedAt: base,
		}
	}
	if err := db.InsertImages(ctx, imgs); err != nil {
		return nil, nil, err
	}
	// a is a member of b's shared images; a's shared images have members
	// of their own, many more than a's memberships.
	var members [][]any
	for i, img := range imgs {
		switch {
		case i%1000 == 1:
			members = append(members, []any{img.ID, "a", string(cloudimage.MemberAccepted), int64(0), int64(0)})
		case i%20 == 2:
			for j := range 4 {
				members = append(members, []any{img.ID, fmt.Sprintf("tenant-%d", (i+j)%97),
					string(cloudimage.MemberPending), int64(0), int64(0)})
			}
		}
	}
	if _, err := db.pool.CopyFrom(ctx, pgx.Identifier{"image_members"}, strings.Split(memberColumns, ", "),
		pgx.CopyFromRows(members)); err != nil {
		return nil, nil, err
	}
	if _, err := db.pool.Exec(ctx, `ANALYZE`); err != nil {
		return nil, nil, err
	}
	return db, imgs, nil
}

// TestListQueryPlan checks, under EXPLAIN ANALYZE over 100,000 images
// with statistics, the plans of the lists the v1.0 and v2 APIs make
// most, first pages and deep ones:
//
//   - no sequential scan of images or image_members: the shared-with-me
//     branch reads the viewer's memberships by index;
//   - images are read only by the keyset indexes of the list's order, and
//     by the primary key for the rows of the page;
//   - without a filter, each branch walks its index in the list's order:
//     no bitmap scan of images and no sort of more than a page (or of the
//     viewer's hundred memberships), so a deep page costs what the first
//     does;
//   - with a filter, no step reads more than a tenth of the table.
func TestListQueryPlan(t *testing.T) {
	db, imgs := seedCatalog(t)
	byName := cloudimage.CompleteSort([]cloudimage.Sort{{Key: cloudimage.SortName}}, false)
	byNameDesc := cloudimage.CompleteSort([]cloudimage.Sort{{Key: cloudimage.SortName, Desc: true}}, true)
	gpu := cloudimage.ImageFilter{Statuses: []cloudimage.Status{cloudimage.StatusActive}, Tags: []string{"gpu"}}
	deep := imgs[10_000]
	byDefault := []string{"images_owner_order", "images_visibility_order", "images_owner_visibility_order"}
	byNameIndexes := []string{"images_owner_name_order", "images_visibility_name_order"}
	type query = cloudimage.ImageQuery
	all, shared := cloudimage.ListAll, cloudimage.ListShared
	private, public := cloudimage.ListPrivate, cloudimage.ListPublic
	for _, c := range []struct {
		name     string
		q        query
		indexes  []string // the indexes that scans of images may use, besides the primary key
		filtered bool     // the filter drops rows as branches walk
	}{
		{"v1.0 first page", query{Viewer: "a", Limit: 100}, byDefault, false},
		{"v2 first page with tags", query{Viewer: "a", Limit: 25, Tags: true}, byDefault, false},
		{"deep page", query{Viewer: "a", Limit: 100, After: deep}, byDefault, false},
		{"active with a tag", query{Viewer: "a", Limit: 100, Filter: gpu}, byDefault, true},
		{"active with a tag, deep page", query{Viewer: "a", Limit: 100, Filter: gpu, After: deep}, byDefault, true},
		{"by name", query{Viewer: "a", Limit: 100, Sort: byName}, byNameIndexes, false},
		{"by name, deep page", query{Viewer: "a", Limit: 100, Sort: byName, After: deep}, byNameIndexes, false},
		{"by name descending, deep page", query{Viewer: "a", Limit: 100, Sort: byNameDesc, After: deep},
			byNameIndexes, false},
		{"all, any member status", query{Viewer: "a", Limit: 100, Visibility: all,
			MemberStatus: cloudimage.MemberAny, After: deep}, byDefault, false},
		{"shared", query{Viewer: "a", Limit: 100, Visibility: shared, After: deep}, byDefault, false},
		{"private", query{Viewer: "a", Limit: 100, Visibility: private, After: deep}, byDefault, false},
		{"public", query{Viewer: "a", Limit: 100, Visibility: public, After: deep}, byDefault, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			plan := explain(t, db, c.q)
			const memberships = 100 // a's, in the catalog
			maxSort := float64(max(c.q.Limit, memberships))
			maxRows := float64(len(imgs) / 10)
			plan.walk(func(n *planNode) {
				switch {
				case n.NodeType == "Seq Scan" && (n.RelationName == "images" || n.RelationName == "image_members"):
					t.Errorf("plan scans %s:\n%s", n.RelationName, plan)
				case strings.HasPrefix(n.IndexName, "images_") && n.IndexName != "images_pkey" &&
					!slices.Contains(c.indexes, n.IndexName):
					t.Errorf("plan reads images by %s, want one of %v:\n%s", n.IndexName, c.indexes, plan)
				case c.filtered && n.ActualRows*max(n.ActualLoops, 1) > maxRows:
					t.Errorf("plan's %s on %q yields %g rows, want at most %g:\n%s",
						n.NodeType, n.RelationName, n.ActualRows*max(n.ActualLoops, 1), maxRows, plan)
				case !c.filtered && n.NodeType == "Bitmap Heap Scan" && n.RelationName == "images":
					t.Errorf("plan reads images unordered, by a bitmap:\n%s", plan)
				case !c.filtered && n.NodeType == "Sort" && n.Plans[0].ActualRows > maxSort:
					t.Errorf("plan sorts %g rows, want at most %g:\n%s", n.Plans[0].ActualRows, maxSort, plan)
				}
			})
			if testing.Verbose() {
				t.Logf("plan:\n%s", plan)
			}
		})
	}
}

// TestUsageQueryPlan checks that a project's usage is read from the index
// images_owner_size alone: every upload under a byte quota runs the query,
// so it must not read every image of the project from the table.
func TestUsageQueryPlan(t *testing.T) {
	db, _ := seedCatalog(t)
	ctx := context.Background()
	// The visibility map says which pages need no visit; VACUUM sets it,
	// as autovacuum does on a live database.
	if _, err := db.pool.Exec(ctx, `VACUUM images`); err != nil {
		t.Fatal(err)
	}
	var out []byte
	if err := db.pool.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+usageQuery, "a").Scan(&out); err != nil {
		t.Fatal(err)
	}
	var plans []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal(out, &plans); err != nil {
		t.Fatal(err)
	}
	plan := &plans[0].Plan
	found := false
	plan.walk(func(n *planNode) {
		if n.RelationName == "images" {
			found = true
			if n.NodeType != "Index Only Scan" || n.IndexName != "images_owner_size" {
				t.Errorf("usage reads images by %s %q, want Index Only Scan images_owner_size:\n%s", n.NodeType, n.IndexName, plan)
			}
		}
	})
	if !found {
		t.Errorf("usage plan reads no images:\n%s", plan)
	}
}

// BenchmarkListImages measures one page of 100 of the default view and of
// a name-sorted one over the plan tests' catalog of 100,000 images, as
// sqlite's BenchmarkListImages does over its own.
func BenchmarkListImages(b *testing.B) {
	db, imgs := seedCatalog(b)
	ctx := context.Background()
	byName := cloudimage.CompleteSort([]cloudimage.Sort{{Key: cloudimage.SortName}}, false)
	for _, c := range []struct {
		name string
		q    cloudimage.ImageQuery
	}{
		{"FirstPage", cloudimage.ImageQuery{Viewer: "a", Limit: 100, Tags: true}},
		{"DeepPage", cloudimage.ImageQuery{Viewer: "a", Limit: 100, Tags: true, After: imgs[10_000]}},
		{"ByNameDeepPage", cloudimage.ImageQuery{Viewer: "a", Limit: 100, Tags: true, Sort: byName, After: imgs[10_000]}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				page, err := db.ListImages(ctx, c.q)
				if err != nil || len(page) != 100 {
					b.Fatalf("got %d images, %v", len(page), err)
				}
			}
		})
	}
}
