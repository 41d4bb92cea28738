package sqlite_test

import (
	"testing"

	"github.com/cloudimage/cloudimage"
	"github.com/cloudimage/cloudimage/storetest"
)

func TestLeaseConformance(t *testing.T) {
	storetest.TestLeaseStore(t, func(t *testing.T) cloudimage.LeaseStore { return open(t) })
}
