package cloudimage

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// attempt takes an attempt by key from m at t, and gives it back unless it
// failed.
func (m *memAuthFailures) attempt(t *testing.T, at time.Time, key string, failed bool) {
	t.Helper()
	ctx := context.Background()
	keys := []string{key}
	if wait, err := m.TakeAuthAttempt(ctx, keys, 2, time.Minute, at); err != nil || wait > 0 {
		t.Fatalf("%s: wait %s, %v", key, wait, err)
	}
	if !failed {
		m.ReturnAuthAttempt(ctx, keys, time.Minute, at)
	}
}

// TestMemAuthFailuresBounded checks that the budgets the in-memory store
// keeps stay bounded: when room is needed the full ones go first, which
// are what a new budget would be; then the one used longest ago. (The
// store cannot tell an attempt in flight from a failure, both having
// taken from the budget, so the one used longest ago may be either; the
// stores of a database keep every budget that is not full.)
func TestMemAuthFailuresBounded(t *testing.T) {
	now := time.Now()
	key := func(i int) string { return fmt.Sprintf("user:u%d", i) }

	t.Run("full ones first", func(t *testing.T) {
		m := newMemAuthFailures()
		m.attempt(t, now, "user:spent", true)
		m.attempt(t, now, "user:spent", true)
		for i := range maxAuthBudgets - 1 {
			m.attempt(t, now, key(i), false)
		}
		if n := m.size(); n != maxAuthBudgets {
			t.Fatalf("%d budgets, want %d", n, maxAuthBudgets)
		}
		m.attempt(t, now, "user:new", false)
		if n := m.size(); n != 2 {
			t.Errorf("after making room: %d budgets, want the spent one and the new one", n)
		}
		if wait, _ := m.TakeAuthAttempt(context.Background(), []string{"user:spent"}, 2, time.Minute, now); wait <= 0 {
			t.Error("the spent budget was dropped while full ones could go")
		}
	})
	t.Run("then the oldest", func(t *testing.T) {
		m := newMemAuthFailures()
		for i := range maxAuthBudgets {
			m.attempt(t, now.Add(time.Duration(i)*time.Millisecond), key(i), true)
		}
		m.attempt(t, now.Add(time.Second), "user:new", true)
		if n := m.size(); n != maxAuthBudgets {
			t.Errorf("%d budgets, want %d", n, maxAuthBudgets)
		}
		if m.budgets[key(0)] != nil || m.budgets[key(1)] == nil || m.budgets["user:new"] == nil {
			t.Error("the budget dropped is not the one used longest ago")
		}
	})
}

// TestAuthLimiterPurges checks that the limiter has its store forget the
// budgets that are full again, and only those, as attempts go on: the
// budgets kept are bounded by the keys that failed in the last burst
// intervals, whatever the store.
func TestAuthLimiterPurges(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	m := newMemAuthFailures()
	l := newAuthLimiter(2, time.Minute, m)
	fail := func(at time.Time, key string) {
		t.Helper()
		if err := l.begin(ctx, at, []string{key}); err != nil {
			t.Fatal(err)
		}
		l.end(ctx, at, []string{key}, true)
	}
	for i := range 100 {
		fail(now, fmt.Sprintf("user:u%d", i))
	}
	fail(now.Add(30*time.Second), "user:late")
	fail(now.Add(30*time.Second), "user:late")
	if n := m.size(); n != 101 {
		t.Fatalf("%d budgets 30s on, want every one still refilling: 101", n)
	}
	// 90s on, the first hundred are full again; the late one, spent, is
	// not.
	fail(now.Add(90*time.Second), "user:new")
	if n := m.size(); n != 2 {
		t.Errorf("%d budgets after the full ones could go, want the late one and the new one", n)
	}
	if m.budgets["user:late"] == nil {
		t.Error("a budget that is not full was purged")
	}
}
