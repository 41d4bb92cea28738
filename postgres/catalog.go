package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudimage/cloudimage"
	"github.com/jackc/pgx/v5"
)

// Ensure DB can be copied from and to.
var (
	_ cloudimage.CatalogReader = (*DB)(nil)
	_ cloudimage.CatalogWriter = (*DB)(nil)
)

// codeForeignKeyViolation is the SQLSTATE of a row that names a missing
// parent row.
const codeForeignKeyViolation = "23503"

// checkPage returns EINVALID for a page that cannot be asked for.
func checkPage(after string, limit int) error {
	if limit <= 0 {
		return cloudimage.Errorf(cloudimage.EINVALID, "limit must be positive")
	}
	if !storable(after) {
		return unstorable("The cursor")
	}
	return nil
}

// CatalogProjects returns up to limit projects with IDs after after, by ID.
func (db *DB) CatalogProjects(ctx context.Context, after string, limit int) ([]*cloudimage.Project, error) {
	if err := checkPage(after, limit); err != nil {
		return nil, err
	}
	rows, err := db.pool.Query(ctx, `SELECT id, name, appkey, created_at FROM projects
		WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", unavailable(err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*cloudimage.Project, error) {
		var p cloudimage.Project
		var created int64
		err := row.Scan(&p.ID, &p.Name, &p.AppKey, &created)
		p.CreatedAt = fromMicros(created)
		return &p, err
	})
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", unavailable(err))
	}
	return out, nil
}

// CatalogUsers returns up to limit users with IDs after after, by ID.
func (db *DB) CatalogUsers(ctx context.Context, after string, limit int) ([]*cloudimage.User, error) {
	if err := checkPage(after, limit); err != nil {
		return nil, err
	}
	rows, err := db.pool.Query(ctx, `SELECT id, name, password_hash, created_at FROM users
		WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", unavailable(err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*cloudimage.User, error) {
		var u cloudimage.User
		var created int64
		err := row.Scan(&u.ID, &u.Name, &u.PasswordHash, &created)
		u.CreatedAt = fromMicros(created)
		return &u, err
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", unavailable(err))
	}
	return out, nil
}

// CatalogRoles returns up to limit role assignments after after, by user,
// project and role.
func (db *DB) CatalogRoles(ctx context.Context, after *cloudimage.RoleAssignment,
	limit int) ([]cloudimage.RoleAssignment, error) {
	if err := checkPage("", limit); err != nil {
		return nil, err
	}
	query := `SELECT user_id, project_id, role FROM role_assignments ORDER BY user_id, project_id, role LIMIT $1`
	args := []any{limit}
	if after != nil {
		if !storable(after.UserID) || !storable(after.ProjectID) || !storable(string(after.Role)) {
			return nil, unstorable("The cursor")
		}
		query = `SELECT user_id, project_id, role FROM role_assignments
			WHERE (user_id, project_id, role) > ($2, $3, $4) ORDER BY user_id, project_id, role LIMIT $1`
		args = append(args, after.UserID, after.ProjectID, string(after.Role))
	}
	rows, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list role assignments: %w", unavailable(err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (cloudimage.RoleAssignment, error) {
		var r cloudimage.RoleAssignment
		var role string
		err := row.Scan(&r.UserID, &r.ProjectID, &role)
		r.Role = cloudimage.Role(role)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("list role assignments: %w", unavailable(err))
	}
	return out, nil
}

// CatalogImages returns up to limit images of every status with IDs after
// after, by ID, with their tags and members, all from one snapshot.
func (db *DB) CatalogImages(ctx context.Context, after string, limit int) ([]*cloudimage.CatalogImage, error) {
	if err := checkPage(after, limit); err != nil {
		return nil, err
	}
	var out []*cloudimage.CatalogImage
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
		func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `SELECT `+qualifiedImageColumns+`, `+tagsColumn+`
				FROM images i WHERE i.id > $1 ORDER BY i.id LIMIT $2`, after, limit)
			if err != nil {
				return err
			}
			imgs, err := scanImages(rows, true)
			if err != nil {
				return err
			}
			out = make([]*cloudimage.CatalogImage, len(imgs))
			byID := make(map[string]*cloudimage.CatalogImage, len(imgs))
			ids := make([]string, len(imgs))
			for i, img := range imgs {
				out[i] = &cloudimage.CatalogImage{Image: img, Members: []*cloudimage.Member{}}
				byID[img.ID], ids[i] = out[i], img.ID
			}
			if len(imgs) == 0 {
				return nil
			}
			rows, err = tx.Query(ctx, `SELECT `+memberColumns+` FROM image_members
				WHERE image_id = ANY($1) ORDER BY image_id, member`, ids)
			if err != nil {
				return err
			}
			members, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*cloudimage.Member, error) {
				return scanMember(row)
			})
			for _, m := range members {
				byID[m.ImageID].Members = append(byID[m.ImageID].Members, m)
			}
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", unavailable(err))
	}
	return out, nil
}

// ImportProject stores p unless the database holds it already.
func (db *DB) ImportProject(ctx context.Context, p *cloudimage.Project) (bool, error) {
	if !storable(p.ID) || !storable(p.Name) || !storable(p.AppKey) {
		return false, unstorable("The project's ID, name or appkey")
	}
	var wrote bool
	err := db.tx(ctx, func(tx pgx.Tx) error {
		wrote = false
		var have cloudimage.Project
		var created int64
		err := tx.QueryRow(ctx, `SELECT id, name, appkey, created_at FROM projects WHERE id = $1`, p.ID).
			Scan(&have.ID, &have.Name, &have.AppKey, &created)
		if err == nil {
			have.CreatedAt = fromMicros(created)
			if d := have.Diff(p); d != "" {
				return cloudimage.Errorf(cloudimage.ECONFLICT, "Project %s exists with a different %s", p.ID, d)
			}
			return nil
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("read project %s: %w", p.ID, err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO projects (id, name, appkey, created_at) VALUES ($1, $2, $3, $4)`,
			p.ID, p.Name, p.AppKey, micros(p.CreatedAt))
		if isUniqueViolation(err) {
			return cloudimage.Errorf(cloudimage.ECONFLICT,
				"Another project than %s has the name %q or the appkey %q", p.ID, p.Name, p.AppKey)
		} else if err != nil {
			return fmt.Errorf("insert project %s: %w", p.ID, err)
		}
		wrote = true
		return nil
	})
	return wrote, err
}

// ImportUser stores u unless the database holds it already.
func (db *DB) ImportUser(ctx context.Context, u *cloudimage.User) (bool, error) {
	if !storable(u.ID) || !storable(u.Name) || !storable(u.PasswordHash) {
		return false, unstorable("The user's ID, name or password hash")
	}
	var wrote bool
	err := db.tx(ctx, func(tx pgx.Tx) error {
		wrote = false
		var have cloudimage.User
		var created int64
		err := tx.QueryRow(ctx, `SELECT id, name, password_hash, created_at FROM users WHERE id = $1`, u.ID).
			Scan(&have.ID, &have.Name, &have.PasswordHash, &created)
		if err == nil {
			have.CreatedAt = fromMicros(created)
			if d := have.Diff(u); d != "" {
				return cloudimage.Errorf(cloudimage.ECONFLICT, "User %s exists with a different %s", u.ID, d)
			}
			return nil
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("read user %s: %w", u.ID, err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO users (id, name, password_hash, created_at) VALUES ($1, $2, $3, $4)`,
			u.ID, u.Name, u.PasswordHash, micros(u.CreatedAt))
		if isUniqueViolation(err) {
			return cloudimage.Errorf(cloudimage.ECONFLICT, "Another user than %s has the name %q", u.ID, u.Name)
		} else if err != nil {
			return fmt.Errorf("insert user %s: %w", u.ID, err)
		}
		wrote = true
		return nil
	})
	return wrote, err
}

// ImportRole stores a role assignment unless the database holds it.
func (db *DB) ImportRole(ctx context.Context, a cloudimage.RoleAssignment) (bool, error) {
	if !storable(a.UserID) || !storable(a.ProjectID) || !storable(string(a.Role)) {
		return false, unstorable("The role assignment")
	}
	n, err := db.exec(ctx, `INSERT INTO role_assignments (user_id, project_id, role) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`, a.UserID, a.ProjectID, string(a.Role))
	if sqlState(err) == codeForeignKeyViolation {
		return false, cloudimage.Errorf(cloudimage.ENOTFOUND,
			"No user %s or no project %s to assign role %s in", a.UserID, a.ProjectID, a.Role)
	} else if err != nil {
		return false, fmt.Errorf("assign role %s: %w", a.Role, err)
	}
	return n > 0, nil
}

// ImportImage stores an image with its tags and members unless the
// database holds it already.
func (db *DB) ImportImage(ctx context.Context, r *cloudimage.CatalogImage) (bool, error) {
	id := r.Image.ID
	if !storable(id) {
		return false, unstorable("The image's id")
	}
	for _, m := range r.Members {
		if !storable(m.ProjectID) || !storable(string(m.Status)) {
			return false, unstorable("A member")
		}
	}
	var wrote bool
	err := db.tx(ctx, func(tx pgx.Tx) error {
		wrote = false
		have, err := scanImage(tx.QueryRow(ctx, `SELECT `+qualifiedImageColumns+`, `+tagsColumn+`
			FROM images i WHERE i.id = $1`, id), true)
		if err == nil {
			rows, err := tx.Query(ctx, `SELECT `+memberColumns+` FROM image_members
				WHERE image_id = $1 ORDER BY member`, id)
			if err != nil {
				return err
			}
			members, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*cloudimage.Member, error) {
				return scanMember(row)
			})
			if err != nil {
				return fmt.Errorf("members of image %s: %w", id, err)
			}
			if d := (&cloudimage.CatalogImage{Image: have, Members: members}).Diff(r); d != "" {
				return cloudimage.Errorf(cloudimage.ECONFLICT, "Image %s exists with a different %s", id, d)
			}
			return nil
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("read image %s: %w", id, err)
		}
		if err := insertImage(ctx, tx, r.Image); sqlState(err) == codeForeignKeyViolation {
			return cloudimage.Errorf(cloudimage.ENOTFOUND, "No project %s owns image %s", r.Image.Owner, id)
		} else if err != nil {
			return err
		}
		for _, m := range r.Members {
			if _, err := tx.Exec(ctx, `INSERT INTO image_members (`+memberColumns+`) VALUES ($1, $2, $3, $4, $5)`,
				id, m.ProjectID, string(m.Status), micros(m.CreatedAt), micros(m.UpdatedAt)); err != nil {
				return fmt.Errorf("add member %s to image %s: %w", m.ProjectID, id, err)
			}
		}
		wrote = true
		return nil
	})
	return wrote, err
}
