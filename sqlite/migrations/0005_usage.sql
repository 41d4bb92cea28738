-- A project's usage under its quotas (how many images it has that are
-- not deleted, and the sum of their sizes) is read from this index
-- alone: every upload under a byte quota reads it, once inside its write
-- transaction. deleted_at, NULL in every entry, is there because the
-- query tests it, as in 0002.
CREATE INDEX images_owner_size ON images (owner, size, deleted_at)
	WHERE deleted_at IS NULL;
