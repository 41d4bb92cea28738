package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/cloudimage/cloudimage"
)

// PATCH /v2/images/{id}: Glance's two JSON-patch media types. Paths are
// one level deep, an attribute or an extra property, and the operations
// are Glance's rather than RFC 6902's in full: no test, move or copy, and
// no paths into values (/tags/0). The patch is applied to the image as it
// is, and what changed becomes one ImageUpdate.

// The media types of a PATCH body. Glance's v2.0 form names the operation
// by its key: {"replace": "/name", "value": "x"}.
const (
	patchMediaV20 = "application/openstack-images-v2.0-json-patch"
	patchMediaV21 = "application/openstack-images-v2.1-json-patch"
)

// patchOp is one checked operation of a PATCH body.
type patchOp struct {
	op    string // add, replace or remove
	path  string // the attribute or property the pointer names
	value any    // the value, of the attribute's type; nil for remove
	depth int    // how many tokens the pointer had
}

// patchAttributes are the attributes a PATCH may set, with the kind of
// value each takes.
var patchAttributes = map[string]string{
	"name": "name", "visibility": "visibility", "protected": "bool", "os_hidden": "bool",
	"disk_format": "disk_format", "container_format": "container_format",
	"min_disk": "int", "min_ram": "int", "tags": "tags",
}

// patchReadOnly reports whether a PATCH may never touch key: the
// attributes create refuses, and the ID.
func patchReadOnly(key string) bool {
	return readOnlyAttributes[key] || key == "id"
}

// patchReserved reports whether key names no property a caller may set:
// the service's reserved names and Glance's os_glance namespace.
func patchReserved(key string) bool {
	return strings.HasPrefix(key, "os_glance") ||
		key != "locations" && patchAttributes[key] == "" && slices.Contains(cloudimage.ReservedProperties, key)
}

// readPatch reads and checks a PATCH request's body, as Glance's
// deserializer does before it looks at the image: the media type, the
// operations' shape, their paths and their values' types.
func readPatch(w http.ResponseWriter, r *http.Request) (ops []patchOp, v20 bool, err error) {
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	if mt != patchMediaV20 && mt != patchMediaV21 {
		w.Header().Set("Accept-Patch", patchMediaV20+", "+patchMediaV21)
		return nil, false, errStatus(http.StatusUnsupportedMediaType,
			"The request media type %s is not supported by this server.", ct)
	}
	body, err := io.ReadAll(limitedBody(w, r))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, false, cloudimage.Errorf(cloudimage.ETOOLARGE,
				"request body is larger than %d bytes", maxBodyBytes)
		}
		return nil, false, invalidf("Error reading request body.")
	}
	ops, err = parsePatch(body, mt == patchMediaV20)
	return ops, mt == patchMediaV20, err
}

// parsePatch parses a PATCH body in the v2.1 form, or the v2.0 one.
func parsePatch(body []byte, v20 bool) ([]patchOp, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, invalidf("Body expected in request.")
	}
	if !utf8.Valid(body) {
		return nil, invalidf("Malformed JSON in request body: it is not UTF-8.")
	}
	var raw any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil || trailingData(dec) {
		return nil, invalidf("Malformed JSON in request body.")
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, invalidf("Request body must be a JSON array of operation objects.")
	}
	ops := make([]patchOp, 0, len(list))
	for _, item := range list {
		change, ok := item.(map[string]any)
		if !ok {
			return nil, invalidf("Operations must be JSON objects.")
		}
		op, err := parseChange(change, v20)
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
	return ops, nil
}

var patchOperations = []string{"add", "remove", "replace"}

// parseChange checks one operation object.
func parseChange(change map[string]any, v20 bool) (patchOp, error) {
	var op patchOp
	var pointer any
	if v20 {
		for _, name := range patchOperations {
			if _, ok := change[name]; ok {
				if op.op != "" {
					return op, cloudimage.Errorf(cloudimage.EINVALID,
						`Operation objects must contain only one member named "add", "remove", or "replace".`)
				}
				op.op, pointer = name, change[name]
			}
		}
		if op.op == "" {
			return op, cloudimage.Errorf(cloudimage.EINVALID,
				`Operation objects must contain exactly one member named "add", "remove", or "replace".`)
		}
	} else {
		name, ok := change["op"]
		if !ok {
			return op, cloudimage.Errorf(cloudimage.EINVALID,
				"Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace.")
		}
		if op.op, _ = name.(string); !slices.Contains(patchOperations, op.op) {
			return op, cloudimage.Errorf(cloudimage.EINVALID,
				"Invalid operation: `%v`. It must be one of the following: add, remove, replace.", name)
		}
		if pointer, ok = change["path"]; !ok {
			return op, invalidf("Unable to find 'path' in JSON Schema change")
		}
	}
	p, ok := pointer.(string)
	if !ok {
		return op, invalidf("Pointer `%v` is not a string.", pointer)
	}
	tokens, err := decodePointer(p)
	if err != nil {
		return op, err
	}
	op.path, op.depth = tokens[0], len(tokens)
	if want := pointerDepth(op.op, op.path); op.depth != want {
		return op, invalidf("Invalid JSON pointer for this resource: '/%s'",
			strings.Join(tokens, "/"))
	}
	if op.op != "remove" {
		v, ok := change["value"]
		if !ok {
			return op, invalidf(`Operation "%s" requires a member named "value".`, op.op)
		}
		op.value = v
	}
	switch {
	case patchReadOnly(op.path):
		return op, cloudimage.Errorf(cloudimage.EFORBIDDEN, "Attribute '%s' is read-only.", op.path)
	case patchReserved(op.path):
		return op, cloudimage.Errorf(cloudimage.EFORBIDDEN, "Attribute '%s' is reserved.", op.path)
	case op.op == "remove" || op.path == "locations":
		return op, nil
	}
	op.value, err = patchValue(op.path, op.value)
	return op, err
}

// pointerDepth is how many tokens a pointer to path must have: locations
// are added and removed by position (/locations/0), all else is one level.
func pointerDepth(op, path string) int {
	if path == "locations" && op != "replace" {
		return 2
	}
	return 1
}

var (
	adjacentSlashes = regexp.MustCompile(`/\s*/`)
	badEscape       = regexp.MustCompile(`~[^01]|~$`)
)

// decodePointer splits a JSON pointer into its tokens, refusing the forms
// Glance refuses.
func decodePointer(p string) ([]string, error) {
	bad := func(why string) error {
		return invalidf("Pointer `%s` %s", p, why)
	}
	switch {
	case !strings.HasPrefix(p, "/"):
		return nil, bad(`does not start with "/".`)
	case adjacentSlashes.MatchString(p[1:]):
		return nil, bad(`contains adjacent "/".`)
	case len(p) > 1 && strings.HasSuffix(p, "/"):
		return nil, bad(`end with "/".`)
	case badEscape.MatchString(p):
		return nil, bad(`contains "~" not part of a recognized escape sequence.`)
	}
	tokens := strings.Split(p[1:], "/")
	for i, t := range tokens {
		tokens[i] = strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~"))
	}
	return tokens, nil
}

// schemaError is Glance's answer to a value the image schema refuses.
func schemaError(format string, args ...any) error {
	return invalidf("Provided object does not match schema 'image': "+format, args...)
}

// patchValue checks v against the image schema's type for path and
// returns it as the Go type applyPatch sets: string, bool, int or
// []string.
func patchValue(path string, v any) (any, error) {
	switch kind := patchAttributes[path]; kind {
	case "name":
		if v == nil {
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return nil, schemaError("%s is not of type 'null', 'string'", jsonText(v))
		} else if utf8.RuneCountInString(s) > cloudimage.MaxNameLength {
			return nil, schemaError("%s is too long", jsonText(v))
		}
		return s, nil
	case "visibility", "disk_format", "container_format":
		allowed := map[string][]string{
			"visibility":       {"community", "public", "private", "shared"},
			"disk_format":      cloudimage.DiskFormats,
			"container_format": cloudimage.ContainerFormats,
		}[kind]
		if v == nil && kind != "visibility" {
			return "", nil
		}
		if s, ok := v.(string); ok && slices.Contains(allowed, s) {
			return s, nil
		}
		return nil, schemaError("%s is not one of %s", jsonText(v), strings.Join(allowed, ", "))
	case "bool":
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return nil, schemaError("%s is not of type 'boolean'", jsonText(v))
	case "int":
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil && i == int64(int(i)) {
				return int(i), nil
			}
		}
		return nil, schemaError("%s is not of type 'integer'", jsonText(v))
	case "tags":
		list, ok := v.([]any)
		if !ok {
			return nil, schemaError("%s is not of type 'array'", jsonText(v))
		}
		tags := make([]string, len(list))
		for i, t := range list {
			s, ok := t.(string)
			if !ok {
				return nil, schemaError("%s is not of type 'string'", jsonText(t))
			} else if utf8.RuneCountInString(s) > cloudimage.MaxTagLength {
				return nil, schemaError("%s is too long", jsonText(t))
			}
			tags[i] = s
		}
		return tags, nil
	}
	s, ok := v.(string)
	if !ok {
		return nil, schemaError("%s is not of type 'string'", jsonText(v))
	}
	return s, nil
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// patchState is what a patch changes of an image, as it is being applied.
type patchState struct {
	attrs map[string]any // by attribute name, of patchValue's types
	props map[string]string
}

func newPatchState(img *cloudimage.Image) *patchState {
	return &patchState{
		attrs: map[string]any{
			"name": img.Name, "visibility": string(img.Visibility), "protected": img.Protected,
			"os_hidden": img.Hidden, "disk_format": img.DiskFormat, "container_format": img.ContainerFormat,
			"min_disk": img.MinDisk, "min_ram": img.MinRAM, "tags": normalTags(img.Tags),
		},
		props: maps.Clone(img.Properties),
	}
}

// normalTags returns tags as a set: sorted, each once, never nil.
func normalTags(tags []string) []string {
	out := slices.Clone(tags)
	slices.Sort(out)
	return append([]string{}, slices.Compact(out)...)
}

// applyPatch applies ops to img in order, as Glance's controller does,
// and returns what changed. In the v2.0 form, adding what exists is a
// conflict; in v2.1 it sets it.
func applyPatch(img *cloudimage.Image, ops []patchOp, v20 bool) (cloudimage.ImageUpdate, error) {
	st := newPatchState(img)
	if st.props == nil {
		st.props = map[string]string{}
	}
	for _, op := range ops {
		if err := st.apply(op, v20); err != nil {
			return cloudimage.ImageUpdate{}, err
		}
	}
	return st.update(img), nil
}

func (st *patchState) apply(op patchOp, v20 bool) error {
	if op.path == "locations" {
		return locationsRefused(op)
	}
	_, isAttr := st.attrs[op.path]
	_, isProp := st.props[op.path]
	switch op.op {
	case "add":
		if v20 && (isAttr || isProp) {
			return cloudimage.Errorf(cloudimage.ECONFLICT, "Property %s already present.", op.path)
		}
	case "replace":
		if !isAttr && !isProp {
			return cloudimage.Errorf(cloudimage.ECONFLICT, "Property %s does not exist.", op.path)
		}
	case "remove":
		switch {
		case isAttr:
			return cloudimage.Errorf(cloudimage.EFORBIDDEN, "Property %s may not be removed.", op.path)
		case !isProp:
			return cloudimage.Errorf(cloudimage.ECONFLICT, "Property %s does not exist.", op.path)
		}
		delete(st.props, op.path)
		return nil
	}
	if isAttr {
		if op.path == "tags" {
			st.attrs[op.path] = normalTags(op.value.([]string))
		} else {
			st.attrs[op.path] = op.value
		}
	} else {
		st.props[op.path] = op.value.(string)
	}
	return nil
}

// locationsRefused answers an operation on locations, which this server
// keeps to itself, as Glance does when it shows no locations.
func locationsRefused(op patchOp) error {
	switch {
	case op.op == "add":
		return cloudimage.Errorf(cloudimage.EFORBIDDEN,
			"It's not allowed to add locations if locations are invisible.")
	case op.op == "remove":
		return cloudimage.Errorf(cloudimage.EFORBIDDEN,
			"It's not allowed to remove locations if locations are invisible.")
	case op.value == nil || fmt.Sprint(op.value) == "[]":
		return cloudimage.Errorf(cloudimage.EFORBIDDEN, "Cannot set locations to empty list.")
	}
	return cloudimage.Errorf(cloudimage.EFORBIDDEN,
		"It's not allowed to update locations if locations are invisible.")
}

// update returns the fields of st that differ from img.
func (st *patchState) update(img *cloudimage.Image) cloudimage.ImageUpdate {
	var u cloudimage.ImageUpdate
	was := newPatchState(img)
	changed := func(name string) bool {
		return st.attrs[name] != was.attrs[name]
	}
	str := func(name string) *string {
		s := st.attrs[name].(string)
		return &s
	}
	if changed("name") {
		u.Name = str("name")
	}
	if changed("visibility") {
		v := cloudimage.Visibility(st.attrs["visibility"].(string))
		u.Visibility = &v
	}
	if changed("protected") {
		b := st.attrs["protected"].(bool)
		u.Protected = &b
	}
	if changed("os_hidden") {
		b := st.attrs["os_hidden"].(bool)
		u.Hidden = &b
	}
	if changed("disk_format") {
		u.DiskFormat = str("disk_format")
	}
	if changed("container_format") {
		u.ContainerFormat = str("container_format")
	}
	if changed("min_disk") {
		n := st.attrs["min_disk"].(int)
		u.MinDisk = &n
	}
	if changed("min_ram") {
		n := st.attrs["min_ram"].(int)
		u.MinRAM = &n
	}
	if tags := st.attrs["tags"].([]string); !slices.Equal(tags, was.attrs["tags"].([]string)) {
		u.Tags = tags
	}
	for _, k := range slices.Sorted(maps.Keys(st.props)) {
		if old, ok := img.Properties[k]; !ok || old != st.props[k] {
			if u.SetProperties == nil {
				u.SetProperties = map[string]string{}
			}
			u.SetProperties[k] = st.props[k]
		}
	}
	for _, k := range slices.Sorted(maps.Keys(img.Properties)) {
		if _, ok := st.props[k]; !ok {
			u.RemoveProperties = append(u.RemoveProperties, k)
		}
	}
	return u
}

// updateImage applies a PATCH and answers with the whole image.
func (s *Server) updateImage(w http.ResponseWriter, r *http.Request, c *cloudimage.Caller) error {
	ops, v20, err := readPatch(w, r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	img, err := s.images.Get(r.Context(), c, id)
	if err != nil {
		return err
	}
	if len(ops) > 0 {
		upd, err := applyPatch(img, ops, v20)
		if err != nil {
			return err
		}
		if img, err = s.images.Update(r.Context(), c, id, upd); err != nil {
			return err
		}
	}
	writeV2Image(w, http.StatusOK, img)
	return nil
}
