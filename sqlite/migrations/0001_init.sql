-- Identity: projects, users, their roles in projects, and issued tokens.
CREATE TABLE projects (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	appkey     TEXT NOT NULL UNIQUE,
	created_at INTEGER NOT NULL
);

CREATE TABLE users (
	id            TEXT PRIMARY KEY,
	name          TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL,
	created_at    INTEGER NOT NULL
);

CREATE TABLE role_assignments (
	user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	role       TEXT NOT NULL,
	PRIMARY KEY (user_id, project_id, role)
);

-- Tokens are kept by the SHA-256 of their secret, never the secret.
CREATE TABLE tokens (
	hash       TEXT PRIMARY KEY,
	user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	issued_at  INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);
CREATE INDEX tokens_expires_at ON tokens (expires_at);

-- Images. Times are Unix microseconds. Deleted images keep their row (with
-- deleted_at set) so that a marker naming one can still be placed.
CREATE TABLE images (
	id               TEXT PRIMARY KEY,
	name             TEXT NOT NULL,
	status           TEXT NOT NULL,
	visibility       TEXT NOT NULL,
	protected        INTEGER NOT NULL,
	hidden           INTEGER NOT NULL,
	disk_format      TEXT NOT NULL,
	container_format TEXT NOT NULL,
	min_disk         INTEGER NOT NULL,
	min_ram          INTEGER NOT NULL,
	size             INTEGER,
	virtual_size     INTEGER,
	checksum         TEXT NOT NULL,
	hash_algo        TEXT NOT NULL,
	hash_value       TEXT NOT NULL,
	owner            TEXT NOT NULL REFERENCES projects (id),
	properties       TEXT NOT NULL, -- a JSON object of strings
	created_at       INTEGER NOT NULL,
	updated_at       INTEGER NOT NULL,
	deleted_at       INTEGER
);

-- The keyset indexes of the default order (created_at desc, id desc), one
-- for each branch of a project's view: its own images and public ones.
CREATE INDEX images_owner_order ON images (owner, created_at DESC, id DESC)
	WHERE deleted_at IS NULL;
CREATE INDEX images_visibility_order ON images (visibility, created_at DESC, id DESC)
	WHERE deleted_at IS NULL;

-- Finds uploads that a crash interrupted.
CREATE INDEX images_status ON images (status);

CREATE TABLE image_tags (
	image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
	tag      TEXT NOT NULL,
	PRIMARY KEY (image_id, tag)
);
CREATE INDEX image_tags_tag ON image_tags (tag);
