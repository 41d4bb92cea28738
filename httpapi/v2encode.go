package httpapi

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cloudimage/cloudimage"
)

// The v2 image object is written by hand: json.Marshal of v2Image's map
// sorts its keys and reflects on every value, which made a list page of
// 100 images cost thousands of allocations. appendV2Image writes the same
// bytes (v2encode_test.go compares the two, in a table and a fuzz test).

// v2Field is one core attribute of the v2 image object: its key as
// encoding/json writes it, and how its value is written.
type v2Field struct {
	key    string
	prefix string // the key quoted, then ':'
	value  func(dst []byte, img *cloudimage.Image) []byte
}

// v2Fields are the attributes v2Image always sets, sorted as encoding/json
// sorts map keys (bytewise), so that the extra properties can be merged in.
var v2Fields = sortedV2Fields([]v2Field{
	{key: "id", value: func(dst []byte, img *cloudimage.Image) []byte {
		return appendJSONString(dst, img.ID)
	}},
	{key: "name", value: func(dst []byte, img *cloudimage.Image) []byte {
		return appendNullString(dst, img.Name)
	}},
	{key: "status", value: func(dst []byte, img *cloudimage.Image) []byte {
		return appendJSONString(dst, string(img.Status))
	}},
	{key: "visibility", value: func(dst []byte, img *cloudimage.Image) []byte {
		return appendJSONString(dst, string(img.Visibility))
	}},
	{key: "protected", value: func(dst []byte, img *cloudimage.Image) []byte {
		return strconv.AppendBool(dst, img.Protected)
	}},
	{key: "os_hidden", value: func(dst []byte, img *cloudimage.Image) []byte {
		return strconv.AppendBool(dst, img.Hidden)
	}},
	{key: "disk_format", value: func(dst []byte, img *cloudimage.Image) []byte {
		return appendNullString(dst, img.DiskFormat)
	}},
	{key: "container_format", value: func(dst []byte, img *cloudimage.Image) []byte {
		return appendNullString(dst, img.ContainerFormat)
	}},
	{key: "min_disk", value: func(dst []byte, img *cloudimage.Image) []byte {
		return strconv.AppendInt(dst, int64(img.MinDisk), 10)
	}},
	{key: "min_ram", value: func(dst []byte, img *cloudimage.Image) []byte {
		return strconv.AppendInt(dst, int64(img.MinRAM), 10)
	}},
	{key: "size", value: func(dst []byte, img *cloudimage.Image) []byte {
		return appendNullInt(dst, img.Size)
	}},
	{key: "virtual_size", value: func(dst []byte, img *cloudimage.Image) []byte {
		return appendNullInt(dst, img.VirtualSize)
	}},
	{key: "checksum", value: func(dst []byte, img *cloudimage.Image) []byte {
		return appendNullString(dst, img.Checksum)
	}},
	{key: "os_hash_algo", value: func(dst []byte, img *cloudimage.Image) []byte {
		return appendNullString(dst, img.HashAlgo)
	}},
	{key: "os_hash_value", value: func(dst []byte, img *cloudimage.Image) []byte {
		return appendNullString(dst, img.HashValue)
	}},
	{key: "owner", value: func(dst []byte, img *cloudimage.Image) []byte {
		return appendJSONString(dst, img.Owner)
	}},
	{key: "tags", value: appendV2Tags},
	{key: "created_at", value: func(dst []byte, img *cloudimage.Image) []byte {
		return append(img.CreatedAt.UTC().AppendFormat(append(dst, '"'), v2Time), '"')
	}},
	{key: "updated_at", value: func(dst []byte, img *cloudimage.Image) []byte {
		return append(img.UpdatedAt.UTC().AppendFormat(append(dst, '"'), v2Time), '"')
	}},
	{key: "self", value: func(dst []byte, img *cloudimage.Image) []byte {
		// The path's ASCII cannot join a rune of the ID, so the ID may be
		// escaped on its own.
		dst = appendJSONChars(append(dst, `"/v2/images/`...), img.ID)
		return append(dst, '"')
	}},
	{key: "file", value: func(dst []byte, img *cloudimage.Image) []byte {
		dst = appendJSONChars(append(dst, `"/v2/images/`...), img.ID)
		return append(dst, `/file"`...)
	}},
	{key: "schema", value: func(dst []byte, _ *cloudimage.Image) []byte {
		return append(dst, `"/v2/schemas/image"`...)
	}},
})

func sortedV2Fields(fields []v2Field) []v2Field {
	for i := range fields {
		fields[i].prefix = string(append(appendJSONString(nil, fields[i].key), ':'))
	}
	slices.SortFunc(fields, func(a, b v2Field) int { return strings.Compare(a.key, b.key) })
	return fields
}

func appendV2Tags(dst []byte, img *cloudimage.Image) []byte {
	dst = append(dst, '[')
	for i, t := range img.Tags {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, t)
	}
	return append(dst, ']')
}

// v2Property is an extra property of an image being written.
type v2Property struct{ key, value string }

// appendV2Image appends the JSON of v2Image(img) to dst, byte for byte
// what json.Marshal writes for it: the core attributes and the extra
// properties in one sorted run of keys, a property named like a core
// attribute left out, strings escaped as encoding/json escapes them.
func appendV2Image(dst []byte, img *cloudimage.Image) []byte {
	var room [32]v2Property // most images' properties, without an allocation
	props := room[:0]
	for k, v := range img.Properties {
		props = append(props, v2Property{k, v})
	}
	slices.SortFunc(props, func(a, b v2Property) int { return strings.Compare(a.key, b.key) })

	// Each key is written after a comma, and the first comma becomes the
	// brace: there is always a key.
	brace := len(dst)
	for _, f := range v2Fields {
		for len(props) > 0 && props[0].key < f.key {
			dst = appendJSONString(append(dst, ','), props[0].key)
			dst = appendJSONString(append(dst, ':'), props[0].value)
			props = props[1:]
		}
		if len(props) > 0 && props[0].key == f.key {
			props = props[1:] // the core attribute wins, as in v2Image
		}
		dst = f.value(append(append(dst, ','), f.prefix...), img)
	}
	for _, p := range props {
		dst = appendJSONString(append(dst, ','), p.key)
		dst = appendJSONString(append(dst, ':'), p.value)
	}
	dst[brace] = '{'
	return append(dst, '}')
}

// writeV2Image answers with the v2 image object, as writeJSON would with
// v2Image(img).
func writeV2Image(w http.ResponseWriter, status int, img *cloudimage.Image) {
	b := append(appendV2Image(make([]byte, 0, 1024), img), '\n')
	w.Header().Set("Content-Type", jsonContentType)
	w.WriteHeader(status)
	w.Write(b)
}

func appendNullString(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, "null"...)
	}
	return appendJSONString(dst, s)
}

func appendNullInt(dst []byte, n *int64) []byte {
	if n == nil {
		return append(dst, "null"...)
	}
	return strconv.AppendInt(dst, *n, 10)
}

// appendJSONString appends s as encoding/json writes a string by default.
func appendJSONString(dst []byte, s string) []byte {
	return append(appendJSONChars(append(dst, '"'), s), '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONChars appends the inside of s's JSON string as encoding/json
// writes it with HTML escaping (its default): <, > and & as \u003c and
// the like, control characters escaped, U+2028 and U+2029 escaped, and
// each byte that is not UTF-8 as \ufffd.
func appendJSONChars(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(append(dst, s[start:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(append(dst, s[start:i]...), '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(dst, s[start:]...)
}
