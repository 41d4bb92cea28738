package cloudimage

import (
	"bytes"
	"crypto/md5"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// copied is what one copy through a hashingReader gave.
type copied struct {
	n                   int64
	err                 error
	srcErr              error
	md5, sha512         string
	refusal, format, vs string
}

// copyThrough copies data through a fresh hashingReader into w, the
// source read at most max bytes at a time, through WriteTo or, when
// viaRead, through Read (io.Copy's 32 KiB buffer).
func copyThrough(s *ImageService, data []byte, declared string, max int, viaRead bool, w io.Writer) copied {
	hr := s.newHashingReader(&socketReader{data: data, max: max}, declared)
	var src io.Reader = hr
	if viaRead {
		src = struct{ io.Reader }{hr}
	}
	n, err := io.Copy(w, src)
	got := copied{n: n, err: err, srcErr: hr.err, format: hr.format, vs: "nil",
		md5: hex.EncodeToString(hr.md5.Sum(nil)), sha512: hex.EncodeToString(hr.sha512.Sum(nil))}
	if r := hr.refusal(); r != nil {
		got.refusal = r.Error()
	}
	if v := hr.virtualSize(declared, n); v != nil {
		got.vs = fmt.Sprint(*v)
	}
	return got
}

// bufferOnly hides bytes.Buffer's ReadFrom, as a file's is hidden.
type bufferOnly struct{ b bytes.Buffer }

func (w *bufferOnly) Write(p []byte) (int, error) { return w.b.Write(p) }

// TestHashingReaderWriteTo checks that WriteTo, which hashes in
// goroutines of its own, copies the same bytes and gives the same hashes,
// inspection and refusal as Read, and the right hashes, for sizes around its
// chunk size and beyond all its chunks, the source read in pieces of
// every kind, and data of every format the inspector reads.
func TestHashingReaderWriteTo(t *testing.T) {
	s := &ImageService{maxSize: DefaultMaxImageSize}
	rnd := rand.New(rand.NewPCG(6, 6))
	sizes := []int{0, 1, 4095, hashChunkSize - 1, hashChunkSize, hashChunkSize + 1,
		hashChunks*hashChunkSize + 12345, 2*hashChunks*hashChunkSize + 1}
	for i, seed := range inspectSeeds() {
		for _, size := range sizes {
			if size > 2*hashChunkSize && i%3 != 0 {
				continue // the formats' heads are all in the first chunk
			}
			data := make([]byte, max(size, len(seed)))
			rand.NewChaCha8([32]byte{byte(i), byte(size)}).Read(data)
			copy(data, seed)
			want5, want512 := md5.Sum(data), sha512.Sum512(data)
			for _, readMax := range []int{1 + rnd.IntN(4096), 64 << 10, 3 << 20} {
				declared := inspectFormats[i%len(inspectFormats)]
				name := fmt.Sprintf("seed%d/%s/size%d/reads%d", i, declared, len(data), readMax)
				if readMax < 4096 && len(data) > hashChunkSize+1 {
					continue // many reads, and nothing new to see
				}
				var viaWriteTo, viaRead bufferOnly
				got := copyThrough(s, data, declared, readMax, false, &viaWriteTo)
				want := copyThrough(s, data, declared, readMax, true, &viaRead)
				if got.err != nil {
					// What was copied and hashed of data that is
					// refused is thrown away: Read copies the
					// refused read, WriteTo does not.
					got.n, got.md5, got.sha512 = want.n, want.md5, want.sha512
				}
				if got != want {
					t.Errorf("%s: WriteTo gave %+v, Read %+v", name, got, want)
				}
				if got.err == nil && (got.md5 != hex.EncodeToString(want5[:]) ||
					got.sha512 != hex.EncodeToString(want512[:])) {
					t.Errorf("%s: hashes %s %s, want those of the data", name, got.md5, got.sha512)
				}
				if got.err == nil && !bytes.Equal(viaWriteTo.b.Bytes(), data) {
					t.Errorf("%s: WriteTo wrote %d bytes, not the data", name, viaWriteTo.b.Len())
				}
			}
		}
	}
}

// failingSource gives its data, then err.
type failingSource struct {
	data []byte
	err  error
}

func (r *failingSource) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p[:min(len(p), 100_000)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// failingWriter takes n bytes, then fails with err, or takes part of a
// write without an error when err is nil.
type failingWriter struct {
	bufferOnly
	n   int
	err error
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) <= w.n {
		w.n -= len(p)
		return w.bufferOnly.Write(p)
	}
	k, _ := w.bufferOnly.Write(p[:w.n])
	w.n = 0
	return k, w.err
}

// TestHashingReaderWriteToFails checks how WriteTo ends when it cannot
// go on: a source that fails is remembered as the source's error, after
// what it gave was written; a writer's error, or a short write, is
// returned as it is and is not the source's; data the inspector refuses
// is refused before it is written; and no hasher goroutine outlives the
// call.
func TestHashingReaderWriteToFails(t *testing.T) {
	data := make([]byte, 3*hashChunkSize+777)
	rand.NewChaCha8([32]byte{7}).Read(data)
	broken := errors.New("connection reset")
	full := errors.New("no space")
	unsafe := make([]byte, 2*hashChunkSize)
	copy(unsafe, "QFI\xfb\x00\x00\x00\x03")
	binary.BigEndian.PutUint64(unsafe[8:], 4096) // a backing file
	before := runtime.NumGoroutine()
	for _, tc := range []struct {
		name          string
		src           io.Reader
		w             *failingWriter
		max           int64
		err, srcErr   error
		written       int
		refusal, code string
	}{
		{name: "source fails", src: &failingSource{data, broken}, w: &failingWriter{n: len(data)},
			err: broken, srcErr: broken, written: len(data)},
		{name: "source fails at once", src: &failingSource{nil, broken}, w: &failingWriter{n: len(data)},
			err: broken, srcErr: broken},
		{name: "write fails", src: bytes.NewReader(data), w: &failingWriter{n: hashChunkSize + 5, err: full},
			err: full, written: hashChunkSize + 5},
		{name: "short write", src: bytes.NewReader(data), w: &failingWriter{n: 2*hashChunkSize + 1},
			err: io.ErrShortWrite, written: 2*hashChunkSize + 1},
		{name: "unsafe", src: bytes.NewReader(unsafe), w: &failingWriter{n: len(unsafe)},
			err: errUnsafeData, code: EINVALID},
		{name: "too large", src: bytes.NewReader(data), w: &failingWriter{n: len(data)}, max: 2 * hashChunkSize,
			err: errUnsafeData, written: 2 * hashChunkSize, code: ETOOLARGE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &ImageService{maxSize: DefaultMaxImageSize}
			if tc.max > 0 {
				s.maxSize = tc.max
			}
			hr := s.newHashingReader(struct{ io.Reader }{tc.src}, "raw")
			n, err := hr.WriteTo(tc.w)
			if err != tc.err || hr.err != tc.srcErr {
				t.Errorf("WriteTo: %v (source %v), want %v (source %v)", err, hr.err, tc.err, tc.srcErr)
			}
			if n != int64(tc.written) || !bytes.Equal(tc.w.b.Bytes(), data[:min(tc.written, tc.w.b.Len())]) &&
				tc.code != EINVALID {
				t.Errorf("wrote %d bytes (%d taken), want the first %d of the data", n, tc.w.b.Len(), tc.written)
			}
			if tc.code == EINVALID && tc.w.b.Len() != 0 {
				t.Errorf("wrote %d bytes of refused data", tc.w.b.Len())
			}
			if got := ErrorCode(hr.refusal()); tc.code != "" && got != tc.code {
				t.Errorf("refusal %v, want code %s", hr.refusal(), tc.code)
			}
			// Refused data stays refused.
			if tc.code != "" {
				if _, err := hr.WriteTo(tc.w); err != errUnsafeData {
					t.Errorf("WriteTo after a refusal: %v, want errUnsafeData", err)
				}
			}
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after WriteTo returned, %d before", n, before)
	}
}

type panickingWriter struct{}

func (panickingWriter) Write([]byte) (int, error) { panic("write panicked") }

// TestHashingReaderWriteToPanic checks that a panic of the writer goes up
// through WriteTo, rather than leaving it waiting for its chunks.
func TestHashingReaderWriteToPanic(t *testing.T) {
	s := &ImageService{maxSize: DefaultMaxImageSize}
	data := make([]byte, 2*hashChunkSize)
	done := make(chan any, 1)
	go func() {
		defer func() { done <- recover() }()
		hr := s.newHashingReader(&socketReader{data: data, max: 64 << 10}, "raw")
		hr.WriteTo(panickingWriter{})
	}()
	select {
	case got := <-done:
		if got != "write panicked" {
			t.Errorf("WriteTo with a writer that panics: recovered %v, want its panic", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WriteTo hangs after its writer panicked")
	}
}
