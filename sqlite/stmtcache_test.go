package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
)

// openTest opens a database of the test's own.
func openTest(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cloudimage.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// countOf runs a query of one integer through c.
func countOf(t *testing.T, c *stmtCache, query string, args ...any) int {
	t.Helper()
	var n int
	if err := c.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestStmtCacheEvicts checks that the cache keeps one statement per text,
// at most max of them, evicting the least recently used, and closes each
// it lets go.
func TestStmtCacheEvicts(t *testing.T) {
	db, _ := openTest(t)
	c := newStmtCache(db.read, 3)
	defer c.close()
	text := func(i int) string { return fmt.Sprintf("SELECT %d", i) }
	for i := range 3 {
		if got := countOf(t, c, text(i)); got != i {
			t.Fatalf("%s = %d", text(i), got)
		}
	}
	first := c.byText[text(0)].Value.(*cachedStmt)
	// Used again, statement 0 is the most recent: 1 goes first.
	countOf(t, c, text(0))
	countOf(t, c, text(3))
	if c.len() != 3 {
		t.Fatalf("holds %d statements, want 3", c.len())
	}
	if _, ok := c.byText[text(1)]; ok {
		t.Error("kept the least recently used statement")
	}
	if c.byText[text(0)].Value.(*cachedStmt) != first {
		t.Error("prepared a kept statement again")
	}
	evicted := c.get(context.Background(), text(4)) // evicts 2
	c.put(evicted)
	if _, ok := c.byText[text(2)]; ok {
		t.Fatal("kept the least recently used statement")
	}
	c.mu.Lock()
	c.evict(c.byText[text(4)])
	c.mu.Unlock()
	if _, err := evicted.stmt.Query(); err == nil {
		t.Error("an evicted statement is still open")
	}
}

// TestStmtCacheInUse checks that a statement evicted while a caller is
// about to run it stays open for that caller, and is closed once put back.
func TestStmtCacheInUse(t *testing.T) {
	db, _ := openTest(t)
	c := newStmtCache(db.read, 1)
	defer c.close()
	ctx := context.Background()
	s := c.get(ctx, "SELECT 1")
	countOf(t, c, "SELECT 2") // evicts SELECT 1
	var n int
	if err := s.stmt.QueryRowContext(ctx).Scan(&n); err != nil || n != 1 {
		t.Fatalf("evicted statement in use: %d, %v", n, err)
	}
	c.put(s)
	if _, err := s.stmt.Query(); err == nil {
		t.Error("an evicted statement put back is still open")
	}
}

// TestStmtCacheErrors checks that a text that does not prepare reports
// its error and is not kept, and that a closed cache passes queries to
// its pool, which answers them until the pool too is closed.
func TestStmtCacheErrors(t *testing.T) {
	db, _ := openTest(t)
	c := newStmtCache(db.read, 3)
	ctx := context.Background()
	if _, err := c.QueryContext(ctx, "SELECT FROM nowhere"); err == nil {
		t.Error("a syntax error: no error")
	}
	var n int
	if err := c.QueryRowContext(ctx, "SELECT * FROM nowhere").Scan(&n); err == nil {
		t.Error("a missing table: no error")
	}
	if c.len() != 0 {
		t.Errorf("kept %d statements that failed", c.len())
	}
	countOf(t, c, "SELECT 1")
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	if c.len() != 0 {
		t.Errorf("a closed cache holds %d statements", c.len())
	}
	if got := countOf(t, c, "SELECT 1"); got != 1 || c.len() != 0 {
		t.Errorf("closed cache: got %d and holds %d statements", got, c.len())
	}
	db.Close()
	if _, err := db.Image(ctx, "x"); err == nil {
		t.Error("Image of a closed database: no error")
	}
}

// TestStmtCacheConcurrent runs many texts from many goroutines through a
// cache too small to hold them, so that statements are evicted while
// others run them (go test -race).
func TestStmtCacheConcurrent(t *testing.T) {
	db, _ := openTest(t)
	c := newStmtCache(db.read, 4)
	defer c.close()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				want := (g + i) % 10
				rows, err := c.QueryContext(context.Background(), fmt.Sprintf("SELECT %d", want))
				if err != nil {
					t.Error(err)
					return
				}
				var got int
				for rows.Next() {
					if err := rows.Scan(&got); err != nil {
						t.Error(err)
					}
				}
				if err := rows.Close(); err != nil || got != want {
					t.Errorf("got %d, %v; want %d", got, err, want)
				}
			}
		})
	}
	wg.Wait()
	if c.len() > 4 {
		t.Errorf("holds %d statements, want at most 4", c.len())
	}
}

// TestListUsesPreparedStatements checks that a list run again, on a new
// page or by another viewer, runs the statements it prepared the first
// time, and that they follow a change of schema that another connection
// makes: SQLite prepares them again, with the answer unchanged.
func TestListUsesPreparedStatements(t *testing.T) {
	db, path := openTest(t)
	ctx := context.Background()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := db.CreateProject(ctx, &cloudimage.Project{ID: "p", Name: "p", AppKey: "p", CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	var imgs []*cloudimage.Image
	for i := range 5 {
		imgs = append(imgs, &cloudimage.Image{ID: fmt.Sprint("img-", i), Name: "n", Status: cloudimage.StatusActive,
			Visibility: cloudimage.VisibilityPrivate, Owner: "p", Tags: []string{"b", "a"},
			Properties: map[string]string{"k": "v"}, CreatedAt: at.Add(time.Duration(i) * time.Second), UpdatedAt: at})
	}
	if err := db.InsertImages(ctx, imgs); err != nil {
		t.Fatal(err)
	}
	list := func(q cloudimage.ImageQuery) string {
		t.Helper()
		page, err := db.ListImages(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, img := range page {
			got = append(got, fmt.Sprint(img.ID, img.Tags, img.Properties))
		}
		return fmt.Sprint(got)
	}
	q := cloudimage.ImageQuery{Viewer: "p", Limit: 3, Tags: true}
	first := list(q)
	if want := "[img-4[a b] map[k:v] img-3[a b] map[k:v] img-2[a b] map[k:v]]"; first != want {
		t.Fatalf("first page: %s, want %s", first, want)
	}
	n := db.stmts.len()
	if n != 2 { // the page and its tags
		t.Fatalf("holds %d statements after one list, want 2", n)
	}
	list(cloudimage.ImageQuery{Viewer: "q", Limit: 3, Tags: true})
	list(cloudimage.ImageQuery{Viewer: "p", Limit: 3, Tags: true, After: imgs[3]})
	if got := db.stmts.len(); got != 3 { // one more: a page after a marker
		t.Fatalf("holds %d statements after three lists, want 3", got)
	}

	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.ExecContext(ctx, `DROP INDEX images_owner_order`); err != nil {
		t.Fatal(err)
	}
	if got := list(q); got != first {
		t.Errorf("after a change of schema: %s, want %s", got, first)
	}
	if got := db.stmts.len(); got != 3 {
		t.Errorf("holds %d statements after a change of schema, want 3", got)
	}
}
