package cloudimage

import (
	"context"
	"errors"
	"slices"
	"strings"
	"unicode/utf8"
)

// ImageUpdate is a change to an image's metadata: every field that is set
// (non-nil) replaces the image's value.
type ImageUpdate struct {
	Name             *string
	Visibility       *Visibility
	Protected        *bool
	Hidden           *bool
	DiskFormat       *string // only while the image is queued
	ContainerFormat  *string // only while the image is queued
	MinDisk          *int
	MinRAM           *int
	Tags             []string // nil: unchanged; otherwise the new set of tags
	SetProperties    map[string]string
	RemoveProperties []string
}

// mayChange returns EFORBIDDEN unless c may change img's metadata: only
// writers of the owning project may.
func mayChange(c *Caller, img *Image) error {
	if img.Owner != c.ProjectID || !c.CanWrite() {
		return Errorf(EFORBIDDEN, "You are not permitted to modify image %s.", img.ID)
	}
	return nil
}

// Update changes an image of the caller's project. An image the caller
// cannot see is ENOTFOUND; one it sees but does not own is EFORBIDDEN.
// Nothing is written unless every change is valid.
func (s *ImageService) Update(ctx context.Context, c *Caller, id string, u ImageUpdate) (*Image, error) {
	return s.change(ctx, c, id, func(img *Image) error {
		return s.apply(c, img, u)
	})
}

// change applies fn, in one transaction, to an image of the caller's
// project that the caller may change, and moves its updated_at. An image
// the caller cannot see is ENOTFOUND, one it sees but may not change
// EFORBIDDEN. If fn returns errNoChange nothing is written and the image
// is returned as it is.
func (s *ImageService) change(ctx context.Context, c *Caller, id string, fn func(*Image) error) (*Image, error) {
	img, err := s.Get(ctx, c, id)
	if err != nil {
		return nil, err
	}
	written, err := s.images.UpdateImage(ctx, id, func(img *Image) error {
		if img.Deleted() {
			return Errorf(ENOTFOUND, "No image found with ID %s", id)
		} else if err := mayChange(c, img); err != nil {
			return err
		} else if err := fn(img); err != nil {
			return err
		}
		img.UpdatedAt = s.now()
		return nil
	})
	if errors.Is(err, errNoChange) {
		return img, nil
	}
	return written, err
}

// apply makes the changes of u to img, checking each against the rules
// of the service's profile.
func (s *ImageService) apply(c *Caller, img *Image, u ImageUpdate) error {
	if u.Name != nil {
		if utf8.RuneCountInString(*u.Name) > MaxNameLength {
			return Errorf(EINVALID, "name must be at most %d characters", MaxNameLength)
		} else if !validText(*u.Name) {
			return Errorf(EINVALID, "name must be UTF-8 without control characters")
		}
		img.Name = *u.Name
	}
	if u.Visibility != nil && *u.Visibility != img.Visibility {
		if err := s.checkVisibility(c, *u.Visibility); err != nil {
			return err
		}
		img.Visibility = *u.Visibility
	}
	if u.Protected != nil {
		img.Protected = *u.Protected
	}
	if u.Hidden != nil {
		img.Hidden = *u.Hidden
	}
	for _, f := range []struct {
		name    string
		in      *string
		field   *string
		allowed []string
	}{
		{"disk_format", u.DiskFormat, &img.DiskFormat, DiskFormats},
		{"container_format", u.ContainerFormat, &img.ContainerFormat, ContainerFormats},
	} {
		if f.in == nil || *f.in == *f.field {
			continue
		}
		if img.Status != StatusQueued {
			return Errorf(EFORBIDDEN, "Attribute %s can be only replaced for a queued image.", f.name)
		}
		if *f.in != "" && !slices.Contains(f.allowed, *f.in) {
			return Errorf(EINVALID, "%s %q is not one of: %s", f.name, *f.in, strings.Join(f.allowed, ", "))
		}
		*f.field = *f.in
	}
	if u.MinDisk != nil {
		img.MinDisk = *u.MinDisk
	}
	if u.MinRAM != nil {
		img.MinRAM = *u.MinRAM
	}
	if img.MinDisk < 0 || img.MinRAM < 0 {
		return Errorf(EINVALID, "min_disk and min_ram must not be negative")
	}
	if u.Tags != nil {
		tags, err := normalizeTags(u.Tags)
		if err != nil {
			return err
		}
		for _, t := range tags {
			// A reserved tag the operator set may stay; a new one may not.
			if !img.HasTag(t) {
				if err := s.checkTag(c, t); err != nil {
					return err
				}
			}
		}
		img.Tags = tags
	}
	if len(u.SetProperties) > 0 || len(u.RemoveProperties) > 0 {
		props := make(map[string]string, len(img.Properties)+len(u.SetProperties))
		for k, v := range img.Properties {
			props[k] = v
		}
		for _, k := range u.RemoveProperties {
			if _, ok := props[k]; !ok {
				return Errorf(ECONFLICT, "Property %s does not exist.", k)
			}
			delete(props, k)
		}
		for k, v := range u.SetProperties {
			props[k] = v
		}
		if err := s.validateProperties(props); err != nil {
			return err
		}
		img.Properties = props
	}
	return nil
}

// checkVisibility returns EFORBIDDEN unless c may give an image
// visibility v under the service's profile.
func (s *ImageService) checkVisibility(c *Caller, v Visibility) error {
	switch {
	case !v.Valid():
		return Errorf(EINVALID, "Invalid visibility value: %s", v)
	case c.IsAdmin() || slices.Contains(s.profile.OwnerVisibilities, v):
		return nil
	case v == VisibilityPublic:
		return Errorf(EFORBIDDEN, "You are not authorized to publicize images.")
	}
	return Errorf(EFORBIDDEN, "You are not authorized to set visibility to %s.", v)
}

// checkTag returns an error unless c may put tag t on an image: tags
// with the profile's reserved prefix, such as NHN's _AVAILABLE_, are the
// operator's (digest §7 #31).
func (s *ImageService) checkTag(c *Caller, t string) error {
	if t == "" || utf8.RuneCountInString(t) > MaxTagLength {
		return Errorf(EINVALID, "a tag must be 1 to %d characters", MaxTagLength)
	} else if !validText(t) {
		return Errorf(EINVALID, "a tag must be UTF-8 without control characters")
	}
	if p := s.profile.ReservedTagPrefix; p != "" && strings.HasPrefix(t, p) && !c.IsAdmin() {
		return Errorf(EINVALID, "Tag %q is reserved: tags starting with '%s' are set by the operator.", t, p)
	}
	return nil
}

// validateProperties checks an image's whole set of extra properties,
// with the profile's os_type rule.
func (s *ImageService) validateProperties(props map[string]string) error {
	if err := validateProperties(props); err != nil {
		return err
	}
	if !s.profile.RequireOSType {
		return nil
	}
	os, ok := props["os_type"]
	if !ok {
		return Errorf(EINVALID, "os_type is required: one of %s", strings.Join(OSTypes, ", "))
	}
	if !slices.Contains(OSTypes, strings.ToLower(os)) {
		return Errorf(EINVALID, "os_type %q is not one of: %s", os, strings.Join(OSTypes, ", "))
	}
	return nil
}

// AddTag puts tag on an image of the caller's project; a tag the image
// has already is no change.
func (s *ImageService) AddTag(ctx context.Context, c *Caller, id, tag string) error {
	_, err := s.change(ctx, c, id, func(img *Image) error {
		if img.HasTag(tag) {
			return errNoChange
		} else if err := s.checkTag(c, tag); err != nil {
			return err
		} else if len(img.Tags) >= MaxTags {
			return Errorf(ETOOLARGE, "Maximum number of tags exceeded: an image may have at most %d.", MaxTags)
		}
		img.Tags = append(img.Tags, tag)
		slices.Sort(img.Tags)
		return nil
	})
	return err
}

// RemoveTag takes tag off an image of the caller's project.
func (s *ImageService) RemoveTag(ctx context.Context, c *Caller, id, tag string) error {
	_, err := s.change(ctx, c, id, func(img *Image) error {
		i := slices.Index(img.Tags, tag)
		if i < 0 {
			return Errorf(ENOTFOUND, "Tag %s not found on image %s.", tag, id)
		}
		img.Tags = slices.Delete(img.Tags, i, i+1)
		return nil
	})
	return err
}

// Deactivate makes an active image's data unusable to all but admins;
// an image deactivated already stays so.
func (s *ImageService) Deactivate(ctx context.Context, c *Caller, id string) error {
	return s.setActive(ctx, c, id, StatusActive, StatusDeactivated, "deactivate")
}

// Reactivate makes a deactivated image's data usable again; an active
// image stays so.
func (s *ImageService) Reactivate(ctx context.Context, c *Caller, id string) error {
	return s.setActive(ctx, c, id, StatusDeactivated, StatusActive, "reactivate")
}

func (s *ImageService) setActive(ctx context.Context, c *Caller, id string, from, to Status, verb string) error {
	if _, err := s.Get(ctx, c, id); err != nil {
		return err
	}
	_, err := s.images.UpdateImage(ctx, id, func(img *Image) error {
		switch {
		case img.Deleted():
			return Errorf(ENOTFOUND, "No image found with ID %s", id)
		case img.Owner != c.ProjectID || !c.CanWrite():
			return Errorf(EFORBIDDEN, "You are not permitted to %s image %s.", verb, id)
		case img.Status == to:
			return errNoChange
		case img.Status != from:
			return Errorf(EFORBIDDEN, "Not allowed to %s image in status '%s'", verb, img.Status)
		}
		return img.SetStatus(to, s.now())
	})
	if err == errNoChange {
		return nil
	}
	return err
}
