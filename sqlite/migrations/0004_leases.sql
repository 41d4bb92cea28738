-- Leases let one replica of several on this database do work meant for
-- one at a time (the scrubber and the orphan sweep). expires_at is Unix
-- microseconds; a lease past it is free.
CREATE TABLE leases (
	name       TEXT PRIMARY KEY,
	holder     TEXT NOT NULL,
	expires_at INTEGER NOT NULL
);

-- Finds the images whose delayed delete is due.
CREATE INDEX images_pending_delete ON images (deleted_at) WHERE status = 'pending_delete';
