package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParseBackends checks which backend each --database and --blob
// value selects, and that refusals and descriptions show no secret.
func TestParseBackends(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		spec string
		want databaseBackend
		desc string // the description, or the error's text
	}{
		{"", databaseBackend{sqlite: "/data/" + dbFile, inData: true}, "sqlite:/data/" + dbFile},
		{"sqlite:/elsewhere/meta.db", databaseBackend{sqlite: "/elsewhere/meta.db"}, "sqlite:/elsewhere/meta.db"},
		{"sqlite:rel.db", databaseBackend{sqlite: "rel.db"}, "sqlite:rel.db"},
		{"postgres://u:hunter2@db:5432/ci?sslmode=disable", databaseBackend{
			postgres: "postgres://u:hunter2@db:5432/ci?sslmode=disable"},
			"postgres://u:xxxxx@db:5432/ci?sslmode=disable"},
		{"postgresql://u@db/ci?password=hunter2&sslmode=require", databaseBackend{
			postgres: "postgresql://u@db/ci?password=hunter2&sslmode=require"},
			"postgresql://u@db/ci?password=xxxxx&sslmode=require"},
		{"postgres://db/ci", databaseBackend{postgres: "postgres://db/ci"}, "postgres://db/ci"},
		{"sqlite:", databaseBackend{}, "want postgres://"},
		{"mysql://u:hunter2@db/ci", databaseBackend{}, "mysql://u:xxxxx@db/ci"},
		{"/data/cloudimage.db", databaseBackend{}, "want postgres://"},
		{"host=db password=hunter2", databaseBackend{}, "(not shown)"},
	} {
		got, err := parseDatabase(tc.spec, "/data")
		desc := got.String()
		if err != nil {
			desc = err.Error()
			if tc.want != (databaseBackend{}) {
				t.Errorf("parseDatabase(%q): %v, want %+v", tc.spec, err, tc.want)
			}
		} else if got != tc.want {
			t.Errorf("parseDatabase(%q) = %+v, want %+v", tc.spec, got, tc.want)
		}
		if !strings.Contains(desc, tc.desc) || strings.Contains(desc, "hunter2") {
			t.Errorf("parseDatabase(%q) says %q, want it to contain %q and no password", tc.spec, desc, tc.desc)
		}
	}

	for _, tc := range []struct {
		spec string
		want blobBackend
		desc string
	}{
		{"", blobBackend{dir: "/data/images"}, "file:/data/images"},
		{"file:/srv/images", blobBackend{dir: "/srv/images"}, "file:/srv/images"},
		{"s3://b/p?endpoint=h:9000&region=r", blobBackend{s3: "s3://b/p?endpoint=h:9000&region=r"},
			"s3://b/p?endpoint=h:9000&region=r"},
		{"s3://key:hunter2@b?endpoint=h:9000", blobBackend{s3: "s3://key:hunter2@b?endpoint=h:9000"},
			"s3://key:xxxxx@b?endpoint=h:9000"},
		{"file:", blobBackend{}, "want s3://"},
		{"gs://bucket", blobBackend{}, "want s3://"},
		{"/srv/images", blobBackend{}, "want s3://"},
	} {
		got, err := parseBlob(tc.spec, "/data")
		desc := got.String()
		if err != nil {
			desc = err.Error()
			if tc.want != (blobBackend{}) {
				t.Errorf("parseBlob(%q): %v, want %+v", tc.spec, err, tc.want)
			}
		} else if got != tc.want {
			t.Errorf("parseBlob(%q) = %+v, want %+v", tc.spec, got, tc.want)
		}
		if !strings.Contains(desc, tc.desc) || strings.Contains(desc, "hunter2") {
			t.Errorf("parseBlob(%q) says %q, want it to contain %q and no secret", tc.spec, desc, tc.desc)
		}
	}
}

// TestExplicitLocalBackends runs serve on an SQLite file and a blob
// directory given by --database sqlite:PATH and CLOUDIMAGE_BLOB=file:DIR,
// outside the data directory, which then holds neither; the admin
// commands find the database by --database, and refuse one that does not
// exist.
func TestExplicitLocalBackends(t *testing.T) {
	t.Parallel()
	dataDir, elsewhere := t.TempDir(), t.TempDir()
	dbPath := filepath.Join(elsewhere, "meta", "catalog.db")
	blobDir := filepath.Join(elsewhere, "blobs")
	s := startServer(t, dataDir, map[string]string{
		"CLOUDIMAGE_ADMIN_PASSWORD": testAdminPassword, "CLOUDIMAGE_BLOB": "file:" + blobDir,
	}, "--database", "sqlite:"+dbPath)
	checkConfigLog(t, s, "database=sqlite:"+dbPath, "blob=file:"+blobDir)
	id := uploadImage(t, s.adminClient(t), "kept elsewhere")
	if _, err := os.Stat(filepath.Join(blobDir, id[:2], id)); err != nil {
		t.Errorf("the image's data is not in the --blob directory: %v", err)
	}
	for _, name := range []string{dbFile, "images"} {
		if _, err := os.Stat(filepath.Join(dataDir, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the data directory holds %s (%v), want nothing there", name, err)
		}
	}

	if out := cliOK(t, nil, "project", "list", "--database", "sqlite:"+dbPath); !strings.Contains(out, "admin") {
		t.Errorf("project list --database printed %q, want the admin project", out)
	}
	missing := filepath.Join(elsewhere, "missing.db")
	_, err := cli(t, map[string]string{"CLOUDIMAGE_DATABASE": "sqlite:" + missing}, "project", "create", "p")
	if err == nil || !strings.Contains(err.Error(), "--database") {
		t.Errorf("project create on a missing database: %v, want a refusal naming --database", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("project create made %s (%v)", missing, err)
	}
	_, err = cli(t, nil, "user", "create", "--project", "admin", "--database", "mysql://db/x", "u")
	if err == nil || !strings.Contains(err.Error(), "want postgres://") {
		t.Errorf("user create --database mysql://...: %v, want a refusal", err)
	}
	_, err = cli(t, nil, "serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--blob", "gs://b")
	if err == nil || !strings.Contains(err.Error(), "want s3://") {
		t.Errorf("serve --blob gs://b: %v, want a refusal", err)
	}
}
