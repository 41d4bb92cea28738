-- The failure budgets of token issuing, shared by every replica on this
-- database: one per key (a user, a client address), kept as the time in
-- Unix microseconds at which the budget is full again. A key without a
-- row, or with one not after now, has a full budget; rows of full ones
-- are purged by that index.
CREATE TABLE auth_failures (
	key     TEXT PRIMARY KEY,
	full_at INTEGER NOT NULL
);
CREATE INDEX auth_failures_full_at ON auth_failures (full_at);
