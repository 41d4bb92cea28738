package cloudimage

import (
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestDummyHash checks that the hash an unknown user's password is
// checked against costs what a real user's does, so that the two take
// equally long to refuse, and that it is a hash bcrypt can check.
func TestDummyHash(t *testing.T) {
	cost, err := bcrypt.Cost(dummyHash)
	if err != nil {
		t.Fatalf("dummyHash is not a bcrypt hash: %v", err)
	}
	if cost != bcrypt.DefaultCost {
		t.Errorf("dummyHash has cost %d, new users' hashes %d", cost, bcrypt.DefaultCost)
	}
	if err := bcrypt.CompareHashAndPassword(dummyHash, []byte("cloudimage-dummy")); err != nil {
		t.Errorf("dummyHash does not check: %v", err)
	}
}
