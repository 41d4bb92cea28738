package fsblob_test

import (
	"context"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/cloudimage/cloudimage/fsblob"
)

// chunkReader gives data in reads of at most max bytes.
type chunkReader struct {
	data []byte
	max  int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.max)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// BenchmarkPut stores 256 MiB of random data, its final fsync and that
// of the directory included, as an upload does, in a temporary
// directory (on the file system of $TMPDIR).
func BenchmarkPut(b *testing.B) {
	const size = 256 << 20
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{2}).Read(data)
	s, err := fsblob.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(size)
	for b.Loop() {
		if n, err := s.Put(ctx, "0123456789", &chunkReader{data: data, max: 1 << 20}); err != nil || n != size {
			b.Fatalf("put: %d bytes, %v", n, err)
		}
		b.StopTimer()
		if err := s.Delete(ctx, "0123456789"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
