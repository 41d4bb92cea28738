-- Lists ordered by name (Terraform's default: sort_key=name&sort_dir=asc),
-- with the created_at and id tie-breakers in the same direction, walk
-- these as the default order walks images_owner_order and
-- images_visibility_order, in either direction.
CREATE INDEX images_owner_name_order ON images (owner, name, created_at, id, status, hidden, deleted_at)
	WHERE deleted_at IS NULL;
CREATE INDEX images_visibility_name_order ON images (visibility, name, created_at, id, owner, status, hidden, deleted_at)
	WHERE deleted_at IS NULL;
