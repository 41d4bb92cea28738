package httpapi

import (
	"embed"
	"encoding/json"
	"net/http"
	"slices"

	"github.com/cloudimage/cloudimage"
)

// The JSON schemas of /v2/schemas: what the image API's objects look like,
// as Glance publishes them. Clients read them; the glance CLI validates
// the images it is sent against the image schema, so the schema must
// allow everything v2Image emits. The item schemas are embedded files;
// the collections are built around them here, so the two cannot disagree.

//go:embed schemas
var schemaFiles embed.FS

// schemaDocs are the schema bodies by their path under /v2/schemas/.
var schemaDocs = buildSchemas()

func (s *Server) schemaRoutes(mux *routeMux) {
	for name, doc := range schemaDocs {
		serve := func(w http.ResponseWriter, _ *http.Request, _ *cloudimage.Caller) error {
			w.Header().Set("Content-Type", "application/json; charset=UTF-8")
			_, _ = w.Write(doc) // once begun, an answer has no one to report to
			return nil
		}
		mux.Handle("GET /v2/schemas/"+name, s.image(serve))
	}
}

// loadSchema reads an embedded item schema. The files are part of the
// program, so a bad one is a bug that every test run shows.
func loadSchema(name string) map[string]any {
	b, err := schemaFiles.ReadFile("schemas/" + name + ".json")
	if err != nil {
		panic(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		panic("httpapi: schema " + name + ": " + err.Error())
	}
	return doc
}

// collectionSchema describes a list of items under key name, with Glance's
// first, next and schema links.
func collectionSchema(name string, item map[string]any) map[string]any {
	return collectionOf(name, map[string]any{"type": "array", "items": item})
}

// dictCollectionSchema describes items keyed by their name.
func dictCollectionSchema(name string, item map[string]any) map[string]any {
	return collectionOf(name, map[string]any{"type": "object", "additionalProperties": item})
}

func collectionOf(name string, items map[string]any) map[string]any {
	return map[string]any{
		"name": name,
		"properties": map[string]any{
			name:     items,
			"first":  map[string]any{"type": "string"},
			"next":   map[string]any{"type": "string"},
			"schema": map[string]any{"type": "string"},
		},
		"links": []any{
			map[string]any{"rel": "first", "href": "{first}"},
			map[string]any{"rel": "next", "href": "{next}"},
			map[string]any{"rel": "describedby", "href": "{schema}"},
		},
	}
}

// nullableEnum is a format list as a schema enum that also allows null.
func nullableEnum(values []string) []any {
	out := []any{nil}
	for _, v := range values {
		out = append(out, v)
	}
	return out
}

func buildSchemas() map[string][]byte {
	image := loadSchema("image")
	props := image["properties"].(map[string]any)
	props["disk_format"].(map[string]any)["enum"] = nullableEnum(cloudimage.DiskFormats)
	props["container_format"].(map[string]any)["enum"] = nullableEnum(cloudimage.ContainerFormats)
	member := loadSchema("member")
	namespace := loadSchema("metadefs/namespace")
	resourceType := loadSchema("metadefs/resource_type")
	object := loadSchema("metadefs/object")
	tag := loadSchema("metadefs/tag")
	property := loadSchema("metadefs/property")
	// In a collection, a property's name is its key, not a field it must have.
	namedProperty := loadSchema("metadefs/property")
	namedProperty["required"] = slices.DeleteFunc(namedProperty["required"].([]any),
		func(v any) bool { return v == "name" })

	docs := map[string]map[string]any{
		"image":                   image,
		"images":                  collectionSchema("images", image),
		"member":                  member,
		"members":                 collectionSchema("members", member),
		"metadefs/namespace":      namespace,
		"metadefs/namespaces":     collectionSchema("namespaces", namespace),
		"metadefs/resource_type":  resourceType,
		"metadefs/resource_types": collectionSchema("resource_type_associations", resourceType),
		"metadefs/object":         object,
		"metadefs/objects":        collectionSchema("objects", object),
		"metadefs/property":       property,
		"metadefs/properties":     dictCollectionSchema("properties", namedProperty),
		"metadefs/tag":            tag,
		"metadefs/tags":           collectionSchema("tags", tag),
	}
	out := make(map[string][]byte, len(docs))
	for name, doc := range docs {
		b, err := json.Marshal(doc)
		if err != nil {
			panic(err)
		}
		out[name] = append(b, '\n')
	}
	return out
}
