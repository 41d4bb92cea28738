package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/cloudimage/cloudimage"
)

// CreateProject inserts p; a taken name or appkey is ECONFLICT.
func (db *DB) CreateProject(ctx context.Context, p *cloudimage.Project) error {
	_, err := db.write.ExecContext(ctx,
		`INSERT INTO projects (id, name, appkey, created_at) VALUES (?, ?, ?, ?)`,
		p.ID, p.Name, p.AppKey, micros(p.CreatedAt))
	if isUniqueViolation(err) {
		return cloudimage.Errorf(cloudimage.ECONFLICT, "project %q already exists", p.Name)
	} else if err != nil {
		return fmt.Errorf("insert project %s: %w", p.Name, unavailable(err))
	}
	return nil
}

// Project returns the project with the given ID.
func (db *DB) Project(ctx context.Context, id string) (*cloudimage.Project, error) {
	return db.project(ctx, "id", id)
}

// ProjectByName returns the project with the given name.
func (db *DB) ProjectByName(ctx context.Context, name string) (*cloudimage.Project, error) {
	return db.project(ctx, "name", name)
}

// ProjectByAppKey returns the project with the given appkey.
func (db *DB) ProjectByAppKey(ctx context.Context, appkey string) (*cloudimage.Project, error) {
	return db.project(ctx, "appkey", appkey)
}

// project looks a project up by one of its unique columns; column is
// always a constant of this file.
func (db *DB) project(ctx context.Context, column, value string) (*cloudimage.Project, error) {
	var p cloudimage.Project
	var created int64
	err := db.stmts.QueryRowContext(ctx,
		`SELECT id, name, appkey, created_at FROM projects WHERE `+column+` = ?`, value).
		Scan(&p.ID, &p.Name, &p.AppKey, &created)
	if err != nil {
		return nil, notFound(err, "no project with %s %q", column, value)
	}
	p.CreatedAt = fromMicros(created)
	return &p, nil
}

// Projects returns every project, oldest first.
func (db *DB) Projects(ctx context.Context) ([]*cloudimage.Project, error) {
	rows, err := db.read.QueryContext(ctx,
		`SELECT id, name, appkey, created_at FROM projects ORDER BY created_at, name`)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	defer rows.Close()
	var out []*cloudimage.Project
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

// CreateUser inserts u; a taken name is ECONFLICT.
func (db *DB) CreateUser(ctx context.Context, u *cloudimage.User) error {
	_, err := db.write.ExecContext(ctx,
		`INSERT INTO users (id, name, password_hash, created_at) VALUES (?, ?, ?, ?)`,
		u.ID, u.Name, u.PasswordHash, micros(u.CreatedAt))
	if isUniqueViolation(err) {
		return cloudimage.Errorf(cloudimage.ECONFLICT, "user %q already exists", u.Name)
	} else if err != nil {
		return fmt.Errorf("insert user %s: %w", u.Name, unavailable(err))
	}
	return nil
}

// UserByName returns the user with the given name.
func (db *DB) UserByName(ctx context.Context, name string) (*cloudimage.User, error) {
	var u cloudimage.User
	var created int64
	err := db.stmts.QueryRowContext(ctx,
		`SELECT id, name, password_hash, created_at FROM users WHERE name = ?`, name).
		Scan(&u.ID, &u.Name, &u.PasswordHash, &created)
	if err != nil {
		return nil, notFound(err, "no user %q", name)
	}
	u.CreatedAt = fromMicros(created)
	return &u, nil
}

// UserByID returns the user with the given ID.
func (db *DB) UserByID(ctx context.Context, id string) (*cloudimage.User, error) {
	var u cloudimage.User
	var created int64
	err := db.stmts.QueryRowContext(ctx,
		`SELECT id, name, password_hash, created_at FROM users WHERE id = ?`, id).
		Scan(&u.ID, &u.Name, &u.PasswordHash, &created)
	if err != nil {
		return nil, notFound(err, "no user with ID %q", id)
	}
	u.CreatedAt = fromMicros(created)
	return &u, nil
}

// AssignRole grants a role; granting it again changes nothing.
func (db *DB) AssignRole(ctx context.Context, userID, projectID string, role cloudimage.Role) error {
	_, err := db.write.ExecContext(ctx,
		`INSERT OR IGNORE INTO role_assignments (user_id, project_id, role) VALUES (?, ?, ?)`,
		userID, projectID, string(role))
	if err != nil {
		return fmt.Errorf("assign role %s: %w", role, unavailable(err))
	}
	return nil
}

// Roles returns the user's roles in the project.
func (db *DB) Roles(ctx context.Context, userID, projectID string) ([]cloudimage.Role, error) {
	return roles(ctx, db.stmts, userID, projectID)
}

func roles(ctx context.Context, q queryer, userID, projectID string) ([]cloudimage.Role, error) {
	rows, err := q.QueryContext(ctx,
		`SELECT role FROM role_assignments WHERE user_id = ? AND project_id = ? ORDER BY role`,
		userID, projectID)
	if err != nil {
		return nil, fmt.Errorf("list roles: %w", err)
	}
	defer rows.Close()
	var out []cloudimage.Role
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, err
		}
		out = append(out, cloudimage.Role(r))
	}
	return out, rows.Err()
}

// CreateToken stores a token by its hash.
func (db *DB) CreateToken(ctx context.Context, t *cloudimage.Token) error {
	_, err := db.write.ExecContext(ctx,
		`INSERT INTO tokens (hash, user_id, project_id, issued_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		t.Hash, t.User.ID, t.Project.ID, micros(t.IssuedAt), micros(t.ExpiresAt))
	if err != nil {
		return fmt.Errorf("insert token: %w", unavailable(err))
	}
	return nil
}

// Token returns the token with the given hash, with its user, project and
// the user's current roles in that project.
func (db *DB) Token(ctx context.Context, hash string) (*cloudimage.Token, error) {
	t := cloudimage.Token{User: &cloudimage.User{}, Project: &cloudimage.Project{}}
	var issued, expires, userCreated, projectCreated int64
	// The hash comes from the row, so that the service can check it
	// against the one it asked for.
	err := db.stmts.QueryRowContext(ctx, `SELECT t.hash, t.issued_at, t.expires_at,
			u.id, u.name, u.created_at, p.id, p.name, p.appkey, p.created_at
		FROM tokens t JOIN users u ON u.id = t.user_id JOIN projects p ON p.id = t.project_id
		WHERE t.hash = ?`, hash).
		Scan(&t.Hash, &issued, &expires, &t.User.ID, &t.User.Name, &userCreated,
			&t.Project.ID, &t.Project.Name, &t.Project.AppKey, &projectCreated)
	if err != nil {
		return nil, notFound(err, "no such token")
	}
	t.IssuedAt, t.ExpiresAt = fromMicros(issued), fromMicros(expires)
	t.User.CreatedAt, t.Project.CreatedAt = fromMicros(userCreated), fromMicros(projectCreated)
	if t.Roles, err = roles(ctx, db.stmts, t.User.ID, t.Project.ID); err != nil {
		return nil, err
	}
	return &t, nil
}

// DeleteExpiredTokens removes the tokens that expired before t.
func (db *DB) DeleteExpiredTokens(ctx context.Context, t time.Time) (int64, error) {
	res, err := db.write.ExecContext(ctx, `DELETE FROM tokens WHERE expires_at < ?`, micros(t))
	if err != nil {
		return 0, fmt.Errorf("delete expired tokens: %w", unavailable(err))
	}
	return res.RowsAffected()
}

// DeleteToken removes the token with the given hash.
func (db *DB) DeleteToken(ctx context.Context, hash string) error {
	res, err := db.write.ExecContext(ctx, `DELETE FROM tokens WHERE hash = ?`, hash)
	if err != nil {
		return fmt.Errorf("delete token: %w", unavailable(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return cloudimage.Errorf(cloudimage.ENOTFOUND, "no such token")
	}
	return nil
}
