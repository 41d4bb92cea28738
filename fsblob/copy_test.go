package fsblob_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/cloudimage/cloudimage/fsblob"
)

// pieceWriter writes its data out itself (io.WriterTo) in pieces, as the
// upload's hashing reader does, and calls after each piece it writes.
type pieceWriter struct {
	data  []byte
	piece int
	after func()
}

func (r *pieceWriter) Read(p []byte) (int, error) {
	panic("Put read a reader that writes itself out")
}

func (r *pieceWriter) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for len(r.data) > 0 {
		k, err := w.Write(r.data[:min(r.piece, len(r.data))])
		n += int64(k)
		r.data = r.data[k:]
		if err != nil {
			return n, err
		}
		if r.after != nil {
			r.after()
		}
	}
	return n, nil
}

// TestPutWriterTo checks that a reader that writes itself out is stored
// whole, across the steps at which the writeback of a blob starts, and
// that Put still stops at its next write once the context is done,
// leaving nothing.
func TestPutWriterTo(t *testing.T) {
	data := make([]byte, 21<<20+3)
	rand.NewChaCha8([32]byte{1}).Read(data)
	dir := t.TempDir()
	s, err := fsblob.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n, err := s.Put(ctx, "0123456789", &pieceWriter{data: data, piece: 3 << 20})
	if err != nil || n != int64(len(data)) {
		t.Fatalf("put: %d bytes, %v; want %d", n, err, len(data))
	}
	f, err := s.Open(ctx, "0123456789")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	f.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (%v), not the %d put", len(got), err, len(data))
	}

	cctx, cancel := context.WithCancel(ctx)
	writes := 0
	_, err = s.Put(cctx, "abcdefgh", &pieceWriter{data: data, piece: 1 << 20, after: func() {
		if writes++; writes == 2 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("put cancelled after two writes: %v, want context.Canceled", err)
	}
	if writes != 2 {
		t.Errorf("put went on for %d writes, want 2", writes)
	}
	assertNothingKept(t, s, dir, "abcdefgh")
}
