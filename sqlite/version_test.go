package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/cloudimage/cloudimage/sqlite"
	"github.com/cloudimage/cloudimage/storetest"
)

func TestVersioner(t *testing.T) {
	storetest.TestVersioner(t, func(t *testing.T) (s, other storetest.VersionedStore) {
		path := filepath.Join(t.TempDir(), "cloudimage.db")
		var dbs [2]*sqlite.DB
		for i := range dbs {
			db, err := sqlite.Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			dbs[i] = db
		}
		return dbs[0], dbs[1]
	})
}
