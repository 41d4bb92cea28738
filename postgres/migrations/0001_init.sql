-- The schema of cloudimage's metadata, as sqlite/migrations/0001-0005
-- leave it, in PostgreSQL's terms.
--
-- Every text column is COLLATE "C": text sorts and compares byte by byte,
-- as in SQLite and Go, whatever collation the database was created with.
-- Times are Unix microseconds in bigint columns, as in SQLite: they
-- round-trip exactly and compare as numbers.

-- Identity: projects, users, their roles in projects, and issued tokens.
CREATE TABLE projects (
	id         text COLLATE "C" PRIMARY KEY,
	name       text COLLATE "C" NOT NULL UNIQUE,
	appkey     text COLLATE "C" NOT NULL UNIQUE,
	created_at bigint NOT NULL
);

CREATE TABLE users (
	id            text COLLATE "C" PRIMARY KEY,
	name          text COLLATE "C" NOT NULL UNIQUE,
	password_hash text COLLATE "C" NOT NULL,
	created_at    bigint NOT NULL
);

CREATE TABLE role_assignments (
	user_id    text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	project_id text COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	role       text COLLATE "C" NOT NULL,
	PRIMARY KEY (user_id, project_id, role)
);

-- Tokens are kept by the SHA-256 of their secret, never the secret.
CREATE TABLE tokens (
	hash       text COLLATE "C" PRIMARY KEY,
	user_id    text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	project_id text COLLATE "C" NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
	issued_at  bigint NOT NULL,
	expires_at bigint NOT NULL
);
CREATE INDEX tokens_expires_at ON tokens (expires_at);
-- The foreign keys' cascades find a user's or a project's rows by these.
CREATE INDEX tokens_user ON tokens (user_id);
CREATE INDEX tokens_project ON tokens (project_id);
CREATE INDEX role_assignments_project ON role_assignments (project_id);

-- Images. Deleted images keep their row (with deleted_at set) so that a
-- marker naming one can still be placed. properties is a JSON object of
-- strings.
CREATE TABLE images (
	id               text COLLATE "C" PRIMARY KEY,
	name             text COLLATE "C" NOT NULL,
	status           text COLLATE "C" NOT NULL,
	visibility       text COLLATE "C" NOT NULL,
	protected        boolean NOT NULL,
	hidden           boolean NOT NULL,
	disk_format      text COLLATE "C" NOT NULL,
	container_format text COLLATE "C" NOT NULL,
	min_disk         integer NOT NULL,
	min_ram          integer NOT NULL,
	size             bigint,
	virtual_size     bigint,
	checksum         text COLLATE "C" NOT NULL,
	hash_algo        text COLLATE "C" NOT NULL,
	hash_value       text COLLATE "C" NOT NULL,
	owner            text COLLATE "C" NOT NULL REFERENCES projects (id),
	properties       jsonb NOT NULL,
	created_at       bigint NOT NULL,
	updated_at       bigint NOT NULL,
	deleted_at       bigint
);

-- The keyset indexes of a list, one for each branch of a project's view
-- (its own images, others' by visibility) and each order that has one:
-- the default (created_at, id) and by name with the same tie-breakers.
-- A branch walks its index forwards or backwards from the marker; the
-- columns it filters on as it walks are included, so that the walk reads
-- the table only for the rows it keeps.
CREATE INDEX images_owner_order ON images (owner, created_at, id)
	INCLUDE (visibility, status, hidden) WHERE deleted_at IS NULL;
CREATE INDEX images_visibility_order ON images (visibility, created_at, id)
	INCLUDE (owner, status, hidden) WHERE deleted_at IS NULL;
CREATE INDEX images_owner_visibility_order ON images (owner, visibility, created_at, id)
	INCLUDE (status, hidden) WHERE deleted_at IS NULL;
CREATE INDEX images_owner_name_order ON images (owner, name, created_at, id)
	INCLUDE (visibility, status, hidden) WHERE deleted_at IS NULL;
CREATE INDEX images_visibility_name_order ON images (visibility, name, created_at, id)
	INCLUDE (owner, status, hidden) WHERE deleted_at IS NULL;

-- Owners and visibilities go together (public images are mostly one
-- project's, a project's own mostly private or shared): without these
-- statistics the planner multiplies their selectivities, misjudges how
-- many public images are others', and sorts every public image rather
-- than walk images_visibility_order for a page.
CREATE STATISTICS images_owner_visibility (mcv) ON owner, visibility FROM images;

-- Finds uploads that a crash interrupted, oldest first.
CREATE INDEX images_status ON images (status, created_at, id);

-- Finds the images whose delayed delete is due.
CREATE INDEX images_pending_delete ON images (deleted_at, id) WHERE status = 'pending_delete';

-- A project's usage under its quotas (how many images it has that are
-- not deleted, and the sum of their sizes) is read from this index alone.
CREATE INDEX images_owner_size ON images (owner) INCLUDE (size) WHERE deleted_at IS NULL;

-- Filters on extra properties: properties @> '{"key": "value"}'.
CREATE INDEX images_properties ON images USING gin (properties jsonb_path_ops);

CREATE TABLE image_tags (
	image_id text COLLATE "C" NOT NULL REFERENCES images (id) ON DELETE CASCADE,
	tag      text COLLATE "C" NOT NULL,
	PRIMARY KEY (image_id, tag)
);
CREATE INDEX image_tags_tag ON image_tags (tag, image_id);

-- Image members: the projects a shared image is shared with, and where
-- each stands (pending, accepted, rejected). Members are tenant IDs as
-- clients give them, not necessarily projects this database holds.
CREATE TABLE image_members (
	image_id   text COLLATE "C" NOT NULL REFERENCES images (id) ON DELETE CASCADE,
	member     text COLLATE "C" NOT NULL,
	status     text COLLATE "C" NOT NULL,
	created_at bigint NOT NULL,
	updated_at bigint NOT NULL,
	PRIMARY KEY (image_id, member)
);

-- The "shared with me" branch of a list: a project's memberships in one
-- status, the image ID with them.
CREATE INDEX image_members_member_status ON image_members (member, status, image_id);

-- Leases let one replica of several on this database do work meant for
-- one at a time (the scrubber and the orphan sweep). expires_at is Unix
-- microseconds by the database server's clock; a lease past it is free.
CREATE TABLE leases (
	name       text COLLATE "C" PRIMARY KEY,
	holder     text COLLATE "C" NOT NULL,
	expires_at bigint NOT NULL
);
