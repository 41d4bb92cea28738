package httpapi_test

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"

	"github.com/cloudimage/cloudimage"
)

// TestDownloadFileChunks checks downloads over a real connection, where
// the data goes out by sendfile a chunk (256 KiB) at a time: the whole
// image, and ranges that start, end and span chunk boundaries, come back
// byte for byte with the length they announce.
func TestDownloadFileChunks(t *testing.T) {
	e := newEnv(t)
	member := e.token(t, e.a, cloudimage.RoleMember)
	const chunk = 256 << 10
	data := testData(3*chunk + 12345)
	id := e.newImage(t, member, "chunks")
	e.upload(t, member, id, data)
	path := "/v2/images/" + id + "/file"

	status, h, b := e.call(t, "GET", path, member, "")
	if status != http.StatusOK || !bytes.Equal(b, data) || h.Get("Content-Length") != fmt.Sprint(len(data)) {
		t.Fatalf("GET %s: %d, %d bytes (Content-Length %s), want 200 with the %d uploaded",
			path, status, len(b), h.Get("Content-Length"), len(data))
	}
	for _, r := range [][2]int{
		{0, chunk - 1}, {0, chunk}, {chunk - 1, chunk}, {100, 2*chunk + 7},
		{chunk, len(data) - 1}, {len(data) - 1, len(data) - 1},
	} {
		rg := fmt.Sprintf("bytes=%d-%d", r[0], r[1])
		status, h, b := e.call(t, "GET", path, member, "", "Range", rg)
		if want := data[r[0] : r[1]+1]; status != http.StatusPartialContent || !bytes.Equal(b, want) ||
			h.Get("Content-Length") != fmt.Sprint(len(want)) {
			t.Errorf("GET %s Range %s: %d, %d bytes (Content-Length %s), want 206 with %d",
				path, rg, status, len(b), h.Get("Content-Length"), len(want))
		}
	}
}
