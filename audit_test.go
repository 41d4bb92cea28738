package cloudimage_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/cloudimage/cloudimage"
)

// auditLog keeps the audit lines a service logs.
type auditLog struct {
	mu    sync.Mutex
	lines []map[string]string
}

func (l *auditLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *auditLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *auditLog) WithGroup(string) slog.Handler            { return l }

func (l *auditLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "audit" {
		return nil
	}
	line := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		line[a.Key] = a.Value.String()
		return true
	})
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
	return nil
}

// TestAuditLog checks that every create, upload, stage, import, delete
// and membership change leaves one audit line naming the action, the
// project, the user and the image, and that refused calls leave none.
func TestAuditLog(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	log := &auditLog{}
	svc := cloudimage.NewImageService(f.db, f.blobs, slog.New(log))
	t.Cleanup(svc.Close)
	ctx, a, b := f.ctx, f.memberA, f.memberB

	img, err := svc.Create(ctx, a, cloudimage.ImageCreate{Name: "audited", DiskFormat: "raw", ContainerFormat: "bare",
		Visibility: cloudimage.VisibilityShared, Properties: linux()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Upload(ctx, a, img.ID, bytes.NewReader([]byte("data"))); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AddMember(ctx, a, img.ID, b.ProjectID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.UpdateMember(ctx, b, img.ID, b.ProjectID, cloudimage.MemberAccepted); err != nil {
		t.Fatal(err)
	}
	if err := svc.RemoveMember(ctx, a, img.ID, b.ProjectID); err != nil {
		t.Fatal(err)
	}
	staged, err := svc.Create(ctx, a, cloudimage.ImageCreate{DiskFormat: "raw", ContainerFormat: "bare", Properties: linux()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Stage(ctx, a, staged.ID, strings.NewReader("staged")); err != nil {
		t.Fatal(err)
	}
	if err := svc.Import(ctx, a, staged.ID, cloudimage.ImportRequest{Method: cloudimage.ImportGlanceDirect}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Delete(ctx, a, img.ID); err != nil {
		t.Fatal(err)
	}
	// Refused calls change nothing and so audit nothing.
	_, _ = svc.Create(ctx, f.readerA, cloudimage.ImageCreate{Properties: linux()})
	_ = svc.Delete(ctx, b, staged.ID)

	want := []struct{ action, user, image, member string }{
		{"create", a.UserID, img.ID, ""},
		{"upload", a.UserID, img.ID, ""},
		{"add_member", a.UserID, img.ID, b.ProjectID},
		{"update_member", b.UserID, img.ID, b.ProjectID},
		{"remove_member", a.UserID, img.ID, b.ProjectID},
		{"create", a.UserID, staged.ID, ""},
		{"stage", a.UserID, staged.ID, ""},
		{"import", a.UserID, staged.ID, ""},
		{"delete", a.UserID, img.ID, ""},
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.lines) != len(want) {
		t.Fatalf("%d audit lines, want %d: %v", len(log.lines), len(want), log.lines)
	}
	for i, w := range want {
		got := log.lines[i]
		project := a.ProjectID
		if w.user == b.UserID {
			project = b.ProjectID
		}
		if got["action"] != w.action || got["user"] != w.user || got["project"] != project ||
			got["image"] != w.image || got["member"] != w.member {
			t.Errorf("audit line %d: %v, want action %s by %s of %s on %s (member %q)",
				i, got, w.action, w.user, project, w.image, w.member)
		}
	}
}
