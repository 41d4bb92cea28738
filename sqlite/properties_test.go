package sqlite

import (
	"encoding/json"
	"maps"
	"testing"
)

// propertiesSeeds are stored forms of properties: what json.Marshal
// writes, and texts that only json.Unmarshal reads.
var propertiesSeeds = []string{
	`{}`, `{"os_type":"linux"}`, `{"a":"","b":"x y","c":"é✓"}`,
	`{"html":"\u003cb\u003e \u0026"}`, `{"q":"say \"hi\"","nl":"a\nb"}`, `{"bad":"\ufffd"}`,
	`{ "spaced" : "x" }`, `null`, `{"a":"b",}`, `{"a":"b"`, `{"a":1}`, `{"a":"b"}x`,
	`{"a":"b""c":"d"}`, `{"a"}`, `{"a":"b","a":"c"}`, `{"k":"v",`, `{,}`, "{\"t\":\"a\tb\"}",
	"{\"x\":\"\xff\"}", `[]`, ``, `{"a":"b"}}`,
}

// FuzzDecodeProperties checks that decodeProperties decodes any text as
// json.Unmarshal into a map of strings does: the same map, or an error
// where it has one.
func FuzzDecodeProperties(f *testing.F) {
	for _, s := range propertiesSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want map[string]string
		wantErr := json.Unmarshal([]byte(s), &want)
		got, err := decodeProperties(s)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("decodeProperties(%q): error %v, json.Unmarshal's %v", s, err, wantErr)
		}
		if err == nil && (!maps.Equal(got, want) || (got == nil) != (want == nil)) {
			t.Fatalf("decodeProperties(%q) = %#v, json.Unmarshal's %#v", s, got, want)
		}
	})
}

// TestPlainProperties checks that what json.Marshal writes of plain
// properties takes the direct path, and that what needs unescaping or is
// not json.Marshal's form does not.
func TestPlainProperties(t *testing.T) {
	for _, props := range []map[string]string{
		{}, {"os_type": "linux"}, {"a": "", "b": "x y", "c": "é✓", "d": "{:,}"},
	} {
		b, err := json.Marshal(props)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := plainProperties(string(b))
		if !ok || !maps.Equal(got, props) {
			t.Errorf("plainProperties(%s) = %v, %v; want %v, true", b, got, ok, props)
		}
	}
	for _, s := range []string{
		`{"html":"\u003cb\u003e"}`, `{"q":"say \"hi\""}`, `{ "spaced" : "x" }`, `null`,
		`{"a":"b",}`, `{"a":1}`, `{"a":"b"}x`, `{"a":"b""c":"d"}`, "{\"x\":\"\xff\"}", "{\"t\":\"a\tb\"}",
	} {
		if m, ok := plainProperties(s); ok {
			t.Errorf("plainProperties(%q) = %v, true; want false", s, m)
		}
	}
}

// BenchmarkDecodeProperties measures decoding typical stored properties,
// directly and through json.Unmarshal.
func BenchmarkDecodeProperties(b *testing.B) {
	props, err := json.Marshal(map[string]string{
		"os_type": "linux", "os_distro": "ubuntu", "os_version": "24.04", "hw_disk_bus": "virtio",
	})
	if err != nil {
		b.Fatal(err)
	}
	s := string(props)
	b.Run("Direct", func(b *testing.B) {
		for b.Loop() {
			if m, err := decodeProperties(s); err != nil || len(m) != 4 {
				b.Fatal(m, err)
			}
		}
	})
	b.Run("Unmarshal", func(b *testing.B) {
		for b.Loop() {
			var m map[string]string
			if err := json.Unmarshal([]byte(s), &m); err != nil || len(m) != 4 {
				b.Fatal(m, err)
			}
		}
	})
}
