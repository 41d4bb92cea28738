package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/jackc/pgx/v5"
)

// exec runs one statement in a transaction of its own, as tx does.
func (db *DB) exec(ctx context.Context, sql string, args ...any) (n int64, err error) {
	err = db.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, sql, args...)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// CreateProject inserts p; a taken ID, name or appkey is ECONFLICT.
func (db *DB) CreateProject(ctx context.Context, p *cloudimage.Project) error {
	if !storable(p.ID) || !storable(p.Name) || !storable(p.AppKey) {
		return unstorable("The project's ID, name or appkey")
	}
	_, err := db.exec(ctx, `INSERT INTO projects (id, name, appkey, created_at) VALUES ($1, $2, $3, $4)`,
		p.ID, p.Name, p.AppKey, micros(p.CreatedAt))
	if isUniqueViolation(err) {
		return cloudimage.Errorf(cloudimage.ECONFLICT, "project %q already exists", p.Name)
	} else if err != nil {
		return fmt.Errorf("insert project %s: %w", p.Name, err)
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
	err := pgx.ErrNoRows
	if storable(value) {
		err = db.pool.QueryRow(ctx,
			`SELECT id, name, appkey, created_at FROM projects WHERE `+column+` = $1`, value).
			Scan(&p.ID, &p.Name, &p.AppKey, &created)
	}
	if err != nil {
		return nil, notFound(err, "no project with %s %q", column, value)
	}
	p.CreatedAt = fromMicros(created)
	return &p, nil
}

// Projects returns every project, oldest first.
func (db *DB) Projects(ctx context.Context) ([]*cloudimage.Project, error) {
	rows, err := db.pool.Query(ctx,
		`SELECT id, name, appkey, created_at FROM projects ORDER BY created_at, name`)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", unavailable(err))
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
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list projects: %w", unavailable(err))
	}
	return out, nil
}

// CreateUser inserts u; a taken ID or name is ECONFLICT.
func (db *DB) CreateUser(ctx context.Context, u *cloudimage.User) error {
	if !storable(u.ID) || !storable(u.Name) || !storable(u.PasswordHash) {
		return unstorable("The user's ID, name or password hash")
	}
	_, err := db.exec(ctx, `INSERT INTO users (id, name, password_hash, created_at) VALUES ($1, $2, $3, $4)`,
		u.ID, u.Name, u.PasswordHash, micros(u.CreatedAt))
	if isUniqueViolation(err) {
		return cloudimage.Errorf(cloudimage.ECONFLICT, "user %q already exists", u.Name)
	} else if err != nil {
		return fmt.Errorf("insert user %s: %w", u.Name, err)
	}
	return nil
}

// UserByName returns the user with the given name.
func (db *DB) UserByName(ctx context.Context, name string) (*cloudimage.User, error) {
	u, err := db.user(ctx, "name", name)
	if err != nil {
		return nil, notFound(err, "no user %q", name)
	}
	return u, nil
}

// UserByID returns the user with the given ID.
func (db *DB) UserByID(ctx context.Context, id string) (*cloudimage.User, error) {
	u, err := db.user(ctx, "id", id)
	if err != nil {
		return nil, notFound(err, "no user with ID %q", id)
	}
	return u, nil
}

// user looks a user up by one of its unique columns; column is always a
// constant of this file.
func (db *DB) user(ctx context.Context, column, value string) (*cloudimage.User, error) {
	if !storable(value) {
		return nil, pgx.ErrNoRows
	}
	var u cloudimage.User
	var created int64
	err := db.pool.QueryRow(ctx,
		`SELECT id, name, password_hash, created_at FROM users WHERE `+column+` = $1`, value).
		Scan(&u.ID, &u.Name, &u.PasswordHash, &created)
	if err != nil {
		return nil, err
	}
	u.CreatedAt = fromMicros(created)
	return &u, nil
}

// AssignRole grants a role; granting it again changes nothing.
func (db *DB) AssignRole(ctx context.Context, userID, projectID string, role cloudimage.Role) error {
	if !storable(userID) || !storable(projectID) || !storable(string(role)) {
		return unstorable("The role assignment")
	}
	_, err := db.exec(ctx, `INSERT INTO role_assignments (user_id, project_id, role) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`, userID, projectID, string(role))
	if err != nil {
		return fmt.Errorf("assign role %s: %w", role, err)
	}
	return nil
}

// Roles returns the user's roles in the project.
func (db *DB) Roles(ctx context.Context, userID, projectID string) ([]cloudimage.Role, error) {
	if !storable(userID) || !storable(projectID) {
		return nil, nil
	}
	var roles []string
	err := db.pool.QueryRow(ctx, `SELECT `+rolesColumn("$1", "$2"), userID, projectID).Scan(&roles)
	if err != nil {
		return nil, fmt.Errorf("list roles: %w", unavailable(err))
	}
	return toRoles(roles), nil
}

// rolesColumn is the SQL of the array of a user's roles in a project, in
// byte order.
func rolesColumn(user, project string) string {
	return `ARRAY(SELECT r.role FROM role_assignments r WHERE r.user_id = ` + user +
		` AND r.project_id = ` + project + ` ORDER BY r.role)`
}

// toRoles converts role names; none is nil.
func toRoles(names []string) []cloudimage.Role {
	var out []cloudimage.Role
	for _, r := range names {
		out = append(out, cloudimage.Role(r))
	}
	return out
}

// CreateToken stores a token by its hash.
func (db *DB) CreateToken(ctx context.Context, t *cloudimage.Token) error {
	if !storable(t.Hash) || !storable(t.User.ID) || !storable(t.Project.ID) {
		return unstorable("The token")
	}
	_, err := db.exec(ctx,
		`INSERT INTO tokens (hash, user_id, project_id, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		t.Hash, t.User.ID, t.Project.ID, micros(t.IssuedAt), micros(t.ExpiresAt))
	if err != nil {
		return fmt.Errorf("insert token: %w", err)
	}
	return nil
}

// Token returns the token with the given hash, with its user, project and
// the user's current roles in that project, all read by one statement.
func (db *DB) Token(ctx context.Context, hash string) (*cloudimage.Token, error) {
	t := cloudimage.Token{User: &cloudimage.User{}, Project: &cloudimage.Project{}}
	var issued, expires, userCreated, projectCreated int64
	var roles []string
	err := pgx.ErrNoRows
	if storable(hash) {
		// The hash comes from the row, so that the service can check it
		// against the one it asked for.
		err = db.pool.QueryRow(ctx, `SELECT t.hash, t.issued_at, t.expires_at,
				u.id, u.name, u.created_at, p.id, p.name, p.appkey, p.created_at, `+rolesColumn("t.user_id", "t.project_id")+`
			FROM tokens t JOIN users u ON u.id = t.user_id JOIN projects p ON p.id = t.project_id
			WHERE t.hash = $1`, hash).
			Scan(&t.Hash, &issued, &expires, &t.User.ID, &t.User.Name, &userCreated,
				&t.Project.ID, &t.Project.Name, &t.Project.AppKey, &projectCreated, &roles)
	}
	if err != nil {
		return nil, notFound(err, "no such token")
	}
	t.IssuedAt, t.ExpiresAt = fromMicros(issued), fromMicros(expires)
	t.User.CreatedAt, t.Project.CreatedAt = fromMicros(userCreated), fromMicros(projectCreated)
	t.Roles = toRoles(roles)
	return &t, nil
}

// DeleteExpiredTokens removes the tokens that expired before t.
func (db *DB) DeleteExpiredTokens(ctx context.Context, t time.Time) (int64, error) {
	n, err := db.exec(ctx, `DELETE FROM tokens WHERE expires_at < $1`, micros(t))
	if err != nil {
		return 0, fmt.Errorf("delete expired tokens: %w", err)
	}
	return n, nil
}

// DeleteToken removes the token with the given hash.
func (db *DB) DeleteToken(ctx context.Context, hash string) error {
	if !storable(hash) {
		return cloudimage.Errorf(cloudimage.ENOTFOUND, "no such token")
	}
	n, err := db.exec(ctx, `DELETE FROM tokens WHERE hash = $1`, hash)
	if err != nil {
		return fmt.Errorf("delete token: %w", err)
	}
	if n == 0 {
		return cloudimage.Errorf(cloudimage.ENOTFOUND, "no such token")
	}
	return nil
}
