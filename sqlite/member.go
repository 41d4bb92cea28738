package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/cloudimage/cloudimage"
)

const memberColumns = `image_id, member, status, created_at, updated_at`

func scanMember(s scanner) (*cloudimage.Member, error) {
	var (
		m                    cloudimage.Member
		status               string
		createdAt, updatedAt int64
	)
	if err := s.Scan(&m.ImageID, &m.ProjectID, &status, &createdAt, &updatedAt); err != nil {
		return nil, err
	}
	m.Status = cloudimage.MemberStatus(status)
	m.CreatedAt, m.UpdatedAt = fromMicros(createdAt), fromMicros(updatedAt)
	return &m, nil
}

func memberNotFound(err error, imageID, project string) error {
	return notFound(err, "%s is not a member of image %s.", project, imageID)
}

// imageExists returns ENOTFOUND unless the image has a row, deleted or not.
func imageExists(ctx context.Context, q queryer, id string) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM images WHERE id = ?`, id).Scan(&one)
	return notFound(err, "No image found with ID %s", id)
}

// AddMember adds m to its image's members.
func (db *DB) AddMember(ctx context.Context, m *cloudimage.Member, max int) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		if err := imageExists(ctx, tx, m.ImageID); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM image_members WHERE image_id = ?`,
			m.ImageID).Scan(&n); err != nil {
			return fmt.Errorf("count members of image %s: %w", m.ImageID, err)
		}
		if n >= max {
			return cloudimage.Errorf(cloudimage.ETOOLARGE,
				"Maximum number of image members exceeded: an image may have at most %d.", max)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO image_members (`+memberColumns+`) VALUES (?, ?, ?, ?, ?)`,
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
	return getMember(ctx, db.read, imageID, project)
}

func getMember(ctx context.Context, q queryer, imageID, project string) (*cloudimage.Member, error) {
	m, err := scanMember(q.QueryRowContext(ctx, `SELECT `+memberColumns+` FROM image_members
		WHERE image_id = ? AND member = ?`, imageID, project))
	if err != nil {
		return nil, memberNotFound(err, imageID, project)
	}
	return m, nil
}

// Members returns the image's members ordered by project ID; an image
// that does not exist is ENOTFOUND, one without members has none.
func (db *DB) Members(ctx context.Context, imageID string) ([]*cloudimage.Member, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if err := imageExists(ctx, tx, imageID); err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+memberColumns+` FROM image_members
		WHERE image_id = ? ORDER BY member`, imageID)
	if err != nil {
		return nil, fmt.Errorf("members of image %s: %w", imageID, err)
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
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("members of image %s: %w", imageID, err)
	}
	return members, nil
}

// UpdateMember reads, changes and writes back a membership in one
// transaction. The image and the project are its key: fn cannot move it.
func (db *DB) UpdateMember(ctx context.Context, imageID, project string, fn func(*cloudimage.Member) error) (*cloudimage.Member, error) {
	var m *cloudimage.Member
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if m, err = getMember(ctx, tx, imageID, project); err != nil {
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
		m.ImageID, m.ProjectID = imageID, project
		_, err = tx.ExecContext(ctx, `UPDATE image_members SET status = ?, created_at = ?, updated_at = ?
			WHERE image_id = ? AND member = ?`,
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
	return db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM image_members WHERE image_id = ? AND member = ?`, imageID, project)
		if err != nil {
			return fmt.Errorf("delete member %s of image %s: %w", project, imageID, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return memberNotFound(sql.ErrNoRows, imageID, project)
		}
		return nil
	})
}
