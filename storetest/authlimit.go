package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
)

// TestAuthFailureStore runs the conformance suite of the failure budgets
// of token issuing; open must return a new, empty store each time it is
// called.
func TestAuthFailureStore(t *testing.T, open func(t *testing.T) cloudimage.AuthFailureStore) {
	t.Run("Budget", func(t *testing.T) { testAuthBudget(t, open(t)) })
	t.Run("AllOrNone", func(t *testing.T) { testAuthAllOrNone(t, open(t)) })
	t.Run("Return", func(t *testing.T) { testAuthReturn(t, open(t)) })
	t.Run("Purge", func(t *testing.T) { testAuthPurge(t, open(t)) })
	t.Run("Concurrent", func(t *testing.T) { testAuthConcurrent(t, open(t)) })
}

// The budget of these tests: 3 attempts, one more a minute.
const (
	authBurst = 3
	authEvery = time.Minute
)

func take(t *testing.T, s cloudimage.AuthFailureStore, at time.Time, keys ...string) time.Duration {
	t.Helper()
	wait, err := s.TakeAuthAttempt(context.Background(), keys, authBurst, authEvery, at)
	if err != nil {
		t.Fatalf("take from %v: %v", keys, err)
	}
	if wait < 0 {
		t.Fatalf("take from %v: wait %s", keys, wait)
	}
	return wait
}

func giveBack(t *testing.T, s cloudimage.AuthFailureStore, at time.Time, keys ...string) {
	t.Helper()
	if err := s.ReturnAuthAttempt(context.Background(), keys, authEvery, at); err != nil {
		t.Fatalf("return to %v: %v", keys, err)
	}
}

// takeAll takes from keys at at until refused and returns how many were
// taken and the wait of the refusal.
func takeAll(t *testing.T, s cloudimage.AuthFailureStore, at time.Time, keys ...string) (int, time.Duration) {
	t.Helper()
	for n := 0; n <= 10*authBurst; n++ {
		if wait := take(t, s, at, keys...); wait > 0 {
			return n, wait
		}
	}
	t.Fatalf("%v: never refused", keys)
	return 0, 0
}

func testAuthBudget(t *testing.T, s cloudimage.AuthFailureStore) {
	if n, wait := takeAll(t, s, base, "user:a"); n != authBurst || wait != authEvery {
		t.Fatalf("a fresh budget: %d attempts, then wait %s; want %d, then %s", n, wait, authBurst, authEvery)
	}
	if wait := take(t, s, base.Add(20*time.Second), "user:a"); wait != 40*time.Second {
		t.Errorf("20s later: wait %s, want 40s", wait)
	}
	if n, wait := takeAll(t, s, base.Add(authEvery), "user:a"); n != 1 || wait != authEvery {
		t.Errorf("a minute later: %d attempts, then wait %s; want 1, then %s", n, wait, authEvery)
	}
	if n, _ := takeAll(t, s, base.Add(authEvery), "user:b"); n != authBurst {
		t.Errorf("another key: %d attempts, want %d: keys must be independent", n, authBurst)
	}
	// Long enough after, the budget is full again, and no fuller.
	if n, _ := takeAll(t, s, base.Add(time.Hour), "user:a"); n != authBurst {
		t.Errorf("an hour later: %d attempts, want %d", n, authBurst)
	}
}

func testAuthAllOrNone(t *testing.T, s cloudimage.AuthFailureStore) {
	takeAll(t, s, base, "client:x")
	take(t, s, base, "user:c") // c: 2 left, full again a minute on
	takeAll(t, s, base, "user:z")
	// The spent key first and last, by the order given and by any other.
	for _, keys := range [][]string{{"user:a", "client:x"}, {"client:x", "user:a"},
		{"client:a", "user:z"}, {"user:z", "client:a"}} {
		if wait := take(t, s, base, keys...); wait != authEvery {
			t.Errorf("%v, one spent: wait %s, want %s", keys, wait, authEvery)
		}
	}
	if n, _ := takeAll(t, s, base, "client:a"); n != authBurst {
		t.Errorf("the fresh key client:a after refusals with a spent one: %d attempts, want %d", n, authBurst)
	}
	if wait := take(t, s, base.Add(30*time.Second), "user:c", "client:x"); wait != 30*time.Second {
		t.Errorf("wait %s, want the longest of the keys': 30s", wait)
	}
	if n, _ := takeAll(t, s, base, "user:a"); n != authBurst {
		t.Errorf("the fresh key after refusals with a spent one: %d attempts, want %d: a refusal must take nothing", n, authBurst)
	}
	if n, _ := takeAll(t, s, base, "user:c"); n != authBurst-1 {
		t.Errorf("user:c: %d attempts, want %d", n, authBurst-1)
	}
	if n, _ := takeAll(t, s, base.Add(time.Hour), "user:d", "client:y"); n != authBurst {
		t.Errorf("two fresh keys: %d attempts, want %d", n, authBurst)
	}
	if n, _ := takeAll(t, s, base.Add(time.Hour), "client:y"); n != 0 {
		t.Errorf("a key spent with another: %d attempts, want 0: a take must take from every key", n)
	}
}

func testAuthReturn(t *testing.T, s cloudimage.AuthFailureStore) {
	for range 10 {
		take(t, s, base, "user:a", "client:x")
		giveBack(t, s, base, "user:a", "client:x")
	}
	if n, _ := takeAll(t, s, base, "user:a"); n != authBurst {
		t.Errorf("after attempts given back: %d attempts, want %d", n, authBurst)
	}
	if n, _ := takeAll(t, s, base, "client:x"); n != authBurst {
		t.Errorf("after attempts given back, the other key: %d attempts, want %d", n, authBurst)
	}
	giveBack(t, s, base, "user:a")
	if n, _ := takeAll(t, s, base, "user:a"); n != 1 {
		t.Errorf("after one given back to a spent budget: %d attempts, want 1", n)
	}
	// Giving back to a budget that is full does not make it fuller.
	giveBack(t, s, base, "user:b")
	take(t, s, base.Add(time.Minute), "user:c")
	giveBack(t, s, base.Add(time.Hour), "user:c")
	giveBack(t, s, base.Add(time.Hour), "user:c")
	if n, _ := takeAll(t, s, base.Add(time.Hour), "user:b"); n != authBurst {
		t.Errorf("given back to a fresh budget: %d attempts, want %d", n, authBurst)
	}
	if n, _ := takeAll(t, s, base.Add(time.Hour), "user:c"); n != authBurst {
		t.Errorf("given back to a full budget: %d attempts, want %d", n, authBurst)
	}
}

func testAuthPurge(t *testing.T, s cloudimage.AuthFailureStore) {
	ctx := context.Background()
	takeAll(t, s, base, "user:spent") // full three minutes on
	take(t, s, base, "user:once")     // full a minute on
	take(t, s, base, "client:x")
	giveBack(t, s, base, "client:x") // full at once
	if _, err := s.PurgeAuthFailures(ctx, base.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, _ := takeAll(t, s, base, "user:once"); n != authBurst-1 {
		t.Errorf("a budget that is not full, after a purge: %d attempts, want %d", n, authBurst-1)
	}
	// Three minutes on, user:spent and user:once are full again;
	// client:x has been from the start.
	n, err := s.PurgeAuthFailures(ctx, base.Add(3*authEvery).Add(-time.Microsecond))
	if err != nil || n != 1 {
		t.Errorf("purged %d budgets (%v), want the full one, client:x", n, err)
	}
	if n, _ := takeAll(t, s, base.Add(30*time.Second), "user:spent"); n != 0 {
		t.Errorf("a spent budget after a purge: %d attempts, want 0", n)
	}
	if n, err := s.PurgeAuthFailures(ctx, base.Add(time.Hour)); err != nil || n != 2 {
		t.Errorf("an hour on: purged %d budgets (%v), want user:spent and user:once", n, err)
	}
	if n, err := s.PurgeAuthFailures(ctx, base.Add(time.Hour)); err != nil || n != 0 {
		t.Errorf("purged again: %d budgets (%v), want none", n, err)
	}
	if n, _ := takeAll(t, s, base.Add(time.Hour), "user:spent"); n != authBurst {
		t.Errorf("a purged key: %d attempts, want a full budget's %d", n, authBurst)
	}
}

// testAuthConcurrent takes at once, from a budget shared by every
// attempt and in both orders of the keys: exactly a budget's worth must
// be taken, however the store interleaves them.
func testAuthConcurrent(t *testing.T, s cloudimage.AuthFailureStore) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var taken int
	for i := range 20 {
		keys := []string{"user:a", "client:x"}
		if i%2 == 1 {
			keys = []string{"client:x", "user:a"}
		}
		wg.Go(func() {
			wait, err := s.TakeAuthAttempt(context.Background(), keys, authBurst, authEvery, base)
			if err != nil {
				t.Error(err)
				return
			}
			if wait == 0 {
				mu.Lock()
				taken++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if taken != authBurst {
		t.Errorf("%d of 20 concurrent attempts taken, want %d", taken, authBurst)
	}
}
