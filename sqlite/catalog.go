package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/cloudimage/cloudimage"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Ensure DB can be copied from and to.
var (
	_ cloudimage.CatalogReader = (*DB)(nil)
	_ cloudimage.CatalogWriter = (*DB)(nil)
)

func checkLimit(limit int) error {
	if limit <= 0 {
		return cloudimage.Errorf(cloudimage.EINVALID, "limit must be positive")
	}
	return nil
}

// CatalogProjects returns up to limit projects with IDs after after, by ID.
func (db *DB) CatalogProjects(ctx context.Context, after string, limit int) ([]*cloudimage.Project, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT id, name, appkey, created_at FROM projects
		WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	defer rows.Close()
	out := []*cloudimage.Project{}
	for rows.Next() {
		var p cloudimage.Project
		var created int64
		if err := rows.Scan(&p.ID, &p.Name, &p.AppKey, &created); err != nil {
			return nil, err
		}
		p.CreatedAt = fromMicros(created)
		out = append(out, &p)
	}
	return out, rows.Err()
}

// CatalogUsers returns up to limit users with IDs after after, by ID.
func (db *DB) CatalogUsers(ctx context.Context, after string, limit int) ([]*cloudimage.User, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT id, name, password_hash, created_at FROM users
		WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	out := []*cloudimage.User{}
	for rows.Next() {
		var u cloudimage.User
		var created int64
		if err := rows.Scan(&u.ID, &u.Name, &u.PasswordHash, &created); err != nil {
			return nil, err
		}
		u.CreatedAt = fromMicros(created)
		out = append(out, &u)
	}
	return out, rows.Err()
}

// CatalogRoles returns up to limit role assignments after after, by user,
// project and role.
func (db *DB) CatalogRoles(ctx context.Context, after *cloudimage.RoleAssignment,
	limit int) ([]cloudimage.RoleAssignment, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	var a cloudimage.RoleAssignment
	cond := "1"
	if after != nil {
		a, cond = *after, "(user_id, project_id, role) > (?1, ?2, ?3)"
	}
	rows, err := db.read.QueryContext(ctx, `SELECT user_id, project_id, role FROM role_assignments
		WHERE `+cond+` ORDER BY user_id, project_id, role LIMIT ?4`,
		a.UserID, a.ProjectID, string(a.Role), limit)
	if err != nil {
		return nil, fmt.Errorf("list role assignments: %w", err)
	}
	defer rows.Close()
	out := []cloudimage.RoleAssignment{}
	for rows.Next() {
		var r cloudimage.RoleAssignment
		var role string
		if err := rows.Scan(&r.UserID, &r.ProjectID, &role); err != nil {
			return nil, err
		}
		r.Role = cloudimage.Role(role)
		out = append(out, r)
	}
	return out, rows.Err()
}

// CatalogImages returns up to limit images of every status with IDs after
// after, by ID, with their tags and members.
func (db *DB) CatalogImages(ctx context.Context, after string, limit int) ([]*cloudimage.CatalogImage, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	// One read transaction: the page's tags and members are those of the
	// images as it read them.
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT `+imageColumns+` FROM images
		WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	imgs, err := scanImages(rows)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	if err := loadTags(ctx, tx, imgs); err != nil {
		return nil, err
	}
	out := make([]*cloudimage.CatalogImage, len(imgs))
	byID := make(map[string]*cloudimage.CatalogImage, len(imgs))
	for i, img := range imgs {
		out[i] = &cloudimage.CatalogImage{Image: img, Members: []*cloudimage.Member{}}
		byID[img.ID] = out[i]
	}
	if len(imgs) == 0 {
		return out, nil
	}
	mrows, err := tx.QueryContext(ctx, `SELECT `+memberColumns+` FROM image_members
		WHERE image_id >= ? AND image_id <= ? ORDER BY image_id, member`, imgs[0].ID, imgs[len(imgs)-1].ID)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	defer mrows.Close()
	for mrows.Next() {
		m, err := scanMember(mrows)
		if err != nil {
			return nil, err
		}
		if r := byID[m.ImageID]; r != nil {
			r.Members = append(r.Members, m)
		}
	}
	return out, mrows.Err()
}

// ImportProject stores p unless the database holds it already.
func (db *DB) ImportProject(ctx context.Context, p *cloudimage.Project) (bool, error) {
	var wrote bool
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var have cloudimage.Project
		var created int64
		err := tx.QueryRowContext(ctx, `SELECT id, name, appkey, created_at FROM projects WHERE id = ?`, p.ID).
			Scan(&have.ID, &have.Name, &have.AppKey, &created)
		if err == nil {
			have.CreatedAt = fromMicros(created)
			if d := have.Diff(p); d != "" {
				return cloudimage.Errorf(cloudimage.ECONFLICT, "Project %s exists with a different %s", p.ID, d)
			}
			return nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read project %s: %w", p.ID, err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO projects (id, name, appkey, created_at) VALUES (?, ?, ?, ?)`,
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
	var wrote bool
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var have cloudimage.User
		var created int64
		err := tx.QueryRowContext(ctx, `SELECT id, name, password_hash, created_at FROM users WHERE id = ?`, u.ID).
			Scan(&have.ID, &have.Name, &have.PasswordHash, &created)
		if err == nil {
			have.CreatedAt = fromMicros(created)
			if d := have.Diff(u); d != "" {
				return cloudimage.Errorf(cloudimage.ECONFLICT, "User %s exists with a different %s", u.ID, d)
			}
			return nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read user %s: %w", u.ID, err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO users (id, name, password_hash, created_at) VALUES (?, ?, ?, ?)`,
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
	res, err := db.write.ExecContext(ctx,
		`INSERT OR IGNORE INTO role_assignments (user_id, project_id, role) VALUES (?, ?, ?)`,
		a.UserID, a.ProjectID, string(a.Role))
	if isForeignKeyViolation(err) {
		return false, cloudimage.Errorf(cloudimage.ENOTFOUND,
			"No user %s or no project %s to assign role %s in", a.UserID, a.ProjectID, a.Role)
	} else if err != nil {
		return false, fmt.Errorf("assign role %s: %w", a.Role, unavailable(err))
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// ImportImage stores an image with its tags and members unless the
// database holds it already.
func (db *DB) ImportImage(ctx context.Context, r *cloudimage.CatalogImage) (bool, error) {
	id := r.Image.ID
	var wrote bool
	err := db.tx(ctx, func(tx *sql.Tx) error {
		have, err := getImage(ctx, tx, id)
		if err == nil {
			members, err := imageMembers(ctx, tx, id)
			if err != nil {
				return err
			}
			if d := (&cloudimage.CatalogImage{Image: have, Members: members}).Diff(r); d != "" {
				return cloudimage.Errorf(cloudimage.ECONFLICT, "Image %s exists with a different %s", id, d)
			}
			return nil
		} else if cloudimage.ErrorCode(err) != cloudimage.ENOTFOUND {
			return err
		}
		if err := insertImage(ctx, tx, r.Image); isForeignKeyViolation(err) {
			return cloudimage.Errorf(cloudimage.ENOTFOUND, "No project %s owns image %s", r.Image.Owner, id)
		} else if err != nil {
			return err
		}
		for _, m := range r.Members {
			if _, err := tx.ExecContext(ctx, `INSERT INTO image_members (`+memberColumns+`) VALUES (?, ?, ?, ?, ?)`,
				id, m.ProjectID, string(m.Status), micros(m.CreatedAt), micros(m.UpdatedAt)); err != nil {
				return fmt.Errorf("add member %s to image %s: %w", m.ProjectID, id, err)
			}
		}
		wrote = true
		return nil
	})
	return wrote, err
}

// imageMembers returns the members of an image, by project ID.
func imageMembers(ctx context.Context, q queryer, id string) ([]*cloudimage.Member, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+memberColumns+` FROM image_members
		WHERE image_id = ? ORDER BY member`, id)
	if err != nil {
		return nil, fmt.Errorf("members of image %s: %w", id, err)
	}
	defer rows.Close()
	members := []*cloudimage.Member{}
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return nil, err
		}
		members = append(members, m)
	}
	return members, rows.Err()
}

// isForeignKeyViolation reports whether err is a FOREIGN KEY constraint
// failure.
func isForeignKeyViolation(err error) bool {
	var e *msqlite.Error
	return errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}
