package cloudimage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Default failure budget of token issuing: DefaultAuthFailureBurst failed
// attempts in a row, then one more every DefaultAuthFailureInterval.
const (
	DefaultAuthFailureBurst    = 10
	DefaultAuthFailureInterval = time.Minute
)

// maxAuthBudgets bounds the budgets that memAuthFailures keeps. Only
// keys that failed recently hold a budget that is not full; full ones
// are dropped first.
const maxAuthBudgets = 10000

// AuthFailureStore keeps the failure budgets of token issuing, one per
// key (a user, a client address), where every replica of the service
// sees them: the metadata stores implement it in their database. A
// budget is a token bucket of burst attempts that refills one every
// interval; a key without a stored budget has a full one. Times are the
// caller's clock (every replica's must agree, as NTP keeps them).
type AuthFailureStore interface {
	// TakeAuthAttempt takes one attempt from the budget of each of keys
	// at now, atomically and for all of them or none: when the budget of
	// one of them holds less than one attempt, it takes nothing and
	// returns how long until every one would hold one (more than zero).
	TakeAuthAttempt(ctx context.Context, keys []string, burst int, interval time.Duration, now time.Time) (wait time.Duration, err error)
	// ReturnAuthAttempt gives back to the budget of each of keys the
	// attempt TakeAuthAttempt took, as an attempt that succeeded does.
	ReturnAuthAttempt(ctx context.Context, keys []string, interval time.Duration, now time.Time) error
	// PurgeAuthFailures forgets the budgets that are full at now, which
	// are what a key without one has anyway, and returns how many.
	PurgeAuthFailures(ctx context.Context, now time.Time) (int64, error)
}

// authLimiter limits failed token requests with the budgets of a store.
// An attempt is refused while the budget of one of its keys is spent; an
// admitted one takes an attempt from each of its keys at once, and one
// that succeeds gives it back. So attempts still running count against
// the budget, and concurrent guesses cannot overdraw it, on any replica;
// a replica that dies mid-attempt leaves it counted as a failure.
type authLimiter struct {
	burst int
	every time.Duration
	store AuthFailureStore

	mu     sync.Mutex
	purged time.Time // when this limiter last purged full budgets
}

func newAuthLimiter(burst int, every time.Duration, store AuthFailureStore) *authLimiter {
	if burst <= 0 || every <= 0 {
		return nil
	}
	if store == nil {
		store = newMemAuthFailures()
	}
	return &authLimiter{burst: burst, every: every, store: store}
}

// errTooManyFailures is the refusal of an attempt whose budget is spent.
var errTooManyFailures = Errorf(ETOOMANY,
	"Too many failed authentication attempts: try again later.")

// begin admits an attempt by keys at now, or refuses it with ETOOMANY and
// the wait until one would be admitted. An admitted attempt must be ended
// with end.
func (l *authLimiter) begin(ctx context.Context, now time.Time, keys []string) error {
	if l == nil {
		return nil
	}
	wait, err := l.store.TakeAuthAttempt(ctx, keys, l.burst, l.every, now)
	if err != nil {
		return err
	}
	l.purge(ctx, now)
	if wait > 0 {
		return &RetryError{Err: errTooManyFailures, After: wait}
	}
	return nil
}

// end ends an attempt that begin admitted: a failed one keeps the
// attempt it took from each key, one that succeeded gives it back. The
// giving back outlives the request's context: a success must not count
// as a failure because its caller went away.
func (l *authLimiter) end(ctx context.Context, now time.Time, keys []string, failed bool) {
	if l == nil || failed {
		return
	}
	// An error here leaves the success counted as a failure: the safe
	// side, and the store's error is reported wherever it persists.
	_ = l.store.ReturnAuthAttempt(context.WithoutCancel(ctx), keys, l.every, now)
}

// purge forgets the full budgets of the store, at most once an interval
// on this limiter, so that the budgets kept stay bounded by the keys that
// failed in the last burst intervals.
func (l *authLimiter) purge(ctx context.Context, now time.Time) {
	l.mu.Lock()
	due := now.Sub(l.purged) >= l.every || now.Before(l.purged)
	if due {
		l.purged = now
	}
	l.mu.Unlock()
	if due {
		_, _ = l.store.PurgeAuthFailures(context.WithoutCancel(ctx), now)
	}
}

// AuthBudgetTake is the arithmetic of TakeAuthAttempt for stores that
// keep a budget as the time it is full again (fullAt; the zero time or
// any time not after now is a full budget): it returns the new fullAt
// when the budget holds an attempt, or the wait until it would.
func AuthBudgetTake(fullAt time.Time, burst int, interval time.Duration, now time.Time) (time.Time, time.Duration) {
	if fullAt.Before(now) {
		fullAt = now
	}
	// The budget lacks fullAt-now worth of refills; it holds an attempt
	// while that is at most burst-1 of them.
	if wait := fullAt.Sub(now) - time.Duration(burst-1)*interval; wait > 0 {
		return time.Time{}, wait
	}
	return fullAt.Add(interval), 0
}

// memAuthFailures is an AuthFailureStore in process memory, for identity
// stores that do not keep budgets: a replica's budgets are its own.
type memAuthFailures struct {
	mu      sync.Mutex
	budgets map[string]*memBudget
}

type memBudget struct {
	fullAt time.Time
	used   time.Time // when an attempt last began
}

func newMemAuthFailures() *memAuthFailures {
	return &memAuthFailures{budgets: map[string]*memBudget{}}
}

// TakeAuthAttempt implements AuthFailureStore.
func (m *memAuthFailures) TakeAuthAttempt(_ context.Context, keys []string, burst int, interval time.Duration, now time.Time) (time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var wait time.Duration
	next := make([]time.Time, len(keys))
	for i, k := range keys {
		var fullAt time.Time
		if b := m.budgets[k]; b != nil {
			fullAt = b.fullAt
		}
		var w time.Duration
		next[i], w = AuthBudgetTake(fullAt, burst, interval, now)
		wait = max(wait, w)
	}
	if wait > 0 {
		return wait, nil
	}
	for i, k := range keys {
		b := m.budgets[k]
		if b == nil {
			m.makeRoom(now)
			b = &memBudget{}
			m.budgets[k] = b
		}
		b.fullAt, b.used = next[i], now
	}
	return 0, nil
}

// ReturnAuthAttempt implements AuthFailureStore.
func (m *memAuthFailures) ReturnAuthAttempt(_ context.Context, keys []string, interval time.Duration, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		if b := m.budgets[k]; b != nil {
			b.fullAt = b.fullAt.Add(-interval)
		}
	}
	return nil
}

// PurgeAuthFailures implements AuthFailureStore.
func (m *memAuthFailures) PurgeAuthFailures(_ context.Context, now time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dropFull(now), nil
}

func (m *memAuthFailures) dropFull(now time.Time) int64 {
	var n int64
	for k, b := range m.budgets {
		if !b.fullAt.After(now) {
			delete(m.budgets, k)
			n++
		}
	}
	return n
}

// makeRoom drops budgets when there are too many: first every full one,
// which is what a new budget would be anyway; if that is not enough, the
// one used longest ago.
func (m *memAuthFailures) makeRoom(now time.Time) {
	if len(m.budgets) < maxAuthBudgets {
		return
	}
	m.dropFull(now)
	for len(m.budgets) >= maxAuthBudgets {
		var oldest string
		for k, b := range m.budgets {
			if oldest == "" || b.used.Before(m.budgets[oldest].used) {
				oldest = k
			}
		}
		delete(m.budgets, oldest)
	}
}

// size returns the number of budgets kept.
func (m *memAuthFailures) size() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.budgets)
}

// authKeys are the budgets an attempt with cr draws on: the user it names
// (user, when it exists, whether named by name or by ID, so that the two
// share one budget) and the client address it comes from, when known.
func authKeys(cr Credentials, user *User) []string {
	keys := make([]string, 0, 2)
	switch {
	case user != nil:
		keys = append(keys, "user-id:"+user.ID)
	case cr.UserID != "":
		keys = append(keys, "user-id:"+authKeyPart(cr.UserID))
	default:
		keys = append(keys, "user:"+authKeyPart(cr.Username))
	}
	if cr.Client != "" {
		keys = append(keys, "client:"+authKeyPart(cr.Client))
	}
	return keys
}

// authKeyPart returns s as a part of a budget's key: itself when it is
// short printable ASCII, else a hash of it, so that what a client sends
// stores in any database and at a bounded size.
func authKeyPart(s string) string {
	ok := len(s) <= 255
	for i := 0; ok && i < len(s); i++ {
		ok = s[i] > ' ' && s[i] < 0x7f && s[i] != '#'
	}
	if ok {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "#" + hex.EncodeToString(sum[:])
}

// RetryError is an error that may succeed if the request is made again
// after a while: ETOOMANY or EUNAVAILABLE with the time to wait.
type RetryError struct {
	Err   *Error
	After time.Duration
}

// Error implements the error interface.
func (e *RetryError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}

// Unwrap returns the coded error, so that ErrorCode and ErrorMessage see it.
func (e *RetryError) Unwrap() error { return e.Err }

// RetryAfter returns how long to wait before trying again, if err says,
// or 0.
func RetryAfter(err error) time.Duration {
	var re *RetryError
	if errors.As(err, &re) {
		return re.After
	}
	return 0
}
