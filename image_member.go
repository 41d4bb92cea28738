package cloudimage

import (
	"context"
	"strings"
	"unicode"
)

// sharedImage returns the image if c may see it, and EFORBIDDEN unless it
// is shared: only shared images have members.
func (s *ImageService) sharedImage(ctx context.Context, c *Caller, id string) (*Image, error) {
	img, err := s.Get(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if img.Visibility != VisibilityShared {
		return nil, Errorf(EFORBIDDEN, "Only shared images have members.")
	}
	return img, nil
}

// AddMember shares an image of the caller's project with another
// project. The membership starts pending.
func (s *ImageService) AddMember(ctx context.Context, c *Caller, id, project string) (*Member, error) {
	img, err := s.sharedImage(ctx, c, id)
	if err != nil {
		return nil, err
	}
	switch {
	case img.Owner != c.ProjectID || !c.CanWrite():
		return nil, Errorf(EFORBIDDEN, "You are not permitted to create image members for image %s.", id)
	case strings.TrimSpace(project) == "" || len(project) > 255 || !validText(project) ||
		strings.ContainsFunc(project, unicode.IsSpace):
		return nil, Errorf(EINVALID, "member must be a project ID: 1 to 255 characters, no spaces")
	case project == img.Owner:
		return nil, Errorf(EINVALID, "An image cannot be shared with the project that owns it.")
	}
	t := s.now()
	m := &Member{ImageID: id, ProjectID: project, Status: MemberPending, CreatedAt: t, UpdatedAt: t}
	if err := s.images.AddMember(ctx, m, MaxMembers); err != nil {
		return nil, err
	}
	s.audit(c, "add_member", id, "member", project)
	return m, nil
}

// Members returns an image's members: all of them to the owner, and to a
// member only its own membership.
func (s *ImageService) Members(ctx context.Context, c *Caller, id string) ([]*Member, error) {
	img, err := s.sharedImage(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if img.Owner == c.ProjectID {
		return s.images.Members(ctx, id)
	}
	m, err := s.images.Member(ctx, id, c.ProjectID)
	if err != nil {
		return nil, err
	}
	return []*Member{m}, nil
}

// Member returns one membership of an image, to the owner or to that
// member; to any other project it does not exist.
func (s *ImageService) Member(ctx context.Context, c *Caller, id, project string) (*Member, error) {
	img, err := s.sharedImage(ctx, c, id)
	if ErrorCode(err) == EFORBIDDEN {
		// As Glance: an image that cannot have members has none to show.
		return nil, memberNotFound(id, project)
	} else if err != nil {
		return nil, err
	}
	if img.Owner != c.ProjectID && project != c.ProjectID {
		return nil, memberNotFound(id, project)
	}
	m, err := s.images.Member(ctx, id, project)
	if ErrorCode(err) == ENOTFOUND {
		return nil, memberNotFound(id, project)
	}
	return m, err
}

func memberNotFound(id, project string) error {
	return Errorf(ENOTFOUND, "%s is not a member of image %s.", project, id)
}

// UpdateMember sets a membership's status. Only the member's writers
// may: accepting puts the image in its lists.
func (s *ImageService) UpdateMember(ctx context.Context, c *Caller, id, project string, st MemberStatus) (*Member, error) {
	img, err := s.sharedImage(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if project != c.ProjectID && img.Owner != c.ProjectID {
		return nil, memberNotFound(id, project)
	}
	if project != c.ProjectID {
		// The owner sees its members: one that is not there is not found,
		// one that is may answer only for itself.
		if _, err := s.images.Member(ctx, id, project); ErrorCode(err) == ENOTFOUND {
			return nil, memberNotFound(id, project)
		} else if err != nil {
			return nil, err
		}
	}
	if project != c.ProjectID || !c.CanWrite() {
		return nil, Errorf(EFORBIDDEN, "You are not permitted to modify 'status' on this image member.")
	}
	if !st.Valid() {
		return nil, Errorf(EINVALID, "Invalid status value: %s", st)
	}
	m, err := s.images.UpdateMember(ctx, id, project, func(m *Member) error {
		m.Status = st
		m.UpdatedAt = s.now()
		return nil
	})
	if ErrorCode(err) == ENOTFOUND {
		return nil, memberNotFound(id, project)
	} else if err == nil {
		s.audit(c, "update_member", id, "member", project, "status", st)
	}
	return m, err
}

// RemoveMember stops sharing an image with a project. Only the owner may.
func (s *ImageService) RemoveMember(ctx context.Context, c *Caller, id, project string) error {
	img, err := s.sharedImage(ctx, c, id)
	if err != nil {
		return err
	}
	if img.Owner != c.ProjectID && project != c.ProjectID {
		return memberNotFound(id, project)
	} else if img.Owner != c.ProjectID || !c.CanWrite() {
		return Errorf(EFORBIDDEN, "You are not permitted to delete image members for image %s.", id)
	}
	err = s.images.DeleteMember(ctx, id, project)
	if ErrorCode(err) == ENOTFOUND {
		return memberNotFound(id, project)
	} else if err == nil {
		s.audit(c, "remove_member", id, "member", project)
	}
	return err
}
