package sqlite_test

import (
	"testing"

	"github.com/cloudimage/cloudimage/storetest"
)

func TestCatalogConformance(t *testing.T) {
	storetest.TestCatalog(t, func(t *testing.T) storetest.CatalogStore { return open(t) })
}
