-- Image members: the projects a shared image is shared with, and where
-- each stands (pending, accepted, rejected). Times are Unix microseconds.
-- Members are tenant IDs as clients give them, not necessarily projects
-- this database holds.
CREATE TABLE image_members (
	image_id   TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
	member     TEXT NOT NULL,
	status     TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (image_id, member)
) WITHOUT ROWID;

-- The "shared with me" branch of a list: a project's memberships in one
-- status. The key (image_id, member) rides along, so the index covers it.
CREATE INDEX image_members_member_status ON image_members (member, status);

-- The branches of a list filter on status and os_hidden as they walk:
-- with both in the index (and deleted_at, NULL in every entry, which the
-- walk tests too), a walk is index-only and the table is read only for
-- the page.
DROP INDEX images_owner_order;
CREATE INDEX images_owner_order ON images (owner, created_at DESC, id DESC, status, hidden, deleted_at)
	WHERE deleted_at IS NULL;
DROP INDEX images_visibility_order;
CREATE INDEX images_visibility_order ON images (visibility, created_at DESC, id DESC, owner, status, hidden, deleted_at)
	WHERE deleted_at IS NULL;

-- The private and shared views of a project's own images walk this in the
-- default order, as the other two do for the default view.
CREATE INDEX images_owner_visibility_order ON images (owner, visibility, created_at DESC, id DESC, status, hidden, deleted_at)
	WHERE deleted_at IS NULL;
