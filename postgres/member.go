package postgres

import (
	"context"
	"fmt"

	"github.com/cloudimage/cloudimage"
	"github.com/jackc/pgx/v5"
)

const memberColumns = `image_id, member, status, created_at, updated_at`

func scanMember(row pgx.Row) (*cloudimage.Member, error) {
	var (
		m                    cloudimage.Member
		status               string
		createdAt, updatedAt int64
	)
	if err := row.Scan(&m.ImageID, &m.ProjectID, &status, &createdAt, &updatedAt); err != nil {
		return nil, err
	}
	m.Status = cloudimage.MemberStatus(status)
	m.CreatedAt, m.UpdatedAt = fromMicros(createdAt), fromMicros(updatedAt)
	return &m, nil
}

func memberNotFound(err error, imageID, project string) error {
	return notFound(err, "%s is not a member of image %s.", project, imageID)
}

// AddMember adds m to its image's members. The image's row is locked
// while the members are counted, so that adds racing each other are
// counted one after the other.
func (db *DB) AddMember(ctx context.Context, m *cloudimage.Member, max int) error {
	if !storable(m.ImageID) {
		return notFound(pgx.ErrNoRows, "No image found with ID %s", m.ImageID)
	}
	if !storable(m.ProjectID) || !storable(string(m.Status)) {
		return unstorable("The member")
	}
	return db.tx(ctx, func(tx pgx.Tx) error {
		var n int
		err := tx.QueryRow(ctx, `SELECT 1 FROM images WHERE id = $1 FOR UPDATE`, m.ImageID).Scan(&n)
		if err != nil {
			return notFound(err, "No image found with ID %s", m.ImageID)
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM image_members WHERE image_id = $1`,
			m.ImageID).Scan(&n); err != nil {
			return fmt.Errorf("count members of image %s: %w", m.ImageID, err)
		}
		if n >= max {
			return cloudimage.Errorf(cloudimage.ETOOLARGE,
				"Maximum number of image members exceeded: an image may have at most %d.", max)
		}
		_, err = tx.Exec(ctx, `INSERT INTO image_members (`+memberColumns+`) VALUES ($1, $2, $3, $4, $5)`,
			m.ImageID, m.ProjectID, string(m.Status), micros(m.CreatedAt), micros(m.UpdatedAt))
		if isUniqueViolation(err) {
			return cloudimage.Errorf(cloudimage.ECONFLICT, "Member %s is duplicated for image %s", m.ProjectID, m.ImageID)
		} else if err != nil {
			return fmt.Errorf("add member %s to image %s: %w", m.ProjectID, m.ImageID, err)
		}
		return nil
	})
}

// Member returns the membership of project in the image.
func (db *DB) Member(ctx context.Context, imageID, project string) (*cloudimage.Member, error) {
	return getMember(ctx, db.pool, imageID, project, "")
}

// getMember reads a membership; lock is "" or a locking clause.
func getMember(ctx context.Context, q queryer, imageID, project, lock string) (*cloudimage.Member, error) {
	if !storable(imageID) || !storable(project) {
		return nil, memberNotFound(pgx.ErrNoRows, imageID, project)
	}
	m, err := scanMember(q.QueryRow(ctx, `SELECT `+memberColumns+` FROM image_members
		WHERE image_id = $1 AND member = $2 `+lock, imageID, project))
	if err != nil {
		return nil, memberNotFound(err, imageID, project)
	}
	return m, nil
}

// Members returns the image's members ordered by project ID; an image
// that does not exist is ENOTFOUND, one without members has none. One
// statement reads the image and its members, so from one snapshot.
func (db *DB) Members(ctx context.Context, imageID string) ([]*cloudimage.Member, error) {
	if !storable(imageID) {
		return nil, notFound(pgx.ErrNoRows, "No image found with ID %s", imageID)
	}
	rows, err := db.pool.Query(ctx, `SELECT m.image_id, m.member, m.status, m.created_at, m.updated_at
		FROM images i LEFT JOIN image_members m ON m.image_id = i.id
		WHERE i.id = $1 ORDER BY m.member`, imageID)
	if err != nil {
		return nil, fmt.Errorf("members of image %s: %w", imageID, unavailable(err))
	}
	defer rows.Close()
	found := false
	members := []*cloudimage.Member{}
	for rows.Next() {
		found = true
		var (
			imageID, member, status *string
			createdAt, updatedAt    *int64
		)
		if err := rows.Scan(&imageID, &member, &status, &createdAt, &updatedAt); err != nil {
			return nil, err
		}
		if member == nil { // the image, without members
			continue
		}
		members = append(members, &cloudimage.Member{ImageID: *imageID, ProjectID: *member,
			Status: cloudimage.MemberStatus(*status), CreatedAt: fromMicros(*createdAt), UpdatedAt: fromMicros(*updatedAt)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("members of image %s: %w", imageID, unavailable(err))
	}
	if !found {
		return nil, notFound(pgx.ErrNoRows, "No image found with ID %s", imageID)
	}
	return members, nil
}

// UpdateMember reads, changes and writes back a membership in one
// transaction, with its row locked throughout. The image and the project
// are its key: fn cannot move it. If the transaction is run again after
// a deadlock, fn is called again, on the membership as it is then.
func (db *DB) UpdateMember(ctx context.Context, imageID, project string,
	fn func(*cloudimage.Member) error) (*cloudimage.Member, error) {
	var m *cloudimage.Member
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var err error
		if m, err = getMember(ctx, tx, imageID, project, "FOR UPDATE"); err != nil {
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
		m.ImageID, m.ProjectID = imageID, project
		if !storable(string(m.Status)) {
			return unstorable("The member's status")
		}
		_, err = tx.Exec(ctx, `UPDATE image_members SET status = $1, created_at = $2, updated_at = $3
			WHERE image_id = $4 AND member = $5`,
			string(m.Status), micros(m.CreatedAt), micros(m.UpdatedAt), imageID, project)
		if err != nil {
			return fmt.Errorf("update member %s of image %s: %w", project, imageID, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// DeleteMember removes project from the image's members.
func (db *DB) DeleteMember(ctx context.Context, imageID, project string) error {
	if !storable(imageID) || !storable(project) {
		return memberNotFound(pgx.ErrNoRows, imageID, project)
	}
	return db.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM image_members WHERE image_id = $1 AND member = $2`, imageID, project)
		if err != nil {
			return fmt.Errorf("delete member %s of image %s: %w", project, imageID, err)
		}
		if tag.RowsAffected() == 0 {
			return memberNotFound(pgx.ErrNoRows, imageID, project)
		}
		return nil
	})
}
