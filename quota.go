package cloudimage

import (
	"context"
	"io"
)

// Quotas are the most one project may hold, as Glance's unified limits
// image_count_total and image_size_total: Images counts the images that
// are not deleted (pending_delete counts as deleted), Bytes sums their
// sizes, data staged for an import included. Zero means no limit.
type Quotas struct {
	Images int
	Bytes  int64
}

// Check returns ETOOLARGE if a project holding images images with bytes
// bytes of data is over q, and nil otherwise. Stores call it on the usage
// a write would leave.
func (q Quotas) Check(project string, images int, bytes int64) error {
	switch {
	case q.Images > 0 && images > q.Images:
		return Errorf(ETOOLARGE, "Project %s is over a limit for image_count_total: "+
			"it may have %d images that are not deleted.", project, q.Images)
	case q.Bytes > 0 && bytes > q.Bytes:
		return Errorf(ETOOLARGE, "Project %s is over a limit for image_size_total: "+
			"its images may hold %d bytes of data in all, and this would make %d.", project, q.Bytes, bytes)
	}
	return nil
}

// WithQuotas sets the quotas every project has. The image count is
// checked in the transaction that creates an image. The byte quota is
// checked as data streams in (upload, stage or import), so that data
// beyond it is refused before it is all stored, and again in the
// transaction that records the data. Concurrent requests of one project
// cannot pass either quota between them: the store checks and writes in
// one transaction (see ImageStore.CreateImageWithin).
func WithQuotas(q Quotas) ServiceOption {
	return func(s *ImageService) { s.quotas = q }
}

// quotaReader streams the data of one image of project and refuses it,
// with ETOOLARGE, once it passes room: what the byte quota leaves the
// project. It lets the store stop taking data as soon as it is refused,
// rather than once all of it has been stored.
type quotaReader struct {
	r       io.Reader
	project string
	room    int64 // -1: no byte quota
	used    int64 // by the project's other images when the data began
	quota   int64
	seen    int64
	refused error // set once the data is refused
}

// quotaReader returns r limited to the room img's project has under the
// byte quota. The image's own recorded size, data staged for its import,
// is room it holds already.
func (s *ImageService) quotaReader(ctx context.Context, img *Image, r io.Reader) (*quotaReader, error) {
	qr := &quotaReader{r: r, project: img.Owner, room: -1, quota: s.quotas.Bytes}
	if s.quotas.Bytes <= 0 {
		return qr, nil
	}
	_, used, err := s.images.ProjectUsage(ctx, img.Owner)
	if err != nil {
		return nil, err
	}
	if img.Size != nil {
		used -= *img.Size
	}
	qr.used, qr.room = used, max(0, s.quotas.Bytes-used)
	return qr, nil
}

func (q *quotaReader) Read(p []byte) (int, error) {
	if q.refused != nil {
		return 0, q.refused
	}
	if q.room >= 0 && int64(len(p)) > q.room-q.seen+1 {
		p = p[:q.room-q.seen+1] // a byte past the room is enough to refuse
	}
	n, err := q.r.Read(p)
	if q.seen += int64(n); q.room >= 0 && q.seen > q.room {
		q.refused = Quotas{Bytes: q.quota}.Check(q.project, 0, q.used+q.seen)
		return n, q.refused
	}
	return n, err
}
