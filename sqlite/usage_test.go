package sqlite

import (
	"context"
	"path/filepath"
	"testing"
)

// TestUsageQueryPlan checks that a project's usage is read from an index
// alone, on a fresh database and on one with statistics: every
// upload under a byte quota runs the query, and once more inside its
// write transaction, so it must not scan every project's images.
func TestUsageQueryPlan(t *testing.T) {
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
		rows, err := db.read.QueryContext(ctx, "EXPLAIN QUERY PLAN "+usageQuery, "p")
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
		want := "SEARCH images USING COVERING INDEX images_owner_size (owner=?)"
		if len(plan) != 1 || plan[0] != want {
			t.Errorf("analyzed=%v: plan %q, want %q", analyzed, plan, want)
		}
	}
}
