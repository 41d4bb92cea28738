package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// qcow2Data is the start of a qcow2 image of 1 MiB without a backing
// file: magic, version 3, and the size at byte 24.
var qcow2Data = []byte("QFI\xfb\x00\x00\x00\x03" + strings.Repeat("\x00", 16) +
	"\x00\x00\x00\x00\x00\x10\x00\x00" + strings.Repeat("\x00", 480))

// TestRequireFormatMatch checks where --require-format-match comes from
// and that it works: by default, data that is not in its disk_format is
// refused; the flag or CLOUDIMAGE_REQUIRE_FORMAT_MATCH turns that off,
// and the flag wins over the variable.
func TestRequireFormatMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		env    map[string]string
		args   []string
		refuse bool
	}{
		{"default", nil, nil, true},
		{"flag off", nil, []string{"--require-format-match=false"}, false},
		{"env off", map[string]string{"CLOUDIMAGE_REQUIRE_FORMAT_MATCH": "false"}, nil, false},
		{"flag on over env off", map[string]string{"CLOUDIMAGE_REQUIRE_FORMAT_MATCH": "0"},
			[]string{"--require-format-match"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"CLOUDIMAGE_ADMIN_PASSWORD": testAdminPassword}
			for k, v := range tc.env {
				env[k] = v
			}
			s := startServer(t, t.TempDir(), env, tc.args...)
			s.Password = testAdminPassword
			c := s.adminClient(t)
			img, err := c.CreateImage(t.Context(), map[string]any{"name": "qcow2 as raw", "disk_format": "raw",
				"container_format": "bare", "os_type": "linux"})
			if err != nil {
				t.Fatal(err)
			}
			err = c.UploadImage(t.Context(), img.ID, bytes.NewReader(qcow2Data), int64(len(qcow2Data)))
			const refusal = "Image data is qcow2 but disk_format is raw."
			switch {
			case tc.refuse && (err == nil || !strings.Contains(err.Error(), refusal)):
				t.Errorf("upload of qcow2 data as raw: %v, want the refusal", err)
			case !tc.refuse && err != nil:
				t.Errorf("upload of qcow2 data as raw: %v, want it taken", err)
			}
			s.Stop(t)
			if want := fmt.Sprint("require_format_match=", tc.refuse); !strings.Contains(s.Stderr.String(), want) {
				t.Errorf("config log lacks %q", want)
			}
		})
	}
}

func TestRequireFormatMatchBadEnv(t *testing.T) {
	t.Parallel()
	_, err := cli(t, map[string]string{"CLOUDIMAGE_REQUIRE_FORMAT_MATCH": "maybe"},
		"serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "CLOUDIMAGE_REQUIRE_FORMAT_MATCH: not a boolean") {
		t.Errorf("serve with CLOUDIMAGE_REQUIRE_FORMAT_MATCH=maybe: %v, want an error naming it", err)
	}
}

// TestUploadGuessesFixedVHD checks that "image upload" without
// --disk-format recognises a fixed VHD by its footer, at its end, so that
// the server, which checks formats, takes it as vhd with its virtual size.
func TestUploadGuessesFixedVHD(t *testing.T) {
	t.Parallel()
	const qemuImg = "/usr/bin/qemu-img"
	if _, err := os.Stat(qemuImg); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("qemu-img is missing (%v); CI=true, so this is a failure, not a skip", err)
		}
		t.Skipf("qemu-img is missing (%v): install qemu-utils", err)
	}
	path := filepath.Join(t.TempDir(), "fixed.vhd")
	create := exec.Command(qemuImg, "create", "-q", "-f", "vpc", "-o", "subformat=fixed", path, "2M")
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v\n%s", err, out)
	}
	out, err := exec.Command(qemuImg, "info", "-f", "vpc", "--output=json", path).Output()
	if err != nil {
		t.Fatalf("qemu-img info: %v", err)
	}
	var info struct {
		VirtualSize json.Number `json:"virtual-size"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	s := startBootstrapped(t)
	got := fields(cliOK(t, s.adminEnv(), "image", "upload", "--os-type", "linux", path))
	if got["disk_format"] != "vhd" || got["status"] != "active" ||
		got["virtual_size"] != info.VirtualSize.String() {
		t.Errorf("upload of a fixed VHD: disk_format %q status %q virtual_size %q, want vhd, active, %s",
			got["disk_format"], got["status"], got["virtual_size"], info.VirtualSize)
	}
}
