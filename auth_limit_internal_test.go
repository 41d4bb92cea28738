package cloudimage

import (
	"fmt"
	"testing"
	"time"
)

// attempt begins and ends an attempt by key at t.
func (l *authLimiter) attempt(t *testing.T, at time.Time, key string, failed bool) {
	t.Helper()
	keys := []string{key}
	if err := l.begin(at, keys); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	l.end(at, keys, failed)
}

// TestAuthLimiterBounded checks that the budgets kept stay bounded: when
// room is needed the full ones go first, which are what a new budget
// would be; then the one used longest ago; never one in use.
func TestAuthLimiterBounded(t *testing.T) {
	now := time.Now()
	key := func(i int) string { return fmt.Sprintf("user:u%d", i) }

	t.Run("full ones first", func(t *testing.T) {
		l := newAuthLimiter(2, time.Minute)
		l.attempt(t, now, "user:spent", true)
		l.attempt(t, now, "user:spent", true)
		for i := range maxAuthBudgets - 1 {
			l.attempt(t, now, key(i), false)
		}
		if n := l.size(); n != maxAuthBudgets {
			t.Fatalf("%d budgets, want %d", n, maxAuthBudgets)
		}
		l.attempt(t, now, "user:new", false)
		if n := l.size(); n != 2 {
			t.Errorf("after making room: %d budgets, want the spent one and the new one", n)
		}
		if err := l.begin(now, []string{"user:spent"}); err == nil {
			t.Error("the spent budget was dropped while full ones could go")
		}
	})
	t.Run("then the oldest", func(t *testing.T) {
		l := newAuthLimiter(2, time.Minute)
		for i := range maxAuthBudgets {
			l.attempt(t, now.Add(time.Duration(i)*time.Millisecond), key(i), true)
		}
		l.attempt(t, now.Add(time.Second), "user:new", true)
		if n := l.size(); n != maxAuthBudgets {
			t.Errorf("%d budgets, want %d", n, maxAuthBudgets)
		}
		if l.budgets[key(0)] != nil || l.budgets[key(1)] == nil || l.budgets["user:new"] == nil {
			t.Error("the budget dropped is not the one used longest ago")
		}
	})
	t.Run("never one in use", func(t *testing.T) {
		l := newAuthLimiter(2, time.Minute)
		for i := range maxAuthBudgets {
			if err := l.begin(now, []string{key(i)}); err != nil {
				t.Fatal(err)
			}
		}
		l.attempt(t, now, "user:new", true)
		if n := l.size(); n != maxAuthBudgets+1 {
			t.Errorf("%d budgets, want every one in use kept and the new one", n)
		}
	})
}
