package httpapi

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
)

// TestNHNImageEncoding pins the v1.0 image object with fixed times: six
// fraction digits even when they are zero, UTC, no zone; the twelve keys;
// properties an object even when the image has none.
func TestNHNImageEncoding(t *testing.T) {
	size := int64(42)
	seoul := time.FixedZone("KST", 9*3600)
	for _, tc := range []struct {
		created, updated time.Time
		wantC, wantU     string
	}{
		{time.Date(2017, 5, 16, 2, 17, 50, 0, time.UTC), time.Date(2017, 5, 16, 2, 17, 50, 166563000, time.UTC),
			"2017-05-16T02:17:50.000000", "2017-05-16T02:17:50.166563"},
		{time.Date(2017, 5, 16, 11, 17, 50, 1000, seoul), time.Date(2017, 5, 16, 11, 17, 50, 100000000, seoul),
			"2017-05-16T02:17:50.000001", "2017-05-16T02:17:50.100000"},
	} {
		img := &cloudimage.Image{
			ID: "0f8a2c4e-6b1d-4e3f-9a7c-5d2b8e1f4a6c", Name: "n", Status: cloudimage.StatusActive,
			Visibility: cloudimage.VisibilityPublic, Protected: true, DiskFormat: "qcow2",
			MinDisk: 10, MinRAM: 512, Size: &size, CreatedAt: tc.created, UpdatedAt: tc.updated,
		}
		b, err := json.Marshal(toNHNImage(img))
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got["createdAt"] != tc.wantC || got["updatedAt"] != tc.wantU {
			t.Errorf("createdAt %v updatedAt %v, want %s and %s", got["createdAt"], got["updatedAt"], tc.wantC, tc.wantU)
		}
		var keys []string
		for k := range got {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		want := []string{"createdAt", "diskFormat", "id", "isPublic", "minDisk", "minRam", "name",
			"properties", "protected", "size", "status", "updatedAt"}
		if !slices.Equal(keys, want) {
			t.Errorf("keys %v, want %v", keys, want)
		}
		if props, ok := got["properties"].(map[string]any); !ok || len(props) != 0 {
			t.Errorf("properties %#v, want {}", got["properties"])
		}
		if got["isPublic"] != true || got["protected"] != true || got["size"] != 42.0 || got["minRam"] != 512.0 {
			t.Errorf("typed fields %v", got)
		}
	}
}
