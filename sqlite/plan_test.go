package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
)

// queryPlan returns the detail lines of the plan of q's list query.
func queryPlan(t *testing.T, db *DB, q cloudimage.ImageQuery) []string {
	t.Helper()
	query, args, err := listQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	return statementPlan(t, db, query, args...)
}

// seedSkewed fills db the way the list benchmark does, in miniature: one
// project owns most images, a few are public, a few shared with "p", and
// then ANALYZE gives the planner statistics to be tempted by.
func seedSkewed(t *testing.T, db *DB) {
	t.Helper()
	ctx := context.Background()
	for _, p := range []string{"p", "q"} {
		if err := db.CreateProject(ctx, &cloudimage.Project{ID: p, Name: p, AppKey: p}); err != nil {
			t.Fatal(err)
		}
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var imgs []*cloudimage.Image
	for i := range 1000 {
		img := &cloudimage.Image{ID: fmt.Sprintf("img-%05d", i), Name: "n", Status: cloudimage.StatusActive,
			Visibility: cloudimage.VisibilityShared, Owner: "p", Properties: map[string]string{},
			CreatedAt: base.Add(time.Duration(i) * time.Second), UpdatedAt: base}
		switch {
		case i%20 == 0:
			img.Owner, img.Visibility = "q", cloudimage.VisibilityPublic
		case i%50 == 1:
			img.Owner = "q"
		case i%3 == 0:
			img.Visibility = cloudimage.VisibilityPrivate
		}
		if i%100 == 7 {
			img.DeletedAt = &base
		}
		imgs = append(imgs, img)
	}
	if err := db.InsertImages(ctx, imgs); err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		if img.Owner == "q" && img.Visibility == cloudimage.VisibilityShared {
			m := &cloudimage.Member{ImageID: img.ID, ProjectID: "p", Status: cloudimage.MemberAccepted, CreatedAt: base, UpdatedAt: base}
			if err := db.AddMember(ctx, m, cloudimage.MaxMembers); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := db.write.ExecContext(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
}

// sortsPage reports whether a sort that follows the plan lines before
// sorts the rows a branch yields, for the merge: at most a page of them.
func sortsPage(before []string) bool {
	return len(before) > 0 && strings.HasPrefix(before[len(before)-1], "SCAN (subquery")
}

// sortsMemberships reports whether a sort that follows the plan lines
// before sorts the images of the viewer's memberships.
func sortsMemberships(before []string) bool {
	n := len(before)
	return n >= 2 && before[n-1] == "SEARCH i USING INDEX sqlite_autoindex_images_1 (id=?)" &&
		strings.HasPrefix(before[n-2], "SEARCH m USING COVERING INDEX image_members_member_status ")
}

// TestListQueryPlan checks that every branch of the default view walks an
// index in the default order from the marker: no table scan, and no sort
// of a branch's rows but two that are bounded. The outer merge sorts the
// page of each branch (at most limit rows), and the branch of images
// shared with the viewer sorts the viewer's memberships, which it reads
// from image_members rather than walking every shared image. It checks a
// fresh database and one whose statistics say most images are one
// project's shared ones, which could tempt the planner elsewhere.
func TestListQueryPlan(t *testing.T) {
	ctx := context.Background()
	marker := &cloudimage.Image{ID: "x", CreatedAt: time.Date(2026, 1, 1, 0, 10, 0, 0, time.UTC)}
	for _, analyzed := range []bool{false, true} {
		db, err := Open(ctx, filepath.Join(t.TempDir(), "plan.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if analyzed {
			seedSkewed(t, db)
		}
		for _, c := range []struct {
			vis     cloudimage.ListVisibility
			members cloudimage.MemberStatus
			want    []string // "<index> (<constraints>" before the range
		}{
			// A union's branches read only IDs and sort keys: from the index
			// alone. A single branch reads whole rows.
			{cloudimage.ListDefault, "", []string{
				"SEARCH i USING COVERING INDEX images_owner_order (owner=?",
				"SEARCH i USING COVERING INDEX images_visibility_order (visibility=?",
				"SEARCH m USING COVERING INDEX image_members_member_status (member=? AND status=?)",
			}},
			{cloudimage.ListAll, cloudimage.MemberAny, []string{
				"SEARCH i USING COVERING INDEX images_owner_order (owner=?",
				"SEARCH i USING COVERING INDEX images_visibility_order (visibility=?",
				"SEARCH m USING COVERING INDEX image_members_member_status (member=?)",
			}},
			{cloudimage.ListShared, cloudimage.MemberPending, []string{
				"SEARCH i USING COVERING INDEX images_owner_visibility_order (owner=? AND visibility=?",
				"SEARCH m USING COVERING INDEX image_members_member_status (member=? AND status=?)",
			}},
			{cloudimage.ListPrivate, "", []string{
				"SEARCH i USING INDEX images_owner_visibility_order (owner=? AND visibility=?",
			}},
			{cloudimage.ListPublic, "", []string{
				"SEARCH i USING INDEX images_visibility_order (visibility=?",
			}},
			{cloudimage.ListCommunity, "", []string{
				"SEARCH i USING INDEX images_visibility_order (visibility=?",
			}},
		} {
			for _, after := range []*cloudimage.Image{nil, marker} {
				plan := queryPlan(t, db, cloudimage.ImageQuery{
					Viewer: "p", Visibility: c.vis, MemberStatus: c.members, After: after, Limit: 100,
				})
				text := strings.Join(plan, "\n")
				name := fmt.Sprintf("analyzed=%v view=%q members=%q after=%v", analyzed, c.vis, c.members, after != nil)
				rng := ")"
				if after != nil {
					rng = " AND (created_at,id)<(?,?))"
				}
				want := slices.Clone(c.want)
				if len(want) > 1 { // a union: only the page is read whole
					want = append(want, "SCAN p\nSEARCH i USING INDEX sqlite_autoindex_images_1 (id=?)")
				}
				for _, want := range want {
					if strings.Contains(want, " INDEX images_") {
						want += rng
					}
					if !strings.Contains(text, want) {
						t.Errorf("%s: plan lacks %q:\n%s", name, want, text)
					}
				}
				for i, line := range plan {
					if strings.Contains(line, "TEMP B-TREE") && !sortsPage(plan[:i]) && !sortsMemberships(plan[:i]) {
						t.Errorf("%s: plan sorts something other than a branch's page or the viewer's memberships:\n%s", name, text)
					}
					if strings.HasPrefix(line, "SCAN i") || strings.HasPrefix(line, "SCAN m") ||
						strings.HasPrefix(line, "SCAN images") || strings.HasPrefix(line, "SCAN image_members") {
						t.Errorf("%s: plan scans a table:\n%s", name, text)
					}
				}
			}
		}
	}
}

// TestListQueryBindsCallerStrings checks that no caller string reaches the
// SQL text: every one is a bound argument.
func TestListQueryBindsCallerStrings(t *testing.T) {
	evil := "x' OR 1=1 --"
	size := int64(1)
	yes := true
	q := cloudimage.ImageQuery{
		Viewer: evil, Visibility: cloudimage.ListAll, MemberStatus: cloudimage.MemberPending, Limit: 10,
		Filter: cloudimage.ImageFilter{
			IDs: []string{evil}, Names: []string{evil}, Statuses: []cloudimage.Status{cloudimage.Status(evil)},
			ContainerFormats: []string{evil}, DiskFormats: []string{evil}, SizeMin: &size, SizeMax: &size,
			Protected: &yes, Hidden: &yes, Tags: []string{evil},
			CreatedAt: []cloudimage.TimeFilter{{Op: cloudimage.OpGt, Time: time.Now()}},
		},
		Sort:  []cloudimage.Sort{{Key: cloudimage.SortName}, {Key: cloudimage.SortSize, Desc: true}},
		After: &cloudimage.Image{ID: evil, Name: evil, Status: cloudimage.Status(evil), DiskFormat: evil},
	}
	query, args, err := listQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(query, "OR 1=1") {
		t.Fatalf("a caller string is in the SQL:\n%s", query)
	}
	n := 0
	for _, a := range args {
		if a == evil {
			n++
		}
	}
	// The viewer, the 5 in-lists, the tag, and the marker's name and id
	// (its status and disk format are no sort keys here: not bound).
	if n != 9 {
		t.Fatalf("bound the caller string %d times, want 9: %v", n, args)
	}

	q.Sort = []cloudimage.Sort{{Key: "name; DROP TABLE images"}}
	if _, _, err := listQuery(q); cloudimage.ErrorCode(err) != cloudimage.EINVALID {
		t.Fatalf("unknown sort key: got %v, want EINVALID", err)
	}
}

// TestListQueryPlanByName checks that a list ordered by name, with its
// tie-breakers in the same direction (Terraform's sort_key=name&sort_dir=asc,
// or sort=name:desc), walks the name indexes in either direction rather
// than sorting every image of a branch.
func TestListQueryPlanByName(t *testing.T) {
	ctx := context.Background()
	marker := &cloudimage.Image{ID: "x", Name: "m", CreatedAt: time.Date(2026, 1, 1, 0, 10, 0, 0, time.UTC)}
	for _, analyzed := range []bool{false, true} {
		db, err := Open(ctx, filepath.Join(t.TempDir(), "plan.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if analyzed {
			seedSkewed(t, db)
		}
		for _, desc := range []bool{false, true} {
			sorts := cloudimage.CompleteSort([]cloudimage.Sort{{Key: cloudimage.SortName, Desc: desc}}, desc)
			for _, after := range []*cloudimage.Image{nil, marker} {
				plan := queryPlan(t, db, cloudimage.ImageQuery{Viewer: "p", Sort: sorts, After: after, Limit: 100})
				text := strings.Join(plan, "\n")
				name := fmt.Sprintf("analyzed=%v desc=%v after=%v", analyzed, desc, after != nil)
				for _, want := range []string{
					"SEARCH i USING COVERING INDEX images_owner_name_order (owner=?",
					"SEARCH i USING COVERING INDEX images_visibility_name_order (visibility=?",
				} {
					if !strings.Contains(text, want) {
						t.Errorf("%s: plan lacks %q:\n%s", name, want, text)
					}
				}
				for i, line := range plan {
					if strings.Contains(line, "TEMP B-TREE") && !sortsPage(plan[:i]) && !sortsMemberships(plan[:i]) {
						t.Errorf("%s: plan sorts more than a branch's page or the viewer's memberships:\n%s", name, text)
					}
					if strings.HasPrefix(line, "SCAN i") || strings.HasPrefix(line, "SCAN images") {
						t.Errorf("%s: plan scans a table:\n%s", name, text)
					}
				}
			}
		}
	}
}

// statementPlan returns the detail lines of the plan of query.
func statementPlan(t *testing.T, db *DB, query string, args ...any) []string {
	t.Helper()
	rows, err := db.read.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}

// TestTagsQueryPlan checks that the tags of a page, bound as one JSON
// array, are read by the primary key of image_tags, one search per image,
// and come out in its order without a sort.
func TestTagsQueryPlan(t *testing.T) {
	ctx := context.Background()
	for _, analyzed := range []bool{false, true} {
		db, err := Open(ctx, filepath.Join(t.TempDir(), "plan.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if analyzed {
			seedSkewed(t, db)
		}
		for _, c := range []struct {
			query, arg string
		}{
			{tagsOfImagesSQL, `["img-00001","img-00002"]`},
			{tagsOfImageSQL, "img-00001"},
		} {
			plan := statementPlan(t, db, c.query, c.arg)
			text := strings.Join(plan, "\n")
			if !strings.Contains(text, "SEARCH image_tags USING COVERING INDEX sqlite_autoindex_image_tags_1 (image_id=?)") {
				t.Errorf("analyzed=%v %q: plan does not search image_tags by image:\n%s", analyzed, c.query, text)
			}
			for _, line := range plan {
				if strings.HasPrefix(line, "SCAN image_tags") || strings.Contains(line, "TEMP B-TREE") {
					t.Errorf("analyzed=%v %q: plan scans or sorts image_tags:\n%s", analyzed, c.query, text)
				}
			}
		}
	}
}
