package cloudimage

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Default failure budget of token issuing: DefaultAuthFailureBurst failed
// attempts in a row, then one more every DefaultAuthFailureInterval.
const (
	DefaultAuthFailureBurst    = 10
	DefaultAuthFailureInterval = time.Minute
)

// maxAuthBudgets bounds the budgets kept in memory. Only keys that failed
// recently hold a budget that is not full; full ones are dropped first.
const maxAuthBudgets = 10000

// authLimiter keeps a failure budget per key (a user, a client address):
// a token bucket of burst failures that refills one every interval. An
// attempt is refused while the budget of one of its keys is spent; a
// failed one takes a failure from each of its keys, a successful one
// nothing. Attempts still running count against the budget, so that
// concurrent guesses cannot overdraw it.
type authLimiter struct {
	burst int
	every time.Duration

	mu      sync.Mutex
	budgets map[string]*authBudget
}

type authBudget struct {
	lim     *rate.Limiter
	pending int       // attempts admitted and not yet over
	used    time.Time // when an attempt last began
}

func newAuthLimiter(burst int, every time.Duration) *authLimiter {
	if burst <= 0 || every <= 0 {
		return nil
	}
	return &authLimiter{burst: burst, every: every, budgets: map[string]*authBudget{}}
}

// errTooManyFailures is the refusal of an attempt whose budget is spent.
var errTooManyFailures = Errorf(ETOOMANY,
	"Too many failed authentication attempts: try again later.")

// begin admits an attempt by keys at now, or refuses it with ETOOMANY and
// the wait until one would be admitted. An admitted attempt must be ended
// with end.
func (l *authLimiter) begin(now time.Time, keys []string) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		if b := l.budgets[k]; b != nil {
			if left := b.lim.TokensAt(now) - float64(b.pending); left < 1 {
				wait = max(wait, time.Duration(math.Ceil((1-left)*float64(l.every))))
			}
		}
	}
	if wait > 0 {
		return &RetryError{Err: errTooManyFailures, After: wait}
	}
	for _, k := range keys {
		b := l.budgets[k]
		if b == nil {
			l.makeRoom(now)
			b = &authBudget{lim: rate.NewLimiter(rate.Every(l.every), l.burst)}
			l.budgets[k] = b
		}
		b.pending++
		b.used = now
	}
	return nil
}

// end ends an attempt that begin admitted; a failed one takes a failure
// from the budget of each of its keys.
func (l *authLimiter) end(now time.Time, keys []string, failed bool) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		b := l.budgets[k]
		if b == nil {
			continue
		}
		b.pending--
		if failed {
			// A reservation always takes its token, even one the budget
			// does not have: every failure counts.
			b.lim.ReserveN(now, 1)
		}
	}
}

// makeRoom drops budgets when there are too many: first every full one
// that no attempt is using, which is what a new budget would be anyway;
// if that is not enough, the one used longest ago.
func (l *authLimiter) makeRoom(now time.Time) {
	if len(l.budgets) < maxAuthBudgets {
		return
	}
	for k, b := range l.budgets {
		if b.pending == 0 && b.lim.TokensAt(now) >= float64(l.burst) {
			delete(l.budgets, k)
		}
	}
	for len(l.budgets) >= maxAuthBudgets {
		var oldest string
		for k, b := range l.budgets {
			if b.pending == 0 && (oldest == "" || b.used.Before(l.budgets[oldest].used)) {
				oldest = k
			}
		}
		if oldest == "" {
			return // every budget is in use: let the map grow by this one
		}
		delete(l.budgets, oldest)
	}
}

// size returns the number of budgets kept.
func (l *authLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.budgets)
}

// authKeys are the budgets an attempt with cr draws on: the user it names
// and the client address it comes from, when known.
func authKeys(cr Credentials) []string {
	keys := make([]string, 0, 2)
	if cr.UserID != "" {
		keys = append(keys, "user-id:"+cr.UserID)
	} else {
		keys = append(keys, "user:"+cr.Username)
	}
	if cr.Client != "" {
		keys = append(keys, "client:"+cr.Client)
	}
	return keys
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
