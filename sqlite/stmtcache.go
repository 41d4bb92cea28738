package sqlite

import (
	"container/list"
	"context"
	"database/sql"
	"errors"
	"sync"
)

// stmtCacheSize is how many statements the read pool keeps prepared.
// The texts that vary come from the list, one per shape of query (view,
// filters present, order, marker or none, page size), of which clients
// use a handful. A list statement takes 20 to 40 KB of SQLite's memory
// on each connection that has run it, so a client trying every shape
// costs at most some 2.5 MB a connection of the pool (one a core, four
// at least).
const stmtCacheSize = 64

// stmtCache keeps statements of one pool prepared, keyed by their text,
// so that a statement run again is not parsed and planned again:
// database/sql prepares the text of every QueryContext on a *sql.DB
// anew, which was an eighth of a list's time and half of a token
// lookup's. It holds at most max statements and closes the least
// recently used one to make room. Statements are prepared with sqlite3_prepare_v2, so a change of
// schema by another connection makes SQLite prepare them again itself.
//
// A statement that cannot be prepared (a busy schema, a cancelled
// context) is not kept: the query runs through the pool as it is, which
// reports the error as it would have without a cache.
type stmtCache struct {
	db  *sql.DB
	max int

	mu     sync.Mutex
	lru    list.List // of *cachedStmt, the most recently used first
	byText map[string]*list.Element
	closed bool
}

// cachedStmt is one statement of a stmtCache. users counts the callers
// between get and put, so that an evicted statement is closed only once
// none is about to run it (rows still open keep it alive by themselves).
type cachedStmt struct {
	text    string
	stmt    *sql.Stmt
	users   int  // guarded by stmtCache.mu
	evicted bool // guarded by stmtCache.mu
}

func newStmtCache(db *sql.DB, max int) *stmtCache {
	return &stmtCache{db: db, max: max, byText: make(map[string]*list.Element)}
}

// QueryContext runs query, prepared once.
func (c *stmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s := c.get(ctx, query)
	if s == nil {
		return c.db.QueryContext(ctx, query, args...)
	}
	defer c.put(s)
	return s.stmt.QueryContext(ctx, args...)
}

// QueryRowContext runs query, prepared once, for at most one row.
func (c *stmtCache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	s := c.get(ctx, query)
	if s == nil {
		return c.db.QueryRowContext(ctx, query, args...)
	}
	defer c.put(s)
	return s.stmt.QueryRowContext(ctx, args...)
}

// get returns the prepared statement of text, preparing it if need be,
// or nil if it cannot be prepared or the cache is closed. A statement
// got must be put back.
func (c *stmtCache) get(ctx context.Context, text string) *cachedStmt {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	if el, ok := c.byText[text]; ok {
		c.lru.MoveToFront(el)
		s := el.Value.(*cachedStmt)
		s.users++
		c.mu.Unlock()
		return s
	}
	c.mu.Unlock()

	// Prepared without the lock, so that a miss does not hold up hits;
	// two callers that miss together may both prepare, and one is kept.
	stmt, err := c.db.PrepareContext(ctx, text)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		stmt.Close()
		return nil
	}
	if el, ok := c.byText[text]; ok {
		stmt.Close()
		c.lru.MoveToFront(el)
		s := el.Value.(*cachedStmt)
		s.users++
		return s
	}
	s := &cachedStmt{text: text, stmt: stmt, users: 1}
	c.byText[text] = c.lru.PushFront(s)
	for c.lru.Len() > c.max {
		c.evict(c.lru.Back())
	}
	return s
}

// put gives back a statement got, closing it if it was evicted meanwhile
// and no one else is about to run it.
func (c *stmtCache) put(s *cachedStmt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.users--
	if s.evicted && s.users == 0 {
		s.stmt.Close()
	}
}

// evict removes el's statement from the cache, closing it unless it is
// in use; c.mu is held.
func (c *stmtCache) evict(el *list.Element) {
	s := c.lru.Remove(el).(*cachedStmt)
	delete(c.byText, s.text)
	s.evicted = true
	if s.users == 0 {
		s.stmt.Close()
	}
}

// len returns how many statements the cache holds.
func (c *stmtCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// close closes every statement and makes the cache pass queries through
// to the pool from then on.
func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	for c.lru.Len() > 0 {
		s := c.lru.Remove(c.lru.Front()).(*cachedStmt)
		delete(c.byText, s.text)
		s.evicted = true
		if s.users == 0 {
			errs = append(errs, s.stmt.Close())
		}
	}
	return errors.Join(errs...)
}
