package httpapi

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
)

const testUUID = "0b8e1c5a-3f1d-4c1e-9a53-6d2f4e7b9c10"

func TestParseNHNList(t *testing.T) {
	for _, tc := range []struct {
		raw    string
		limit  int
		marker string
	}{
		{"", -1, ""},
		{"limit=0", 0, ""},
		{"limit=100", 100, ""},
		{"limit=007", 7, ""},
		{"limit=2147483647", 2147483647, ""},
		// Past any catalog's size: no limit, as digest §7 #3 wants no maximum.
		{"limit=2147483648", 2147483647, ""},
		{"limit=99999999999999999999", 2147483647, ""},
		{"marker=" + testUUID, -1, testUUID},
		{"marker=" + strings.ToUpper(testUUID), -1, testUUID},
		{"limit=5&marker=" + testUUID, 5, testUUID},
		{"marker=" + testUUID + "&limit=5", 5, testUUID},
		{"unknown=1&id=x", -1, ""},
		{"limit=%31%32", 12, ""},
	} {
		opts, err := parseNHNList(tc.raw)
		if err != nil {
			t.Errorf("parseNHNList(%q): %v", tc.raw, err)
			continue
		}
		if opts.Limit != tc.limit || opts.Marker != tc.marker {
			t.Errorf("parseNHNList(%q) = %+v, want limit %d marker %q", tc.raw, opts, tc.limit, tc.marker)
		}
	}
}

func TestParseNHNListInvalid(t *testing.T) {
	for _, raw := range []string{
		"limit=abc",
		"limit=-1",
		"limit=1.5",
		"limit=",
		"limit",
		"limit=+1",
		"limit=%20%31",
		"limit=0x10",
		"limit=1e2",
		"limit=1&limit=1",
		"marker=",
		"marker=abc",
		"marker=" + testUUID + "&marker=" + testUUID,
		"marker=" + strings.ReplaceAll(testUUID, "-", ""),
		"marker={" + testUUID + "}",
		"marker=urn:uuid:" + testUUID,
		"marker=" + testUUID[:35] + "g",
		"marker=" + testUUID + " ",
		"limit=%zz",
		"limit=1;marker=x",
		"%",
	} {
		_, err := parseNHNList(raw)
		var ne *nhnError
		if !errors.As(err, &ne) || ne.code != resultInvalidParam {
			t.Errorf("parseNHNList(%q) = %v, want an invalid-parameter error (-4)", raw, err)
		}
	}
}

func FuzzParseNHNList(f *testing.F) {
	for _, seed := range []string{
		"", "limit=0", "limit=10", "limit=-1", "limit=abc", "limit=1.5", "limit=4294967296",
		"limit=2147483647", "limit=1&limit=2", "marker=" + testUUID,
		"marker=" + strings.ToUpper(testUUID), "marker={" + testUUID + "}",
		"limit=3&marker=" + testUUID, "marker=", "limit=%zz", "a;b", "limit=%2B1",
		"marker=" + strings.ReplaceAll(testUUID, "-", ""), "&&&=&", "limit=0&marker=" + testUUID,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		opts, err := parseNHNList(raw)
		if err != nil {
			var ne *nhnError
			if !errors.As(err, &ne) || ne.code != resultInvalidParam {
				t.Fatalf("parseNHNList(%q): error %v is not an invalid-parameter error", raw, err)
			}
			return
		}
		if opts.Limit < -1 {
			t.Fatalf("parseNHNList(%q): limit %d", raw, opts.Limit)
		}
		if opts.Marker != "" {
			u, err := uuid.Parse(opts.Marker)
			if err != nil || u.String() != opts.Marker {
				t.Fatalf("parseNHNList(%q): marker %q is not a canonical UUID", raw, opts.Marker)
			}
		}
		// What was accepted is what the query says.
		q, err := url.ParseQuery(raw)
		if err != nil {
			t.Fatalf("parseNHNList(%q) accepted a query url.ParseQuery refuses: %v", raw, err)
		}
		if q.Has("limit") != (opts.Limit >= 0) {
			t.Fatalf("parseNHNList(%q): limit %d, but limit given is %v", raw, opts.Limit, q.Has("limit"))
		}
		if q.Has("marker") != (opts.Marker != "") ||
			(opts.Marker != "" && !strings.EqualFold(q.Get("marker"), opts.Marker)) {
			t.Fatalf("parseNHNList(%q): marker %q, query has %q", raw, opts.Marker, q["marker"])
		}
	})
}
