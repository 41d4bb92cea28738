package httpapi

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cloudimage/cloudimage"
)

func patchTestImage() *cloudimage.Image {
	return &cloudimage.Image{
		ID: testUUID, Name: "old", Status: cloudimage.StatusQueued, Visibility: cloudimage.VisibilityPrivate,
		DiskFormat: "raw", ContainerFormat: "bare", MinDisk: 1, MinRAM: 64, Owner: "p",
		Tags: []string{"a", "b"}, Properties: map[string]string{"os_type": "linux", "keep": "k"},
	}
}

// patch parses body in the given form and applies it to patchTestImage.
func patch(body string, v20 bool) (cloudimage.ImageUpdate, error) {
	ops, err := parsePatch([]byte(body), v20)
	if err != nil {
		return cloudimage.ImageUpdate{}, err
	}
	return applyPatch(patchTestImage(), ops, v20)
}

// describeUpdate renders u with its pointers followed, for comparison.
func describeUpdate(u cloudimage.ImageUpdate) string {
	var parts []string
	add := func(name string, v any) { parts = append(parts, fmt.Sprintf("%s=%v", name, v)) }
	if u.Name != nil {
		add("name", *u.Name)
	}
	if u.Visibility != nil {
		add("visibility", *u.Visibility)
	}
	if u.Protected != nil {
		add("protected", *u.Protected)
	}
	if u.Hidden != nil {
		add("hidden", *u.Hidden)
	}
	if u.DiskFormat != nil {
		add("disk_format", *u.DiskFormat)
	}
	if u.ContainerFormat != nil {
		add("container_format", *u.ContainerFormat)
	}
	if u.MinDisk != nil {
		add("min_disk", *u.MinDisk)
	}
	if u.MinRAM != nil {
		add("min_ram", *u.MinRAM)
	}
	if u.Tags != nil {
		add("tags", u.Tags)
	}
	if u.SetProperties != nil {
		add("set", u.SetProperties)
	}
	if u.RemoveProperties != nil {
		add("remove", u.RemoveProperties)
	}
	return strings.Join(parts, " ")
}

func TestApplyPatch(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		v20        bool
		want       string
	}{
		{"empty", `[]`, false, ""},
		{"replace name", `[{"op":"replace","path":"/name","value":"new"}]`, false, "name=new"},
		{"add name sets it", `[{"op":"add","path":"/name","value":"new"}]`, false, "name=new"},
		{"same name", `[{"op":"replace","path":"/name","value":"old"}]`, false, ""},
		{"null name", `[{"op":"replace","path":"/name","value":null}]`, false, "name="},
		{"every attribute", `[{"op":"replace","path":"/visibility","value":"shared"},
			{"op":"replace","path":"/protected","value":true},{"op":"replace","path":"/os_hidden","value":true},
			{"op":"replace","path":"/disk_format","value":"qcow2"},{"op":"replace","path":"/container_format","value":"ova"},
			{"op":"replace","path":"/min_disk","value":20},{"op":"replace","path":"/min_ram","value":0}]`, false,
			"visibility=shared protected=true hidden=true disk_format=qcow2 container_format=ova min_disk=20 min_ram=0"},
		{"null disk_format", `[{"op":"replace","path":"/disk_format","value":null}]`, false, "disk_format="},
		{"tags replaced", `[{"op":"replace","path":"/tags","value":["z","a","z"]}]`, false, "tags=[a z]"},
		{"same tags in another order", `[{"op":"replace","path":"/tags","value":["b","a","a"]}]`, false, ""},
		{"tags cleared", `[{"op":"add","path":"/tags","value":[]}]`, false, "tags=[]"},
		{"add property", `[{"op":"add","path":"/os_distro","value":"ubuntu"}]`, false, "set=map[os_distro:ubuntu]"},
		{"add existing property", `[{"op":"add","path":"/os_type","value":"windows"}]`, false, "set=map[os_type:windows]"},
		{"replace property", `[{"op":"replace","path":"/os_type","value":"windows"}]`, false, "set=map[os_type:windows]"},
		{"remove property", `[{"op":"remove","path":"/keep"}]`, false, "remove=[keep]"},
		{"add then replace", `[{"op":"add","path":"/x","value":"1"},{"op":"replace","path":"/x","value":"2"}]`, false,
			"set=map[x:2]"},
		{"add then remove", `[{"op":"add","path":"/x","value":"1"},{"op":"remove","path":"/x"}]`, false, ""},
		{"remove then add", `[{"op":"remove","path":"/keep"},{"op":"add","path":"/keep","value":"k"}]`, false, ""},
		{"escaped pointer", `[{"op":"add","path":"/a~1b~0c","value":"v"}]`, false, "set=map[a/b~c:v]"},
		{"spaces around the token", `[{"op":"add","path":"/ x ","value":"v"}]`, false, "set=map[x:v]"},
		{"v2.0 replace", `[{"replace":"/name","value":"new"}]`, true, "name=new"},
		{"v2.0 add", `[{"add":"/os_distro","value":"ubuntu"}]`, true, "set=map[os_distro:ubuntu]"},
		{"v2.0 remove", `[{"remove":"/keep"}]`, true, "remove=[keep]"},
		{"v2.0 protected", `[{"replace":"/protected","value":false}]`, true, ""},
	} {
		u, err := patch(tc.body, tc.v20)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := describeUpdate(u); got != tc.want {
			t.Errorf("%s: update %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestApplyPatchRefused(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		v20        bool
		code, msg  string
	}{
		{"not JSON", `[{`, false, cloudimage.EINVALID, "Malformed JSON in request body."},
		{"empty body", ``, false, cloudimage.EINVALID, "Body expected in request."},
		{"trailing data", `[]]`, false, cloudimage.EINVALID, "Malformed JSON in request body."},
		{"not UTF-8", "[{\"op\":\"add\",\"path\":\"/x\",\"value\":\"\xff\"}]", false, cloudimage.EINVALID, "Malformed JSON"},
		{"object body", `{"op":"add"}`, false, cloudimage.EINVALID,
			"Request body must be a JSON array of operation objects."},
		{"array item", `["add"]`, false, cloudimage.EINVALID, "Operations must be JSON objects."},
		{"no op", `[{"path":"/name","value":"x"}]`, false, cloudimage.EINVALID, "Unable to find `op` in JSON Schema change."},
		{"test op", `[{"op":"test","path":"/name","value":"x"}]`, false, cloudimage.EINVALID,
			"Invalid operation: `test`. It must be one of the following: add, remove, replace."},
		{"move op", `[{"op":"move","from":"/a","path":"/b"}]`, false, cloudimage.EINVALID, "Invalid operation: `move`."},
		{"no path", `[{"op":"add","value":"x"}]`, false, cloudimage.EINVALID, "Unable to find 'path' in JSON Schema change"},
		{"path not a string", `[{"op":"add","path":5,"value":"x"}]`, false, cloudimage.EINVALID, "Pointer `5`"},
		{"no value", `[{"op":"replace","path":"/name"}]`, false, cloudimage.EINVALID,
			`Operation "replace" requires a member named "value".`},
		{"relative pointer", `[{"op":"add","path":"name","value":"x"}]`, false, cloudimage.EINVALID,
			"Pointer `name` does not start with \"/\"."},
		{"adjacent slashes", `[{"op":"add","path":"/a//b","value":"x"}]`, false, cloudimage.EINVALID, "contains adjacent"},
		{"trailing slash", `[{"op":"add","path":"/a/","value":"x"}]`, false, cloudimage.EINVALID, "end with"},
		{"bad escape", `[{"op":"add","path":"/a~2","value":"x"}]`, false, cloudimage.EINVALID, "contains \"~\""},
		{"deep path", `[{"op":"add","path":"/tags/-","value":"x"}]`, false, cloudimage.EINVALID,
			"Invalid JSON pointer for this resource: '/tags/-'"},
		{"deep property", `[{"op":"replace","path":"/a/b","value":"x"}]`, false, cloudimage.EINVALID,
			"Invalid JSON pointer for this resource: '/a/b'"},
		{"status", `[{"op":"replace","path":"/status","value":"active"}]`, false, cloudimage.EFORBIDDEN,
			"Attribute 'status' is read-only."},
		{"remove status", `[{"op":"remove","path":"/status"}]`, false, cloudimage.EFORBIDDEN,
			"Attribute 'status' is read-only."},
		{"size", `[{"op":"add","path":"/size","value":5}]`, false, cloudimage.EFORBIDDEN, "Attribute 'size' is read-only."},
		{"checksum", `[{"op":"add","path":"/checksum","value":"x"}]`, false, cloudimage.EFORBIDDEN, "read-only"},
		{"owner", `[{"op":"replace","path":"/owner","value":"q"}]`, false, cloudimage.EFORBIDDEN,
			"Attribute 'owner' is read-only."},
		{"id", `[{"op":"replace","path":"/id","value":"x"}]`, false, cloudimage.EFORBIDDEN, "Attribute 'id' is read-only."},
		{"created_at", `[{"op":"replace","path":"/created_at","value":"x"}]`, false, cloudimage.EFORBIDDEN, "read-only"},
		{"self", `[{"op":"replace","path":"/self","value":"x"}]`, false, cloudimage.EFORBIDDEN, "read-only"},
		{"reserved", `[{"op":"add","path":"/deleted","value":"x"}]`, false, cloudimage.EFORBIDDEN,
			"Attribute 'deleted' is reserved."},
		{"location", `[{"op":"add","path":"/location","value":"x"}]`, false, cloudimage.EFORBIDDEN, "is reserved."},
		{"os_glance namespace", `[{"add":"/os_glance_foo","value":"bar"}]`, true, cloudimage.EFORBIDDEN,
			"Attribute 'os_glance_foo' is reserved."},
		{"add locations", `[{"op":"add","path":"/locations/-","value":{"url":"http://x","metadata":{}}}]`, false,
			cloudimage.EFORBIDDEN, "It's not allowed to add locations if locations are invisible."},
		{"replace locations", `[{"op":"replace","path":"/locations","value":[{"url":"http://x","metadata":{}}]}]`, false,
			cloudimage.EFORBIDDEN, "It's not allowed to update locations if locations are invisible."},
		{"empty locations", `[{"op":"replace","path":"/locations","value":[]}]`, false, cloudimage.EFORBIDDEN,
			"Cannot set locations to empty list."},
		{"remove locations", `[{"op":"remove","path":"/locations/0"}]`, false, cloudimage.EFORBIDDEN,
			"It's not allowed to remove locations"},
		{"locations depth", `[{"op":"add","path":"/locations","value":[]}]`, false, cloudimage.EINVALID,
			"Invalid JSON pointer for this resource: '/locations'"},
		{"replace a missing property", `[{"op":"replace","path":"/nope","value":"x"}]`, false, cloudimage.ECONFLICT,
			"Property nope does not exist."},
		{"remove a missing property", `[{"op":"remove","path":"/nope"}]`, false, cloudimage.ECONFLICT,
			"Property nope does not exist."},
		{"remove twice", `[{"op":"remove","path":"/keep"},{"op":"remove","path":"/keep"}]`, false, cloudimage.ECONFLICT,
			"Property keep does not exist."},
		{"remove an attribute", `[{"op":"remove","path":"/name"}]`, false, cloudimage.EFORBIDDEN,
			"Property name may not be removed."},
		{"remove tags", `[{"op":"remove","path":"/tags"}]`, false, cloudimage.EFORBIDDEN, "Property tags may not be removed."},
		{"v2.0 add existing attribute", `[{"add":"/name","value":"x"}]`, true, cloudimage.ECONFLICT,
			"Property name already present."},
		{"v2.0 add existing property", `[{"add":"/keep","value":"x"}]`, true, cloudimage.ECONFLICT,
			"Property keep already present."},
		{"v2.0 two operations", `[{"add":"/x","replace":"/y","value":"v"}]`, true, cloudimage.EINVALID,
			"Operation objects must contain only one member"},
		{"v2.0 no operation", `[{"op":"add","path":"/x","value":"v"}]`, true, cloudimage.EINVALID,
			"Operation objects must contain exactly one member"},
		{"name of the wrong type", `[{"op":"replace","path":"/name","value":5}]`, false, cloudimage.EINVALID,
			"Provided object does not match schema 'image'"},
		{"name too long", `[{"op":"replace","path":"/name","value":"` + strings.Repeat("x", 256) + `"}]`, false,
			cloudimage.EINVALID, "Provided object does not match schema 'image'"},
		{"bogus visibility", `[{"op":"replace","path":"/visibility","value":"everyone"}]`, false, cloudimage.EINVALID,
			"Provided object does not match schema"},
		{"null visibility", `[{"op":"replace","path":"/visibility","value":null}]`, false, cloudimage.EINVALID, "schema"},
		{"bogus disk_format", `[{"op":"replace","path":"/disk_format","value":"bogus"}]`, false, cloudimage.EINVALID,
			"schema"},
		{"empty container_format", `[{"op":"replace","path":"/container_format","value":""}]`, false,
			cloudimage.EINVALID, "schema"},
		{"protected as a string", `[{"op":"replace","path":"/protected","value":"true"}]`, false, cloudimage.EINVALID,
			"schema"},
		{"null os_hidden", `[{"op":"replace","path":"/os_hidden","value":null}]`, false, cloudimage.EINVALID, "schema"},
		{"fractional min_disk", `[{"op":"replace","path":"/min_disk","value":1.5}]`, false, cloudimage.EINVALID, "schema"},
		{"float min_ram", `[{"op":"replace","path":"/min_ram","value":1.0}]`, false, cloudimage.EINVALID, "schema"},
		{"huge min_ram", `[{"op":"replace","path":"/min_ram","value":1e30}]`, false, cloudimage.EINVALID, "schema"},
		{"tags not an array", `[{"op":"replace","path":"/tags","value":"a"}]`, false, cloudimage.EINVALID, "schema"},
		{"tag not a string", `[{"op":"replace","path":"/tags","value":["a",1]}]`, false, cloudimage.EINVALID, "schema"},
		{"property not a string", `[{"op":"add","path":"/x","value":1}]`, false, cloudimage.EINVALID, "schema"},
		{"null property", `[{"op":"add","path":"/x","value":null}]`, false, cloudimage.EINVALID, "schema"},
		// The body is checked whole before any operation applies.
		{"bad op after a conflict", `[{"op":"replace","path":"/nope","value":"x"},{"op":"test"}]`, false,
			cloudimage.EINVALID, "Invalid operation"},
	} {
		_, err := patch(tc.body, tc.v20)
		if cloudimage.ErrorCode(err) != tc.code || !strings.Contains(cloudimage.ErrorMessage(err), tc.msg) {
			t.Errorf("%s: %v (%s), want %s %q", tc.name, err, cloudimage.ErrorCode(err), tc.code, tc.msg)
		}
	}
}

func TestApplyPatchLeavesImage(t *testing.T) {
	img := patchTestImage()
	ops, err := parsePatch([]byte(`[{"op":"remove","path":"/keep"},{"op":"replace","path":"/tags","value":["q"]}]`), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := applyPatch(img, ops, false); err != nil {
		t.Fatal(err)
	}
	if want := patchTestImage(); img.Properties["keep"] != "k" || !slices.Equal(img.Tags, want.Tags) {
		t.Errorf("applyPatch changed the image it read: %+v", img)
	}
}

// FuzzPatch checks that any body parses or fails with a client error,
// and that what parses applies or fails the same way.
func FuzzPatch(f *testing.F) {
	for _, seed := range []string{
		`[]`, `[{"op":"replace","path":"/name","value":"x"}]`, `[{"op":"remove","path":"/keep"}]`,
		`[{"op":"add","path":"/tags","value":["a"]}]`, `[{"add":"/x","value":"y"}]`, `[{"op":"add","path":"/a~1b","value":"v"}]`,
		`[{"op":"replace","path":"/locations","value":[]}]`, `[{"op":"replace","path":"/min_disk","value":1e400}]`,
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, body string, v20 bool) {
		clientError := func(err error) bool {
			switch cloudimage.ErrorCode(err) {
			case cloudimage.EINVALID, cloudimage.EFORBIDDEN, cloudimage.ECONFLICT:
				return true
			}
			return false
		}
		ops, err := parsePatch([]byte(body), v20)
		if err != nil {
			if !clientError(err) {
				t.Fatalf("%q: %v", body, err)
			}
			return
		}
		if _, err := applyPatch(patchTestImage(), ops, v20); err != nil && !clientError(err) {
			t.Fatalf("%q: apply: %v", body, err)
		}
	})
}
