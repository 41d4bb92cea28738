package main

import (
	"bytes"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cloudimage/cloudimage/client"
)

// requireInput fails a test that lacks its real input files in CI, where
// they must be installed, and skips it elsewhere.
func requireInput(t *testing.T, what, pkg string) {
	t.Helper()
	msg := what + " is missing; install the Debian package " + pkg +
		" (apt-get install ipxe qemu-utils)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI=true, so this is a failure, not a skip")
	}
	t.Skip(msg)
}

// isoPath is the ISO Debian's ipxe package ships.
const isoPath = "/usr/lib/ipxe/ipxe.iso"

// realImages returns the paths of the ipxe ISO and of a qcow2 image that
// qemu-img made from it.
func realImages(t *testing.T) (iso, qcow2 string) {
	t.Helper()
	if _, err := os.Stat(isoPath); err != nil {
		requireInput(t, isoPath, "ipxe")
	}
	qemuImg, err := exec.LookPath("qemu-img")
	if err != nil {
		requireInput(t, "qemu-img", "qemu-utils")
	}
	qcow2 = t.TempDir() + "/ipxe.qcow2"
	cmd := exec.Command(qemuImg, "convert", "-f", "raw", "-O", "qcow2", isoPath, qcow2)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v\n%s", err, out)
	}
	return isoPath, qcow2
}

// blobFiles returns the sorted names of the files in the data directory's
// blob store, leaving out its staging area.
func blobFiles(t *testing.T, dataDir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(filepath.Join(dataDir, "images"), func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && d.Name() == ".staging":
			return filepath.SkipDir
		case !d.IsDir():
			names = append(names, d.Name())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// listIDs returns the IDs of images in order.
func listIDs(images []client.ListedImage) []string {
	ids := make([]string, len(images))
	for i, img := range images {
		ids[i] = img.ID
	}
	return ids
}

// pageAll walks the v1.0 list one image per page, each page starting
// after the last image of the one before, and returns the IDs it saw.
func pageAll(t *testing.T, c *client.Client, max int) []string {
	t.Helper()
	one := 1
	var ids []string
	marker := ""
	for range max + 1 {
		page, err := c.ListImages(t.Context(), client.ListOptions{Limit: &one, Marker: marker})
		if err != nil {
			t.Fatalf("list with limit 1 after %q: %v", marker, err)
		}
		switch len(page) {
		case 0:
			return ids
		case 1:
			ids = append(ids, page[0].ID)
			marker = page[0].ID
		default:
			t.Fatalf("list with limit 1 returned %d images", len(page))
		}
	}
	t.Fatalf("paging did not end after %d pages; saw %v", max+1, ids)
	return nil
}

// isoVolumeSize returns the volume size an ISO's primary volume
// descriptor, at sector 16, gives: its volume space size (a
// little-endian uint32 at byte 80) times its logical block size (a
// little-endian uint16 at byte 128).
func isoVolumeSize(t *testing.T, iso []byte) string {
	t.Helper()
	const pvd = 16 * 2048
	if len(iso) < pvd+2048 || iso[pvd] != 1 || string(iso[pvd+1:pvd+6]) != "CD001" {
		t.Fatalf("the ISO has no primary volume descriptor at sector 16")
	}
	blocks := uint64(iso[pvd+80]) | uint64(iso[pvd+81])<<8 | uint64(iso[pvd+82])<<16 | uint64(iso[pvd+83])<<24
	block := uint64(iso[pvd+128]) | uint64(iso[pvd+129])<<8
	return strconv.FormatUint(blocks*block, 10)
}

// upload is a real image file and what the server made of it.
type upload struct {
	path   string
	format string // the disk format the upload must detect
	data   []byte
	id     string
}

// TestImageLifecycle uploads a real ISO and a qcow2 image through the CLI,
// checks what the server recorded and serves against the files, lists and
// pages through them, and deletes them.
func TestImageLifecycle(t *testing.T) {
	t.Parallel()
	iso, qcow2 := realImages(t)
	s := startBootstrapped(t)
	env := s.adminEnv()

	// The first upload issues its own token with the credentials; the
	// other commands reuse one, since every token costs a bcrypt
	// comparison, which the race detector makes slow.
	c := s.adminClient(t)
	byToken := map[string]string{
		"CLOUDIMAGE_URL": s.URL, "CLOUDIMAGE_APPKEY": s.AppKey, "CLOUDIMAGE_TOKEN": c.Token,
	}
	uploads := []*upload{{path: iso, format: "iso"}, {path: qcow2, format: "qcow2"}}
	for i, u := range uploads {
		var err error
		if u.data, err = os.ReadFile(u.path); err != nil {
			t.Fatal(err)
		}
		uploadEnv := byToken
		if i == 0 {
			uploadEnv = env
		}
		// The default profile is NHN Cloud's: os_type is required, and
		// only an image that allows it may be downloaded.
		got := fields(cliOK(t, uploadEnv, "image", "upload", "--os-type", "linux",
			"--property", "nhncloud_allow_download=true", u.path))
		u.id = got["id"]
		checkUploaded(t, s, u, got)
	}
	ids := []string{uploads[0].id, uploads[1].id}
	slices.Sort(ids)
	if got := blobFiles(t, s.DataDir); !slices.Equal(got, ids) {
		t.Errorf("blob files = %v, want %v", got, ids)
	}

	// An ISO's virtual size is its volume's, as its primary volume
	// descriptor gives it, which may end before the file does; qemu-img
	// keeps the whole ISO file's size as the qcow2's virtual size.
	virtualSizes := []string{isoVolumeSize(t, uploads[0].data), strconv.Itoa(len(uploads[0].data))}
	for i, u := range uploads {
		checkServed(t, c, u)
		if got := fields(cliOK(t, byToken, "image", "show", u.id))["virtual_size"]; got != virtualSizes[i] {
			t.Errorf("%s: virtual_size = %s, want %s", u.path, got, virtualSizes[i])
		}
	}
	checkListed(t, c, byToken, uploads)
	checkOtherCredentials(t, s, uploads[0].id)

	out := cliOK(t, byToken, "image", "delete", uploads[0].id, uploads[1].id)
	for _, u := range uploads {
		if !strings.Contains(out, "deleted "+u.id) {
			t.Errorf("delete output %q does not report %s", out, u.id)
		}
	}
	if list, err := c.ListImages(t.Context(), client.ListOptions{}); err != nil {
		t.Fatal(err)
	} else if len(list) != 0 {
		t.Errorf("list after delete = %v, want none", listIDs(list))
	}
	for _, u := range uploads {
		_, err := cli(t, byToken, "image", "show", u.id)
		if code := resultCode(t, err); code != 30404 {
			t.Errorf("show deleted %s: result code %d, want 30404", u.id, code)
		}
		var ce *client.Error
		if _, err := c.GetImage(t.Context(), u.id); !errors.As(err, &ce) || ce.HTTPStatus != 404 {
			t.Errorf("GET deleted %s: %v, want a 404", u.id, err)
		}
	}
	if got := blobFiles(t, s.DataDir); len(got) != 0 {
		t.Errorf("blob files after delete = %v, want none", got)
	}
}

// checkUploaded checks what "image upload" printed against the file.
func checkUploaded(t *testing.T, s *testServer, u *upload, got map[string]string) {
	t.Helper()
	md5Sum := md5.Sum(u.data)
	sha512Sum := sha512.Sum512(u.data)
	want := map[string]string{
		"name":                    filepath.Base(u.path),
		"status":                  "active",
		"visibility":              "shared",
		"disk_format":             u.format,
		"container_format":        "bare",
		"size":                    strconv.Itoa(len(u.data)),
		"checksum":                hex.EncodeToString(md5Sum[:]),
		"os_hash_algo":            "sha512",
		"os_hash_value":           hex.EncodeToString(sha512Sum[:]),
		"owner":                   s.TenantID,
		"os_type":                 "linux",
		"nhncloud_allow_download": "true",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("upload %s: %s = %q, want %q", u.path, k, got[k], v)
		}
	}
}

// checkServed checks the v2 image and its data against the file.
func checkServed(t *testing.T, c *client.Client, u *upload) {
	t.Helper()
	img, err := c.GetImage(t.Context(), u.id)
	if err != nil {
		t.Fatalf("get %s: %v", u.id, err)
	}
	md5Sum := md5.Sum(u.data)
	sha512Sum := sha512.Sum512(u.data)
	switch {
	case img.DiskFormat == nil || *img.DiskFormat != u.format:
		t.Errorf("%s: disk_format = %s, want %s", u.path, deref(img.DiskFormat), u.format)
	case img.Size == nil || *img.Size != int64(len(u.data)):
		t.Errorf("%s: size = %s, want %d", u.path, deref(img.Size), len(u.data))
	case img.Checksum == nil || *img.Checksum != hex.EncodeToString(md5Sum[:]):
		t.Errorf("%s: checksum = %s, want the file's md5", u.path, deref(img.Checksum))
	case img.HashValue == nil || *img.HashValue != hex.EncodeToString(sha512Sum[:]):
		t.Errorf("%s: os_hash_value = %s, want the file's sha512", u.path, deref(img.HashValue))
	}

	rc, err := c.DownloadImage(t.Context(), u.id)
	if err != nil {
		t.Fatalf("download %s: %v", u.id, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("download %s: %v", u.id, err)
	}
	if !bytes.Equal(data, u.data) {
		t.Errorf("%s: downloaded %d bytes that differ from the file's %d", u.path, len(data), len(u.data))
	}
}

// deref formats what p points to, or "null".
func deref[T any](p *T) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprint(*p)
}

// checkListed lists the uploads through the v1.0 API, whole and a page
// at a time, through the client and the CLI.
func checkListed(t *testing.T, c *client.Client, env map[string]string, uploads []*upload) {
	t.Helper()
	list, err := c.ListImages(t.Context(), client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	all := listIDs(list)
	want := []string{uploads[0].id, uploads[1].id}
	if got := slices.Sorted(slices.Values(all)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Fatalf("list = %v, want %v", all, want)
	}
	for _, img := range list {
		if img.Status != "active" || img.DiskFormat == nil || img.Size == 0 || img.IsPublic {
			t.Errorf("listed %+v, want an active, private image with a format and size", img)
		}
	}
	if got := pageAll(t, c, len(all)); !slices.Equal(got, all) {
		t.Errorf("pages of one = %v, want %v", got, all)
	}

	listJSON := func(args ...string) []string {
		t.Helper()
		var images []client.ListedImage
		out := cliOK(t, env, append([]string{"image", "list", "--json"}, args...)...)
		if err := json.Unmarshal([]byte(out), &images); err != nil {
			t.Fatalf("image list --json: %v\n%s", err, out)
		}
		return listIDs(images)
	}
	if got := listJSON(); !slices.Equal(got, all) {
		t.Errorf("image list --json = %v, want %v", got, all)
	}
	if got := listJSON("--limit", "1"); !slices.Equal(got, all[:1]) {
		t.Errorf("image list --limit 1 = %v, want %v", got, all[:1])
	}
	if got := listJSON("--marker", all[0]); !slices.Equal(got, all[1:]) {
		t.Errorf("image list --marker %s = %v, want %v", all[0], got, all[1:])
	}
	if got := listJSON("--limit", "0"); len(got) != 0 {
		t.Errorf("image list --limit 0 = %v, want none", got)
	}
	table := cliOK(t, env, "image", "list")
	if !strings.HasPrefix(table, "ID ") || !strings.Contains(table, all[0]) || !strings.Contains(table, all[1]) {
		t.Errorf("image list printed\n%s\nwant a table of %v", table, all)
	}

	var img client.Image
	out := cliOK(t, env, "image", "show", "--json", all[0])
	if err := json.Unmarshal([]byte(out), &img); err != nil || img.ID != all[0] {
		t.Errorf("image show --json %s: %v\n%s", all[0], err, out)
	}
}

// checkOtherCredentials reaches the server with a Keystone v2.0 token,
// got with the tenant ID instead of the appkey, and with a token given
// in CLOUDIMAGE_TOKEN.
func checkOtherCredentials(t *testing.T, s *testServer, id string) {
	t.Helper()
	keystone := with(s.adminEnv(), "CLOUDIMAGE_APPKEY", "", "CLOUDIMAGE_TENANT_ID", s.TenantID)
	var tok client.Token
	out := cliOK(t, keystone, "token", "issue", "--json")
	if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.ID == "" || tok.Expires == "" {
		t.Fatalf("token issue --json: %v\n%s", err, out)
	}
	if got := fields(cliOK(t, keystone, "image", "show", id))["id"]; got != id {
		t.Errorf("image show with a Keystone token: id %q, want %s", got, id)
	}
	noAppKey := map[string]string{"CLOUDIMAGE_URL": s.URL, "CLOUDIMAGE_TOKEN": tok.ID}
	_, err := cli(t, noAppKey, "image", "list")
	if err == nil || !strings.Contains(err.Error(), "CLOUDIMAGE_APPKEY") {
		t.Errorf("image list without an appkey: %v, want an error asking for CLOUDIMAGE_APPKEY", err)
	}

	// A Keystone token serves the v1.0 API of its project too.
	byToken := map[string]string{
		"CLOUDIMAGE_URL": s.URL, "CLOUDIMAGE_APPKEY": s.AppKey, "CLOUDIMAGE_TOKEN": tok.ID,
	}
	var images []client.ListedImage
	out = cliOK(t, byToken, "image", "list", "--json")
	if err := json.Unmarshal([]byte(out), &images); err != nil || !slices.Contains(listIDs(images), id) {
		t.Errorf("image list with CLOUDIMAGE_TOKEN: %v\n%s", err, out)
	}
	if got := fields(cliOK(t, noAppKey, "image", "show", id))["id"]; got != id {
		t.Errorf("image show with CLOUDIMAGE_TOKEN: id %q, want %s", got, id)
	}
}
