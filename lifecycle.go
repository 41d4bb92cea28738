package cloudimage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Delayed delete, as Glance's delayed_delete and scrubber, and the sweep
// of data that no image references.

// scrubBatch is how many due images one store query of Scrub fetches.
const scrubBatch = 100

// WithDelayedDelete turns delayed delete on: Delete makes an active image
// pending_delete, hidden from every list and lookup but with its data
// kept, and Scrub removes the data once the image has been pending for
// delay; until then an admin may Restore it. A delay of 0 leaves the data
// to the next Scrub.
//
// Only data waits: an image without any is deleted at once, and so is a
// deactivated one, which Glance's status table lets go only to deleted.
func WithDelayedDelete(delay time.Duration) ServiceOption {
	return func(s *ImageService) {
		s.delayedDelete = true
		s.scrubDelay = max(delay, 0)
	}
}

// deletedStatus is the status Delete moves img to.
func (s *ImageService) deletedStatus(img *Image) Status {
	if s.delayedDelete && img.Status == StatusActive {
		return StatusPendingDelete
	}
	return StatusDeleted
}

// Scrub deletes the images that have been pending_delete for the delayed
// delete's delay, and their data, and returns how many. Its work is in
// the database, so a restart loses none of it; without delayed delete,
// images left pending by an earlier configuration are scrubbed at once.
//
// Each image is marked deleted before its data goes, in a transaction
// that Restore cannot slip into: an image is never active without its
// data. Data left behind by a crash between the two, or by a failed
// removal, no longer has an image and is SweepOrphans's.
func (s *ImageService) Scrub(ctx context.Context) (int, error) {
	due := s.now().Add(-s.scrubDelay)
	n := 0
	for {
		imgs, err := s.images.ImagesPendingDeleteBefore(ctx, due, scrubBatch)
		if err != nil {
			return n, err
		}
		for _, img := range imgs {
			if done, err := s.scrub(ctx, img.ID, due); err != nil {
				return n, err
			} else if done {
				n++
			}
		}
		if len(imgs) < scrubBatch {
			return n, nil
		}
	}
}

// scrub deletes one image that was due at due and removes its data. It
// reports false if the image was restored, or scrubbed by another
// replica, meanwhile.
func (s *ImageService) scrub(ctx context.Context, id string, due time.Time) (bool, error) {
	_, err := s.images.UpdateImage(ctx, id, func(img *Image) error {
		if img.Status != StatusPendingDelete || img.DeletedAt == nil || img.DeletedAt.After(due) {
			return errNoChange
		}
		return img.SetStatus(StatusDeleted, s.now())
	})
	if errors.Is(err, errNoChange) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("scrub image %s: %w", id, err)
	}
	for _, key := range []string{id, stagingKey(id)} {
		if err := s.blobs.Delete(ctx, key); err != nil && ErrorCode(err) != ENOTFOUND {
			// The image is deleted: its data is an orphan now.
			s.logger.Error("remove data of a scrubbed image", "image", id, "key", key, "err", err)
		}
	}
	s.logger.Info("scrubbed image", "image", id)
	return true, nil
}

// Restore makes a pending_delete image active again, with the data it
// kept. Only an admin of the image's project may: the project's other
// users are EFORBIDDEN; every other project, even one the image was
// shared with, is ENOTFOUND, as for an unknown or scrubbed image; an
// image that is not pending_delete is ECONFLICT (EFORBIDDEN for a caller
// who may see it but not restore it).
func (s *ImageService) Restore(ctx context.Context, c *Caller, id string) error {
	notFound := Errorf(ENOTFOUND, "No image found with ID %s", id)
	img, err := s.images.Image(ctx, id)
	if ErrorCode(err) == ENOTFOUND {
		return notFound
	} else if err != nil {
		return err
	}
	// A deleted or pending_delete image is gone for everyone but its own
	// project: even a project it was shared with must not learn that it
	// can still come back.
	if ok, err := s.visible(ctx, c, img); err != nil {
		return err
	} else if !ok || img.Status == StatusDeleted || (img.Deleted() && img.Owner != c.ProjectID) {
		return notFound
	}
	// The restored image counts toward its project's quotas again, and
	// may not take the project over them.
	_, err = s.images.UpdateImageWithin(ctx, id, s.quotas, func(img *Image) error {
		switch {
		case img.Status == StatusDeleted, img.Deleted() && img.Owner != c.ProjectID:
			return notFound
		case img.Owner != c.ProjectID || !c.IsAdmin():
			return Errorf(EFORBIDDEN, "Only an admin of its project may restore image %s.", id)
		case img.Status != StatusPendingDelete:
			return Errorf(ECONFLICT, "Image %s is %s, not pending_delete: there is nothing to restore.",
				id, img.Status)
		}
		return img.SetStatus(StatusActive, s.now())
	})
	if err != nil {
		return err
	}
	s.audit(c, "restore", id)
	return nil
}

// SweepOrphans removes the data that no image references and that was
// last written longer than grace ago, and returns how many blobs it
// removed. Data is referenced under an image's ID while the image is
// saving, importing, active, deactivated or pending_delete, and under its
// staging key while the image is uploading or importing; anything else
// (of an unknown, queued, killed or deleted image, or under a key the
// service never makes) is an orphan, left by a crash or a failed removal.
//
// Whether data is referenced changes only when the data is being removed
// anyway, so the sweep is safe beside requests and other replicas; grace
// spares data that an operator put in place by hand moments ago.
func (s *ImageService) SweepOrphans(ctx context.Context, grace time.Duration) (int, error) {
	// Blob times are the blob store's, so is the clock they are held to.
	cutoff := time.Now().Add(-grace)
	n := 0
	for info, err := range s.blobs.List(ctx) {
		if err != nil {
			return n, fmt.Errorf("list data: %w", err)
		}
		if info.ModTime.After(cutoff) {
			continue
		}
		ref, err := s.referenced(ctx, info.Key)
		if err != nil {
			return n, err
		} else if ref {
			continue
		}
		if err := s.blobs.Delete(ctx, info.Key); err != nil && ErrorCode(err) != ENOTFOUND {
			return n, fmt.Errorf("remove orphaned data %s: %w", info.Key, err)
		}
		s.logger.Warn("removed orphaned data", "key", info.Key, "size", info.Size, "modified", info.ModTime)
		n++
	}
	return n, nil
}

// referenced reports whether an image references the data under key.
func (s *ImageService) referenced(ctx context.Context, key string) (bool, error) {
	id, staged := strings.CutSuffix(key, stagingKey(""))
	if canonical, err := ParseID(id); err != nil || canonical != id {
		return false, nil
	}
	img, err := s.images.Image(ctx, id)
	if ErrorCode(err) == ENOTFOUND {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("look up the image of data %s: %w", key, err)
	}
	switch img.Status {
	case StatusUploading:
		return staged, nil
	case StatusImporting:
		return true, nil
	case StatusSaving, StatusActive, StatusDeactivated, StatusPendingDelete:
		return !staged, nil
	}
	return false, nil
}
