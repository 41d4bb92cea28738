package cloudimage

import (
	"io"
	"math/rand/v2"
	"testing"
)

// socketReader gives data in reads of at most max bytes, as a TCP
// socket gives a request body, and hides any WriteTo of its own.
type socketReader struct {
	data []byte
	max  int
}

func (r *socketReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.max)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// writeOnly is a sink with no ReadFrom, as a file is for data that does
// not come from a file or a socket.
type writeOnly struct{}

func (writeOnly) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkHashingReader streams 256 MiB of random raw data through the
// upload's hashingReader (md5, sha512 and the format inspector) into a
// sink, as fsblob's Put does, with the source read 64 KiB at a time.
func BenchmarkHashingReader(b *testing.B) {
	const size = 256 << 20
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{6}).Read(data)
	s := &ImageService{maxSize: DefaultMaxImageSize}
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		hr := s.newHashingReader(&socketReader{data: data, max: 64 << 10}, "raw")
		if n, err := io.Copy(writeOnly{}, hr); err != nil || n != size {
			b.Fatalf("copied %d bytes, err %v", n, err)
		}
		if hr.refusal() != nil || hr.format != "raw" {
			b.Fatalf("refusal %v, format %q", hr.refusal(), hr.format)
		}
	}
}
