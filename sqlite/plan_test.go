package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
)

// TestListQueryPlan checks that both branches of a project's view walk an
// index in order: no table scan, and no sort of the branch's rows (the
// outer sort only merges two pages).
func TestListQueryPlan(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "plan.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.write.ExecContext(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	for _, after := range []*cloudimage.Cursor{nil, {CreatedAt: time.Now(), ID: "x"}} {
		query, args := listQuery(cloudimage.ImageQuery{Viewer: "p", After: after, Limit: 100})
		rows, err := db.read.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		text := strings.Join(plan, "\n")
		rng := ""
		if after != nil {
			rng = " AND (created_at,id)<(?,?)"
		}
		for _, want := range []string{
			"SEARCH images USING INDEX images_owner_order (owner=?" + rng + ")",
			"SEARCH images USING INDEX images_visibility_order (visibility=?" + rng + ")",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("plan lacks %q:\n%s", want, text)
			}
		}
		// The index walks are not sorted; the only sorts are of each
		// branch's page (at most limit rows) for the merge.
		for i, line := range plan {
			if strings.Contains(line, "TEMP B-TREE") && (i == 0 || !strings.HasPrefix(plan[i-1], "SCAN (subquery")) {
				t.Errorf("plan sorts something other than a branch's page:\n%s", text)
			}
			if strings.HasPrefix(line, "SCAN images") {
				t.Errorf("plan scans the images table:\n%s", text)
			}
		}
		t.Logf("after=%v:\n%s", after != nil, text)
	}
}
