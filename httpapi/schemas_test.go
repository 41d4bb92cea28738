package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cloudimage/cloudimage"
)

// validate checks v against schema, for the part of JSON Schema the
// server's schemas use, and returns the first violation. v is decoded
// with UseNumber. A keyword it does not know is itself a violation, so
// that a schema cannot say more than this test checks.
func validate(schema map[string]any, v any, at string) error {
	for k := range schema {
		if !slices.Contains([]string{"type", "enum", "properties", "additionalProperties", "items", "maxLength",
			"minLength", "minimum", "pattern", "required", "description", "readOnly", "is_base", "name", "links",
			"default"}, k) {
			return fmt.Errorf("%s: schema keyword %q is not checked here", at, k)
		}
	}
	if types, ok := schema["type"]; ok {
		var list []any
		if s, ok := types.(string); ok {
			list = []any{s}
		} else {
			list = types.([]any)
		}
		if !slices.ContainsFunc(list, func(t any) bool { return isType(v, t.(string)) }) {
			return fmt.Errorf("%s: %s is not of type %v", at, jsonOf(v), list)
		}
	}
	if enum, ok := schema["enum"].([]any); ok {
		if !slices.ContainsFunc(enum, func(e any) bool { return jsonOf(e) == jsonOf(v) }) {
			return fmt.Errorf("%s: %s is not one of %v", at, jsonOf(v), enum)
		}
	}
	switch v := v.(type) {
	case string:
		n := utf8.RuneCountInString(v)
		if max, ok := schema["maxLength"].(float64); ok && n > int(max) {
			return fmt.Errorf("%s: %q is longer than %v", at, v, max)
		}
		if min, ok := schema["minLength"].(float64); ok && n < int(min) {
			return fmt.Errorf("%s: %q is shorter than %v", at, v, min)
		}
		if p, ok := schema["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(v) {
			return fmt.Errorf("%s: %q does not match %s", at, v, p)
		}
	case json.Number:
		if min, ok := schema["minimum"].(float64); ok {
			if f, _ := v.Float64(); f < min {
				return fmt.Errorf("%s: %s is below %v", at, v, min)
			}
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, item := range v {
				if err := validate(items, item, fmt.Sprintf("%s[%d]", at, i)); err != nil {
					return err
				}
			}
		}
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		required, _ := schema["required"].([]any)
		for _, r := range required {
			if _, ok := v[r.(string)]; !ok {
				return fmt.Errorf("%s: %s is required", at, r)
			}
		}
		for k, val := range v {
			sub, declared := props[k].(map[string]any)
			if !declared {
				switch extra := schema["additionalProperties"].(type) {
				case bool:
					if !extra {
						return fmt.Errorf("%s: %q is not allowed", at, k)
					}
					continue
				case map[string]any:
					sub = extra
				default:
					continue
				}
			}
			if err := validate(sub, val, at+"."+k); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkKeywords walks a schema and its subschemas and refuses a keyword
// or type validate does not know.
func checkKeywords(schema map[string]any, at string) error {
	if types, ok := schema["type"]; ok {
		list, ok := types.([]any)
		if !ok {
			list = []any{types}
		}
		for _, t := range list {
			if !slices.Contains([]any{"null", "string", "boolean", "integer", "number", "array", "object"}, t) {
				return fmt.Errorf("%s: unknown type %v", at, t)
			}
		}
	}
	// A value validate ignores runs through it without a violation
	// unless a keyword is unknown.
	if err := validate(schema, nil, at); err != nil && !strings.Contains(err.Error(), "is not of type") &&
		!strings.Contains(err.Error(), "is not one of") {
		return err
	}
	props, _ := schema["properties"].(map[string]any)
	for k, sub := range props {
		if err := checkKeywords(sub.(map[string]any), at+"."+k); err != nil {
			return err
		}
	}
	for _, key := range []string{"items", "additionalProperties"} {
		if sub, ok := schema[key].(map[string]any); ok {
			if err := checkKeywords(sub, at+"["+key+"]"); err != nil {
				return err
			}
		}
	}
	return nil
}

func isType(v any, t string) bool {
	switch t {
	case "null":
		return v == nil
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		_, err := n.Int64()
		return ok && err == nil
	case "number":
		_, ok := v.(json.Number)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	}
	panic("unknown type " + t)
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// getSchema fetches /v2/schemas/name. Numbers in a schema are keywords'
// arguments, decoded as float64.
func (e *env) getSchema(t *testing.T, token, name string) map[string]any {
	t.Helper()
	status, hdr, b := e.call(t, "GET", "/v2/schemas/"+name, token, "")
	if status != http.StatusOK {
		t.Fatalf("GET /v2/schemas/%s: %d; body %q", name, status, b)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("schema %s: Content-Type %q", name, ct)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("schema %s: %v", name, err)
	}
	return s
}

// decodeAny decodes a response body with numbers kept as json.Number.
func decodeAny(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}

// TestSchemaNames checks every schema Tempest reads and the name it
// expects (tempest.api.image.v2 test_images, test_images_member,
// test_images_metadefs_schema).
func TestSchemaNames(t *testing.T) {
	e := newEnv(t)
	member := e.token(t, e.a, cloudimage.RoleMember)
	for path, name := range map[string]string{
		"image": "image", "images": "images", "member": "member", "members": "members",
		"metadefs/namespace": "namespace", "metadefs/namespaces": "namespaces",
		"metadefs/resource_type": "resource_type_association", "metadefs/resource_types": "resource_type_associations",
		"metadefs/object": "object", "metadefs/objects": "objects",
		"metadefs/property": "property", "metadefs/properties": "properties",
		"metadefs/tag": "tag", "metadefs/tags": "tags",
	} {
		s := e.getSchema(t, member, path)
		if s["name"] != name {
			t.Errorf("schema %s: name %v, want %s", path, s["name"], name)
		}
		if _, ok := s["properties"].(map[string]any); !ok {
			t.Errorf("schema %s has no properties", path)
		}
		if err := checkKeywords(s, path); err != nil {
			t.Errorf("schema %s: %v", path, err)
		}
		if status, _, _ := e.call(t, "GET", "/v2/schemas/"+path, "", ""); status != http.StatusUnauthorized {
			t.Errorf("schema %s without a token: %d, want 401", path, status)
		}
	}
	if status, _, _ := e.call(t, "GET", "/v2/schemas/nothing", member, ""); status != http.StatusNotFound {
		t.Errorf("unknown schema: %d, want 404", status)
	}
	if status, _, _ := e.call(t, "PUT", "/v2/schemas/image", member, "{}"); status != http.StatusMethodNotAllowed {
		t.Errorf("PUT a schema: %d, want 405", status)
	}
}

// TestSchemasDescribeResponses validates real answers of the server
// against the schemas it publishes, so that the two cannot drift apart.
func TestSchemasDescribeResponses(t *testing.T) {
	e := newEnv(t, cloudimage.WithProfile(cloudimage.ProfileOpenStack))
	member := e.token(t, e.a, cloudimage.RoleMember)
	adminB := e.token(t, e.b, cloudimage.RoleAdmin)
	imageSchema := e.getSchema(t, member, "image")
	imagesSchema := e.getSchema(t, member, "images")

	// Images in every shape the server gives: no formats and no name,
	// queued, active, hidden, protected, community, with properties.
	bare := e.createImage(t, member, map[string]any{})["id"].(string)
	queued := e.osImage(t, member, map[string]any{"name": "q", "disk_format": "qcow2", "container_format": "bare",
		"tags": []string{"a", "b"}, "os_distro": "ubuntu", "description": "", "min_disk": 3, "min_ram": 512})
	active := e.osImage(t, member, map[string]any{"name": "a", "disk_format": "raw", "container_format": "bare",
		"os_hidden": true, "protected": true, "kernel_id": "not-a-uuid"})
	e.upload(t, member, active, testData(2000))
	community := e.osImage(t, member, map[string]any{"name": strings.Repeat("n", 255), "visibility": "community"})
	public := e.osImage(t, adminB, map[string]any{"name": "p", "visibility": "public"})
	ids := []string{bare, queued, active, community, public}

	props := imageSchema["properties"].(map[string]any)
	for _, id := range ids {
		_, _, b := e.call(t, "GET", "/v2/images/"+id, member, "")
		img := decodeAny(t, b)
		if err := validate(imageSchema, img, "image"); err != nil {
			t.Errorf("image %s does not match its schema: %v\n%s", id, err, b)
		}
		// Every attribute the server emits is one the schema names.
		for k := range img.(map[string]any) {
			if _, ok := props[k]; !ok && slices.Contains(glanceKeys, k) {
				t.Errorf("attribute %s is not in the image schema", k)
			}
		}
	}
	for k := range props {
		if !slices.Contains(glanceKeys, k) && props[k].(map[string]any)["is_base"] != false {
			t.Errorf("schema property %s is never sent; mark it is_base false or drop it", k)
		}
	}
	for _, query := range []string{"limit=2", "visibility=all&member_status=all", "os_hidden=true"} {
		_, _, b := e.call(t, "GET", "/v2/images?"+query, member, "")
		if err := validate(imagesSchema, decodeAny(t, b), "images"); err != nil {
			t.Errorf("list ?%s does not match the images schema: %v\n%s", query, err, b)
		}
	}

	// The validator can fail: a wrong type, a value outside an enum, an
	// extra key that is not a string.
	_, _, b := e.call(t, "GET", "/v2/images/"+active, member, "")
	for key, bad := range map[string]any{"size": "2000", "status": "gone", "extra": json.Number("5"),
		"tags": []any{json.Number("1")}, "disk_format": "bogus", "protected": nil} {
		img := decodeAny(t, b).(map[string]any)
		img[key] = bad
		if err := validate(imageSchema, img, "image"); err == nil {
			t.Errorf("an image with %s = %v passes the schema", key, bad)
		}
	}

	// The format enums are the service's, and null.
	for key, formats := range map[string][]string{
		"disk_format": cloudimage.DiskFormats, "container_format": cloudimage.ContainerFormats,
	} {
		want := []any{nil}
		for _, f := range formats {
			want = append(want, f)
		}
		if got := props[key].(map[string]any)["enum"]; jsonOf(got) != jsonOf(want) {
			t.Errorf("%s enum %v, want %v", key, got, want)
		}
	}
	for _, s := range props["status"].(map[string]any)["enum"].([]any) {
		if !cloudimage.Status(s.(string)).Valid() {
			t.Errorf("status enum names %v, which is no status", s)
		}
	}

	// Members, shared from B to A.
	shared := e.osImage(t, adminB, map[string]any{"name": "s", "visibility": "shared"})
	status, _, b := e.call(t, "POST", "/v2/images/"+shared+"/members", adminB, `{"member":"`+e.a.ID+`"}`,
		"Content-Type", "application/json")
	if status != http.StatusOK {
		t.Fatalf("add member: %d %q", status, b)
	}
	if err := validate(e.getSchema(t, member, "member"), decodeAny(t, b), "member"); err != nil {
		t.Errorf("member does not match its schema: %v\n%s", err, b)
	}
	_, _, b = e.call(t, "GET", "/v2/images/"+shared+"/members", adminB, "")
	if err := validate(e.getSchema(t, member, "members"), decodeAny(t, b), "members"); err != nil {
		t.Errorf("members do not match their schema: %v\n%s", err, b)
	}
}
