package postgres

import (
	"testing"

	"github.com/cloudimage/cloudimage/storetest"
)

// TestCatalogConformance runs the catalog export and import suite on
// fresh databases; like the other tests here it needs
// CLOUDIMAGE_TEST_POSTGRES.
func TestCatalogConformance(t *testing.T) {
	storetest.TestCatalog(t, func(t *testing.T) storetest.CatalogStore { return open(t) })
}
