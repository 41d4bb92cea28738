// Package s3blob stores image data as objects in an S3 bucket (Amazon S3,
// MinIO, Ceph RGW or any other S3-compatible server), the blob store for
// several replicas that share their data.
package s3blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

var _ cloudimage.BlobStore = (*Store)(nil)

// Store keeps each blob as one object, named by its key under the
// store's prefix. S3 makes an object visible only once its upload is
// complete, so a blob under its key is always whole.
type Store struct {
	client *minio.Client
	core   minio.Core
	bucket string
	prefix string // "" or ends in "/"
	where  string // endpoint and bucket, for messages; never credentials

	maxParts int // of one upload: maxParts, lower in tests
	pageSize int // of a listing; 0: the server's (1000 on S3)
}

// Upload parts. S3 allows at most 10,000 parts per object, each but the
// last at least 5 MiB. Put holds one part in memory at a time; parts
// start at basePartSize and grow by basePartSize every partsPerStep
// parts, so that small images cost little memory and large ones still
// fit: 16 MiB per upload up to 9.7 GiB of data, 64 MiB at 100 GiB,
// 224 MiB at 1 TiB, and at most 256 MiB for the largest, about 1.3 TiB.
const (
	basePartSize = 16 << 20
	partsPerStep = 625
	maxParts     = 10000
)

// partSize returns the size of part number n, counted from 1.
func partSize(n int) int {
	return basePartSize * (1 + (n-1)/partsPerStep)
}

// MaxSize is the most data one blob may hold: maxParts parts of the
// sizes partSize gives.
const MaxSize int64 = basePartSize * partsPerStep * (maxParts / partsPerStep) * (maxParts/partsPerStep + 1) / 2

// abortTimeout bounds the clean-up of a failed upload, which runs even
// when the upload's context is done.
const abortTimeout = time.Minute

// Open returns a store for the bucket that rawURL names:
//
//	s3://BUCKET[/PREFIX]?endpoint=HOST[:PORT]&region=REGION&insecure=true
//
// endpoint defaults to s3.amazonaws.com and region to what the server
// says; insecure=true speaks plain HTTP instead of HTTPS. Credentials
// come from the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// optionally AWS_SESSION_TOKEN, or MinIO's MINIO_ROOT_USER and
// MINIO_ROOT_PASSWORD. Open checks that the bucket exists, so that a
// wrong name or credential is found at start and not at the first upload.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	return open(ctx, rawURL, nil)
}

// open is Open with the HTTP transport to use; nil means the default.
func open(ctx context.Context, rawURL string, transport http.RoundTripper) (*Store, error) {
	cfg, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	client, err := cfg.client(transport)
	if err != nil {
		return nil, err
	}
	s := &Store{
		client:   client,
		core:     minio.Core{Client: client},
		bucket:   cfg.bucket,
		prefix:   cfg.prefix,
		where:    fmt.Sprintf("s3://%s/%s at %s", cfg.bucket, cfg.prefix, cfg.endpoint),
		maxParts: maxParts,
	}
	if err := s.Ping(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// config is what a store URL says.
type config struct {
	bucket   string
	prefix   string // "" or ends in "/"
	endpoint string
	region   string
	secure   bool
}

func parseURL(rawURL string) (config, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return config{}, fmt.Errorf("blob store URL: %w", err)
	}
	if u.User != nil {
		return config{}, fmt.Errorf("blob store URL %q: credentials belong in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, not in the URL", redact(u))
	}
	if u.Scheme != "s3" {
		return config{}, fmt.Errorf("blob store URL %q: scheme must be s3", u)
	}
	cfg := config{bucket: u.Host, endpoint: "s3.amazonaws.com", secure: true}
	if err := s3utils.CheckValidBucketName(cfg.bucket); err != nil {
		return config{}, fmt.Errorf("blob store URL %q: bucket %q: %w", u, cfg.bucket, err)
	}
	if cfg.prefix = strings.Trim(u.Path, "/"); cfg.prefix != "" {
		cfg.prefix += "/"
	}
	q := u.Query()
	for name := range q {
		switch name {
		case "endpoint", "region", "insecure":
		default:
			return config{}, fmt.Errorf("blob store URL %q: unknown parameter %q (known: endpoint, region, insecure)", u, name)
		}
	}
	if e := q.Get("endpoint"); e != "" {
		cfg.endpoint = e
	}
	cfg.region = q.Get("region")
	switch v := q.Get("insecure"); v {
	case "", "false":
	case "true":
		cfg.secure = false
	default:
		return config{}, fmt.Errorf("blob store URL %q: insecure=%q, want true or false", u, v)
	}
	return cfg, nil
}

// client returns an S3 client for cfg with the credentials of the
// environment.
func (cfg config) client(transport http.RoundTripper) (*minio.Client, error) {
	creds := credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{}, &credentials.EnvMinio{},
	})
	if v, err := creds.Get(); err != nil || v.AccessKeyID == "" || v.SecretAccessKey == "" {
		return nil, errors.New("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	client, err := minio.New(cfg.endpoint, &minio.Options{
		Creds:     creds,
		Secure:    cfg.secure,
		Region:    cfg.region,
		Transport: transport,
	})
	if err != nil {
		return nil, fmt.Errorf("blob store endpoint %q: %w", cfg.endpoint, err)
	}
	return client, nil
}

// redact returns u without its user information, for messages.
func redact(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// name returns the object name of key, refusing the keys fsblob refuses,
// so that both stores accept the same keys.
func (s *Store) name(key string) (string, error) {
	if !validKey(key) {
		return "", cloudimage.Errorf(cloudimage.EINVALID, "invalid blob key %q", key)
	}
	return s.prefix + key, nil
}

func validKey(key string) bool {
	return len(key) >= 3 && !strings.ContainsAny(key, `/\`) && !strings.HasPrefix(key, ".")
}

// errStorageFull is what a caller is told when the data does not fit.
var errStorageFull = cloudimage.Errorf(cloudimage.ETOOLARGE,
	"Image storage media is full: there is no space left for the image data.")

// errTooLarge is what a caller is told of data past MaxSize.
var errTooLarge = cloudimage.Errorf(cloudimage.ETOOLARGE,
	"The image data is larger than the %d bytes the object store takes.", MaxSize)

// s3Error classifies an error of the S3 client: a missing object is
// ENOTFOUND, a full server or an object too large for it ETOOLARGE, with
// the cause kept in the chain for the log; anything else, an unreachable
// server too, stays internal.
func (s *Store) s3Error(op, key string, err error) error {
	switch minio.ToErrorResponse(err).Code {
	case "NoSuchKey":
		return fmt.Errorf("%w: %w", cloudimage.Errorf(cloudimage.ENOTFOUND, "no data for %s", key), err)
	case "XMinioStorageFull", "QuotaExceeded": // MinIO's disks; Ceph RGW's quota
		return fmt.Errorf("%w: %s %s in %s: %w", errStorageFull, op, key, s.where, err)
	case "EntityTooLarge":
		return fmt.Errorf("%w: %s %s in %s: %w", errTooLarge, op, key, s.where, err)
	}
	return fmt.Errorf("%s %s in %s: %w", op, key, s.where, err)
}

// Put streams r into the object of key. Data that fits in one part is
// sent in a single request; larger data as a multipart upload, one part
// in memory at a time (see partSize). The object appears only once the
// upload is complete; on any error the upload is aborted, so nothing is
// left and an object already under key is untouched.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (n int64, err error) {
	name, err := s.name(key)
	if err != nil {
		return 0, err
	}
	cr := contextReader{ctx, r}
	buf := make([]byte, partSize(1))
	k, err := fill(cr, buf)
	if err == io.EOF {
		_, err = s.client.PutObject(ctx, s.bucket, name, bytes.NewReader(buf[:k]), int64(k), putOptions())
		if err != nil {
			return 0, s.s3Error("put", key, err)
		}
		return int64(k), nil
	} else if err != nil {
		return int64(k), err
	}

	uploadID, err := s.core.NewMultipartUpload(ctx, s.bucket, name, putOptions())
	if err != nil {
		return 0, s.s3Error("start upload of", key, err)
	}
	defer func() {
		if err != nil {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
			defer cancel()
			if aerr := s.core.AbortMultipartUpload(actx, s.bucket, name, uploadID); aerr != nil {
				err = fmt.Errorf("%w (and abort of upload %s: %v)", err, uploadID, aerr)
			}
		}
	}()
	var parts []minio.CompletePart
	ended := false // r has ended: buf[:k] is the last part
	for num := 1; ; num++ {
		var part minio.ObjectPart
		part, err = s.core.PutObjectPart(ctx, s.bucket, name, uploadID, num,
			bytes.NewReader(buf[:k]), int64(k), minio.PutObjectPartOptions{})
		if err != nil {
			return n, s.s3Error(fmt.Sprintf("put part %d of", num), key, err)
		}
		n += int64(k)
		parts = append(parts, minio.CompletePart{PartNumber: num, ETag: part.ETag})
		if ended {
			break
		}
		if num == s.maxParts {
			var one [1]byte
			if k, err = fill(cr, one[:]); k > 0 {
				return n, errTooLarge
			} else if err != io.EOF {
				return n, err
			}
			break
		}
		if size := partSize(num + 1); size != len(buf) {
			buf = make([]byte, size)
		}
		k, err = fill(cr, buf)
		if err == io.EOF {
			if k == 0 {
				break // the last part was exactly full
			}
			ended = true
		} else if err != nil {
			return n, err
		}
	}
	if _, err = s.core.CompleteMultipartUpload(ctx, s.bucket, name, uploadID, parts, putOptions()); err != nil {
		return n, s.s3Error("complete upload of", key, err)
	}
	return n, nil
}

// fill reads from r until buf is full, returning nil, or until r ends,
// returning io.EOF; any other error of r is returned as it is. Unlike
// io.ReadFull it tells data that ended from a reader that failed with
// io.ErrUnexpectedEOF, as a truncated request body does.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		k, err := r.Read(buf[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func putOptions() minio.PutObjectOptions {
	return minio.PutObjectOptions{ContentType: "application/octet-stream"}
}

// contextReader stops a read once its context is done.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Open returns the data of key. It asks for the object's size and
// version at once, so that a missing key is ENOTFOUND here; data is
// fetched only when read, from the position last sought to, so a seek
// costs no transfer. Reads fail rather than mix versions if the object
// is replaced while it is read.
func (s *Store) Open(ctx context.Context, key string) (io.ReadSeekCloser, error) {
	name, err := s.name(key)
	if err != nil {
		return nil, err
	}
	info, err := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if err != nil {
		return nil, s.s3Error("open", key, err)
	}
	return &reader{ctx: ctx, s: s, key: key, name: name, etag: info.ETag, size: info.Size}, nil
}

// reader reads one version of an object with ranged GETs.
type reader struct {
	ctx    context.Context // Open's: a read is part of the caller's request
	s      *Store
	key    string
	name   string
	etag   string
	size   int64
	off    int64
	body   io.ReadCloser // the open GET from off on, or nil
	closed bool
}

// errClosed is what a reader answers once closed.
var errClosed = errors.New("s3blob: read of a closed blob")

func (r *reader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, errClosed
	}
	if r.off >= r.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.body == nil {
		opts := minio.GetObjectOptions{}
		if r.etag != "" {
			if err := opts.SetMatchETag(r.etag); err != nil {
				return 0, err
			}
		}
		if r.off > 0 {
			if err := opts.SetRange(r.off, 0); err != nil {
				return 0, err
			}
		}
		body, _, _, err := r.s.core.GetObject(r.ctx, r.s.bucket, r.name, opts)
		if err != nil {
			return 0, r.s.s3Error("read", r.key, err)
		}
		r.body = body
	}
	n, err := r.body.Read(p)
	r.off += int64(n)
	if err != nil {
		r.body.Close()
		r.body = nil
		if errors.Is(err, io.EOF) && r.off < r.size {
			err = io.ErrUnexpectedEOF
		}
		if !errors.Is(err, io.EOF) {
			err = r.s.s3Error("read", r.key, err)
		}
	}
	return n, err
}

func (r *reader) Seek(offset int64, whence int) (int64, error) {
	if r.closed {
		return 0, errClosed
	}
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, fmt.Errorf("s3blob: seek: invalid whence %d", whence)
	}
	if abs < 0 {
		return 0, errors.New("s3blob: seek to a negative position")
	}
	if abs != r.off && r.body != nil {
		r.body.Close()
		r.body = nil
	}
	r.off = abs
	return abs, nil
}

func (r *reader) Close() error {
	if r.closed {
		return errClosed
	}
	r.closed = true
	if r.body != nil {
		err := r.body.Close()
		r.body = nil
		return err
	}
	return nil
}

// Delete removes the object of key. S3 answers a delete of a missing
// object with success, so Delete asks first, to return ENOTFOUND as
// fsblob does; two Deletes at once may both succeed.
func (s *Store) Delete(ctx context.Context, key string) error {
	name, err := s.name(key)
	if err != nil {
		return err
	}
	if _, err := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{}); err != nil {
		return s.s3Error("delete", key, err)
	}
	if err := s.client.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{}); err != nil {
		return s.s3Error("delete", key, err)
	}
	return nil
}

// List yields the objects under the store's prefix whose names are
// valid keys, in key order, a page of the server's listing at a time.
// Uploads in progress are not objects yet and are not listed.
func (s *Store) List(ctx context.Context) iter.Seq2[cloudimage.BlobInfo, error] {
	return func(yield func(cloudimage.BlobInfo, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(cloudimage.BlobInfo{}, err)
			return
		}
		opts := minio.ListObjectsOptions{Prefix: s.prefix, Recursive: true, MaxKeys: s.pageSize}
		for obj := range s.client.ListObjectsIter(ctx, s.bucket, opts) {
			if obj.Err != nil {
				yield(cloudimage.BlobInfo{}, fmt.Errorf("list blobs in %s: %w", s.where, obj.Err))
				return
			}
			if err := ctx.Err(); err != nil {
				yield(cloudimage.BlobInfo{}, err)
				return
			}
			key := strings.TrimPrefix(obj.Key, s.prefix)
			if !validKey(key) {
				continue
			}
			if !yield(cloudimage.BlobInfo{Key: key, Size: obj.Size, ModTime: obj.LastModified}, nil) {
				return
			}
		}
		// The client ends its listing quietly when the context is done
		// between two pages.
		if err := ctx.Err(); err != nil {
			yield(cloudimage.BlobInfo{}, err)
		}
	}
}

// Ping reports whether the bucket is there and the credentials reach it.
func (s *Store) Ping(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("blob store %s: %w", s.where, err)
	}
	if !ok {
		return fmt.Errorf("blob store %s: no such bucket", s.where)
	}
	return nil
}
