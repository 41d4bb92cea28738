package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
)

// TestLeaseStore runs the lease conformance suite; open must return a
// new, empty store each time it is called.
func TestLeaseStore(t *testing.T, open func(t *testing.T) cloudimage.LeaseStore) {
	t.Run("Exclusive", func(t *testing.T) { testLeaseExclusive(t, open(t)) })
	t.Run("Expires", func(t *testing.T) { testLeaseExpires(t, open(t)) })
	t.Run("Renew", func(t *testing.T) { testLeaseRenew(t, open(t)) })
	t.Run("Release", func(t *testing.T) { testLeaseRelease(t, open(t)) })
	t.Run("Concurrent", func(t *testing.T) { testLeaseConcurrent(t, open(t)) })
}

func acquire(t *testing.T, s cloudimage.LeaseStore, name, holder string, ttl time.Duration) bool {
	t.Helper()
	ok, err := s.AcquireLease(context.Background(), name, holder, ttl)
	if err != nil {
		t.Fatalf("acquire %s for %s: %v", name, holder, err)
	}
	return ok
}

func release(t *testing.T, s cloudimage.LeaseStore, name, holder string) {
	t.Helper()
	if err := s.ReleaseLease(context.Background(), name, holder); err != nil {
		t.Fatalf("release %s by %s: %v", name, holder, err)
	}
}

func testLeaseExclusive(t *testing.T, s cloudimage.LeaseStore) {
	if !acquire(t, s, "janitor", "a", time.Hour) {
		t.Fatal("a free lease was not granted")
	}
	if acquire(t, s, "janitor", "b", time.Hour) {
		t.Fatal("a lease held by a was granted to b")
	}
	if !acquire(t, s, "other", "b", time.Hour) {
		t.Fatal("a lease of another name was not granted: names must be independent")
	}
	if !acquire(t, s, "janitor", "a", time.Hour) {
		t.Fatal("the holder could not renew its own lease")
	}
}

func testLeaseExpires(t *testing.T, s cloudimage.LeaseStore) {
	ttl := 200 * time.Millisecond
	if !acquire(t, s, "janitor", "a", ttl) {
		t.Fatal("a free lease was not granted")
	}
	if acquire(t, s, "janitor", "b", time.Hour) {
		t.Fatal("b got the lease before a's ran out")
	}
	time.Sleep(ttl + 100*time.Millisecond)
	if !acquire(t, s, "janitor", "b", time.Hour) {
		t.Fatal("b did not get a lease that had run out")
	}
	if acquire(t, s, "janitor", "a", time.Hour) {
		t.Fatal("a took back a lease b now holds")
	}
}

// testLeaseRenew checks that acquiring again extends the holder's lease
// from the time of the renewal, not of the first grant.
func testLeaseRenew(t *testing.T, s cloudimage.LeaseStore) {
	ttl := 400 * time.Millisecond
	if !acquire(t, s, "janitor", "a", ttl) {
		t.Fatal("a free lease was not granted")
	}
	time.Sleep(ttl / 2)
	if !acquire(t, s, "janitor", "a", ttl) {
		t.Fatal("the holder could not renew its lease")
	}
	time.Sleep(ttl * 3 / 4) // past the first grant's end, within the renewal
	if acquire(t, s, "janitor", "b", time.Hour) {
		t.Fatal("b got a lease that a had renewed")
	}
}

func testLeaseRelease(t *testing.T, s cloudimage.LeaseStore) {
	if !acquire(t, s, "janitor", "a", time.Hour) {
		t.Fatal("a free lease was not granted")
	}
	release(t, s, "janitor", "b") // not b's: changes nothing
	if acquire(t, s, "janitor", "b", time.Hour) {
		t.Fatal("b's release freed a's lease")
	}
	release(t, s, "janitor", "a")
	if !acquire(t, s, "janitor", "b", time.Hour) {
		t.Fatal("b did not get a lease that a released")
	}
	release(t, s, "never-taken", "a") // nothing to release: no error
}

// testLeaseConcurrent races holders for a free lease: exactly one wins.
func testLeaseConcurrent(t *testing.T, s cloudimage.LeaseStore) {
	const n = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		won  []string
		errs []error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			holder := string(rune('a' + i))
			ok, err := s.AcquireLease(context.Background(), "janitor", holder, time.Hour)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else if ok {
				won = append(won, holder)
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("concurrent acquires failed: %v", errs)
	}
	if len(won) != 1 {
		t.Fatalf("%d holders got the lease (%v), want exactly one", len(won), won)
	}
}
