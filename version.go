package cloudimage

import (
	"context"
	"reflect"
	"sync"
)

// A Versioner is a store that can tell cheaply whether anything in it has
// changed. Caches key on its version: what was read from the store under
// one version is still what the store holds as long as Version returns
// the same value.
//
// Version must be exact, not a hint. Two calls return the same value only
// if no change was committed in between, by this process or by any other
// one sharing the store; and what a read begun after a call returns is at
// least as new as that call's version. A store that cannot promise that
// does not implement Versioner, and nothing is cached over it.
type Versioner interface {
	// Version returns the store's current version. Versions only grow.
	Version(ctx context.Context) (uint64, error)
}

// versionMemoKey is the context key of a *versionMemo.
type versionMemoKey struct{}

// versionMemo is the version read first under a context.
type versionMemo struct {
	mu      sync.Mutex
	from    Versioner // nil until read
	version uint64
}

// WithVersionMemo returns a context under which ReadVersion asks a
// Versioner once and gives every later call the same answer. A request
// handler runs under one: every cache it consults is then looked up, and
// filled, under the one version read before any of its reads of the
// store, which is what VersionCache asks of its callers. It must not
// outlive the request.
func WithVersionMemo(ctx context.Context) context.Context {
	return context.WithValue(ctx, versionMemoKey{}, &versionMemo{})
}

// ReadVersion returns v's version: under a context from WithVersionMemo
// the one read first there, of the same v (compared with ==, as a pointer
// to a store is; a v that cannot be compared is read afresh each time);
// otherwise a fresh one. An error is not remembered.
func ReadVersion(ctx context.Context, v Versioner) (uint64, error) {
	m, _ := ctx.Value(versionMemoKey{}).(*versionMemo)
	if m == nil {
		return v.Version(ctx)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.from != nil {
		if m.from == v {
			return m.version, nil
		}
		return v.Version(ctx)
	}
	n, err := v.Version(ctx)
	if err == nil && reflect.ValueOf(v).Comparable() {
		m.from, m.version = v, n
	}
	return n, err
}

// VersionCache holds values computed from a Versioner's store, each valid
// for the one version under which it was computed: a lookup under a newer
// version finds nothing, and the first one drops every entry, so that a
// change anywhere in the store empties the cache at once. It holds at
// most a fixed total cost of values (bytes, or entries), evicting entries
// at random when it is full. It is safe for concurrent use.
//
// The caller reads the version before it reads the store, and puts the
// value under that version: the value is then at least as new as the
// version it is filed under, and never older than the store once the
// version has moved on.
type VersionCache[V any] struct {
	mu      sync.Mutex
	version uint64
	entries map[string]versionEntry[V]
	cost    int // of the entries held
	max     int // total cost held at most
	maxOne  int // cost of one entry at most
}

type versionEntry[V any] struct {
	value V
	cost  int
}

// NewVersionCache returns a cache that holds at most max in total cost,
// and no single value costing more than maxOne.
func NewVersionCache[V any](max, maxOne int) *VersionCache[V] {
	return &VersionCache[V]{entries: map[string]versionEntry[V]{}, max: max, maxOne: min(maxOne, max)}
}

// MaxCost returns the largest cost of a value the cache keeps, so that a
// caller can stop collecting a value that will not be kept.
func (c *VersionCache[V]) MaxCost() int {
	return c.maxOne
}

// advance moves the cache to version v, dropping every entry, if v is
// newer than the cache's version. It reports whether the cache is at v.
func (c *VersionCache[V]) advance(v uint64) bool {
	if v > c.version {
		// A new map, not clear: a map keeps the room of its largest size.
		c.entries = map[string]versionEntry[V]{}
		c.version, c.cost = v, 0
	}
	return v == c.version
}

// Get returns the value filed under key at version v.
func (c *VersionCache[V]) Get(v uint64, key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.advance(v) {
		var zero V
		return zero, false
	}
	e, ok := c.entries[key]
	return e.value, ok
}

// Put files value under key at version v, at the given cost. A value
// computed under a version older than the cache's is not kept, nor is
// one that costs more than MaxCost.
func (c *VersionCache[V]) Put(v uint64, key string, value V, cost int) {
	cost = max(cost, 1)
	if cost > c.maxOne {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.advance(v) {
		return
	}
	if old, ok := c.entries[key]; ok {
		c.cost -= old.cost
		delete(c.entries, key)
	}
	// Map iteration order is random: this evicts random entries.
	for k, e := range c.entries {
		if c.cost+cost <= c.max {
			break
		}
		delete(c.entries, k)
		c.cost -= e.cost
	}
	c.entries[key] = versionEntry[V]{value: value, cost: cost}
	c.cost += cost
}

// Len returns the number of entries held.
func (c *VersionCache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
