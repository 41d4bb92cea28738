package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/sqlite"
)

// BenchmarkToken measures resolving a token, as every authenticated
// request does: the token joined with its user and project, then the
// user's roles there. The store holds many tokens, users and projects,
// so the lookups go through their indexes rather than a tiny table.
func BenchmarkToken(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 1000
	for i := range n {
		p := &cloudimage.Project{ID: fmt.Sprintf("p%031d", i), Name: fmt.Sprint("project-", i),
			AppKey: fmt.Sprint("key-", i), CreatedAt: at}
		u := &cloudimage.User{ID: fmt.Sprintf("u%031d", i), Name: fmt.Sprint("user-", i),
			PasswordHash: "x", CreatedAt: at}
		if err := db.CreateProject(ctx, p); err != nil {
			b.Fatal(err)
		}
		if err := db.CreateUser(ctx, u); err != nil {
			b.Fatal(err)
		}
		for _, r := range []cloudimage.Role{cloudimage.RoleMember, cloudimage.RoleAdmin} {
			if err := db.AssignRole(ctx, u.ID, p.ID, r); err != nil {
				b.Fatal(err)
			}
		}
		t := &cloudimage.Token{Hash: fmt.Sprintf("%064d", i), User: u, Project: p,
			IssuedAt: at, ExpiresAt: at.Add(time.Hour)}
		if err := db.CreateToken(ctx, t); err != nil {
			b.Fatal(err)
		}
	}
	hash := fmt.Sprintf("%064d", n/2)
	start := cpuTime()
	for b.Loop() {
		t, err := db.Token(ctx, hash)
		if err != nil || t.Hash != hash || len(t.Roles) != 2 {
			b.Fatalf("got %+v, %v", t, err)
		}
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}
