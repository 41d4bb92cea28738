package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"testing"

	"github.com/cloudimage/cloudimage"
	"github.com/google/uuid"
)

// TestBlobStore runs the blob store conformance suite; open must return a
// new, empty store each time it is called.
func TestBlobStore(t *testing.T, open func(t *testing.T) cloudimage.BlobStore) {
	t.Run("RoundTrip", func(t *testing.T) { testBlobRoundTrip(t, open(t)) })
	t.Run("Missing", func(t *testing.T) { testBlobMissing(t, open(t)) })
	t.Run("FailedPutLeavesNothing", func(t *testing.T) { testBlobFailedPut(t, open(t)) })
	t.Run("CanceledPut", func(t *testing.T) { testBlobCanceledPut(t, open(t)) })
	t.Run("Replace", func(t *testing.T) { testBlobReplace(t, open(t)) })
	t.Run("List", func(t *testing.T) { testBlobList(t, open(t)) })
	t.Run("ListWhileDeleting", func(t *testing.T) { testBlobListDeleting(t, open(t)) })
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func readBlob(t *testing.T, s cloudimage.BlobStore, key string) []byte {
	t.Helper()
	rc, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

func testBlobRoundTrip(t *testing.T, s cloudimage.BlobStore) {
	ctx := context.Background()
	for _, size := range []int{0, 1, 32<<10 + 1, 9 << 20} {
		key := uuid.NewString()
		data := randomBytes(t, size)
		n, err := s.Put(ctx, key, bytes.NewReader(data))
		if err != nil {
			t.Fatalf("put %d bytes: %v", size, err)
		}
		if n != int64(size) {
			t.Fatalf("put returned %d, want %d", n, size)
		}
		if got := readBlob(t, s, key); !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes differ from the %d written", len(got), size)
		}
		if size > 100 {
			rc, err := s.Open(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := rc.Seek(int64(size-100), io.SeekStart); err != nil {
				t.Fatal(err)
			}
			tail, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(tail, data[size-100:]) {
				t.Fatalf("after a seek: got %d bytes (%v), want the last 100", len(tail), err)
			}
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		_, err = s.Open(ctx, key)
		wantCode(t, err, cloudimage.ENOTFOUND)
	}
}

func testBlobMissing(t *testing.T, s cloudimage.BlobStore) {
	ctx := context.Background()
	_, err := s.Open(ctx, uuid.NewString())
	wantCode(t, err, cloudimage.ENOTFOUND)
	wantCode(t, s.Delete(ctx, uuid.NewString()), cloudimage.ENOTFOUND)
}

// failingReader yields n bytes, then an error.
type failingReader struct {
	n   int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, f.err
	}
	k := min(len(p), f.n)
	clear(p[:k])
	f.n -= k
	return k, nil
}

func testBlobFailedPut(t *testing.T, s cloudimage.BlobStore) {
	ctx := context.Background()
	key := uuid.NewString()
	boom := errors.New("connection reset")
	if _, err := s.Put(ctx, key, &failingReader{n: 1 << 20, err: boom}); !errors.Is(err, boom) {
		t.Fatalf("got error %v, want %v", err, boom)
	}
	_, err := s.Open(ctx, key)
	wantCode(t, err, cloudimage.ENOTFOUND)
}

func testBlobCanceledPut(t *testing.T, s cloudimage.BlobStore) {
	ctx, cancel := context.WithCancel(context.Background())
	key := uuid.NewString()
	pr, pw := io.Pipe()
	go func() {
		pw.Write(make([]byte, 64<<10))
		cancel()
		pw.Write(make([]byte, 64<<10))
		pw.Close()
	}()
	if _, err := s.Put(ctx, key, pr); err == nil {
		t.Fatal("put succeeded after its context was canceled")
	}
	_, err := s.Open(context.Background(), key)
	wantCode(t, err, cloudimage.ENOTFOUND)
}

func testBlobReplace(t *testing.T, s cloudimage.BlobStore) {
	ctx := context.Background()
	key := uuid.NewString()
	first, second := randomBytes(t, 1000), randomBytes(t, 10)
	if _, err := s.Put(ctx, key, bytes.NewReader(first)); err != nil {
		t.Fatal(err)
	}
	// A failed put must not disturb what is there.
	if _, err := s.Put(ctx, key, &failingReader{n: 5, err: io.ErrUnexpectedEOF}); err == nil {
		t.Fatal("failing put succeeded")
	}
	if got := readBlob(t, s, key); !bytes.Equal(got, first) {
		t.Fatal("a failed put changed the stored blob")
	}
	if _, err := s.Put(ctx, key, bytes.NewReader(second)); err != nil {
		t.Fatal(err)
	}
	if got := readBlob(t, s, key); !bytes.Equal(got, second) {
		t.Fatal("a second put did not replace the blob")
	}
}
