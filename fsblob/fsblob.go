// Package fsblob stores image data as files in a local directory, the
// zero-configuration default blob store.
package fsblob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cloudimage/cloudimage"
)

var _ cloudimage.BlobStore = (*Store)(nil)

// Store keeps each blob in a file under its root, in a subdirectory named
// for the key's first two characters. Uploads are written into the
// staging directory first and renamed into place once complete and
// synced, so a blob under its key is always whole.
type Store struct {
	root    string
	staging string
}

// stagingDir is where incomplete blobs live, beside the data so that the
// final rename never crosses a file system.
const stagingDir = ".staging"

// Open returns a store rooted at dir, creating it if needed, and removes
// whatever an earlier process left half-written in its staging directory:
// the staging files no live process holds a lock on (see clearStaging).
func Open(dir string) (*Store, error) {
	s := &Store{root: dir, staging: filepath.Join(dir, stagingDir)}
	if err := clearStaging(s.staging); err != nil {
		return nil, fmt.Errorf("clear staging directory: %w", err)
	}
	if err := os.MkdirAll(s.staging, 0o750); err != nil {
		return nil, fmt.Errorf("create blob directory: %w", err)
	}
	return s, nil
}

// path returns the file of key, refusing keys that could escape the root.
func (s *Store) path(key string) (string, error) {
	if len(key) < 3 || strings.ContainsAny(key, `/\`) || strings.HasPrefix(key, ".") {
		return "", cloudimage.Errorf(cloudimage.EINVALID, "invalid blob key %q", key)
	}
	return filepath.Join(s.root, key[:2], key), nil
}

// Put writes r to a staging file, syncs it, renames it to key's path and
// syncs the directory, so that once Put returns the blob survives a crash.
// On any error the staging file is removed and key is untouched.
func (s *Store) Put(ctx context.Context, key string, r io.Reader) (n int64, err error) {
	path, err := s.path(key)
	if err != nil {
		return 0, err
	}
	f, err := os.CreateTemp(s.staging, key+".*")
	if err != nil {
		return 0, fmt.Errorf("create staging file: %w", err)
	}
	// Held until the file is closed, or its process dies: another store
	// opened on this directory leaves a locked staging file alone.
	if err := lockFile(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return 0, fmt.Errorf("lock staging file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if n, err = copyBlob(ctx, f, r); err != nil {
		return n, storageFull(err)
	}
	// A file system may report a full disk only when the data is flushed.
	if err = f.Sync(); err != nil {
		return n, storageFull(fmt.Errorf("sync blob: %w", err))
	}
	if err = f.Close(); err != nil {
		return n, storageFull(fmt.Errorf("close blob: %w", err))
	}
	dir := filepath.Dir(path)
	if err = os.MkdirAll(dir, 0o750); err != nil {
		return n, storageFull(fmt.Errorf("create blob directory: %w", err))
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return n, fmt.Errorf("commit blob: %w", err)
	}
	if err = syncDir(dir); err != nil {
		// The rename happened but is not durable; remove it rather than
		// report a blob that a crash could lose.
		os.Remove(path)
		return n, fmt.Errorf("sync blob directory: %w", err)
	}
	return n, nil
}

// storageFull gives err the code ETOOLARGE when the file system is out of
// space or the owner out of quota, as Glance answers StorageFull with 413;
// the cause stays in the chain for the log. Other errors are returned as
// they are.
func storageFull(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", errStorageFull, err)
	}
	return err
}

// errStorageFull is what a caller is told when the data does not fit.
var errStorageFull = cloudimage.Errorf(cloudimage.ETOOLARGE,
	"Image storage media is full: there is no space left for the image data.")

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Open opens the blob stored under key.
func (s *Store) Open(ctx context.Context, key string) (io.ReadSeekCloser, error) {
	path, err := s.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, cloudimage.Errorf(cloudimage.ENOTFOUND, "no data for %s", key)
	} else if err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	return f, nil
}

// Delete removes the blob stored under key.
func (s *Store) Delete(ctx context.Context, key string) error {
	path, err := s.path(key)
	if err != nil {
		return err
	}
	err = os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cloudimage.Errorf(cloudimage.ENOTFOUND, "no data for %s", key)
	} else if err != nil {
		return fmt.Errorf("delete blob: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// List yields the blobs in the key directories, one directory read at a
// time. The staging directory holds no blobs yet and is skipped, as is
// any file that is not at the path of its name as a key: Delete could not
// reach it.
func (s *Store) List(ctx context.Context) iter.Seq2[cloudimage.BlobInfo, error] {
	return func(yield func(cloudimage.BlobInfo, error) bool) {
		dirs, err := os.ReadDir(s.root)
		if err != nil {
			yield(cloudimage.BlobInfo{}, fmt.Errorf("list blob directories: %w", err))
			return
		}
		for _, d := range dirs {
			if !d.IsDir() || len(d.Name()) != 2 || strings.HasPrefix(d.Name(), ".") {
				continue
			}
			if !s.listDir(ctx, d.Name(), yield) {
				return
			}
		}
	}
}

// listDir yields the blobs in the key directory dir and reports whether
// the listing goes on.
func (s *Store) listDir(ctx context.Context, dir string, yield func(cloudimage.BlobInfo, error) bool) bool {
	entries, err := os.ReadDir(filepath.Join(s.root, dir))
	if err != nil {
		yield(cloudimage.BlobInfo{}, fmt.Errorf("list blobs: %w", err))
		return false
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			yield(cloudimage.BlobInfo{}, err)
			return false
		}
		key := e.Name()
		if p, err := s.path(key); err != nil || !e.Type().IsRegular() ||
			p != filepath.Join(s.root, dir, key) {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since the directory was read
		} else if err != nil {
			yield(cloudimage.BlobInfo{}, fmt.Errorf("stat blob: %w", err))
			return false
		}
		if !yield(cloudimage.BlobInfo{Key: key, Size: info.Size(), ModTime: info.ModTime()}, nil) {
			return false
		}
	}
	return true
}

// copyBlob copies r into the staging file f, stopping once ctx is done.
// A reader that writes itself out (io.WriterTo, as the upload's hashing
// reader does, with chunks and buffers of its own) is left to, with ctx
// checked before each of its writes; any other is read 32 KiB at a time,
// with ctx checked before each read.
func copyBlob(ctx context.Context, f *os.File, r io.Reader) (int64, error) {
	w := &blobWriter{ctx: ctx, f: f, wb: newWriteback(f)}
	if _, ok := r.(io.WriterTo); ok {
		return io.Copy(w, r)
	}
	return io.Copy(w, contextReader{ctx, r})
}

// writebackStep is how many bytes of a blob are written out to the disk
// at a time while it streams in (see writeback).
const writebackStep = 8 << 20

// blobWriter writes a staging file, refusing to once its context is
// done, and has the file written out to the disk as it grows (see
// writeback), so that the disk writes while the data streams and the
// fsync at the end of the Put has little left to do. The fsync still
// comes, and the Put's durability rests on it alone.
type blobWriter struct {
	ctx context.Context
	f   *os.File
	wb  *writeback
	off int64 // bytes written
}

func (w *blobWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := w.f.Write(p)
	w.off += int64(n)
	if err == nil {
		err = w.wb.wrote(w.off)
	}
	return n, err
}

// contextReader stops a copy once its context is done.
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

// Ping reports whether the store can take data: its staging directory is
// there and a file can be made in it.
func (s *Store) Ping(ctx context.Context) error {
	f, err := os.CreateTemp(s.staging, "ping.*")
	if err != nil {
		return fmt.Errorf("blob store at %s cannot take data: %w", s.root, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
