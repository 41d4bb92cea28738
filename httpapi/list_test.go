package httpapi

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
)

var testProfile = cloudimage.Profile{DefaultLimit: 25, MaxLimit: 1000}

func mustParseV2List(t *testing.T, raw string) *v2List {
	t.Helper()
	l, err := parseV2List(raw, testProfile)
	if err != nil {
		t.Fatalf("parseV2List(%q): %v", raw, err)
	}
	return l
}

func TestParseV2ListLimit(t *testing.T) {
	for _, tc := range []struct {
		raw   string
		limit int
	}{
		{"", 25},
		{"limit=0", 0},
		{"limit=1", 1},
		{"limit=007", 7},
		{"limit=+3", 3},
		{"limit=-0", 0},
		{"limit=%201000%20", 1000},
		{"limit=1001", 1000},
		{"limit=5000", 1000},
		{"limit=99999999999999999999999", 1000},
		{"limit=2&limit=3", 3},
	} {
		if got := mustParseV2List(t, tc.raw).opts.Limit; got != tc.limit {
			t.Errorf("%q: limit %d, want %d", tc.raw, got, tc.limit)
		}
	}
	nhn := cloudimage.ProfileNHN
	if l, err := parseV2List("", nhn); err != nil || l.opts.Limit != nhn.DefaultLimit {
		t.Errorf("nhn default limit: %v %v, want %d", l, err, nhn.DefaultLimit)
	}
}

// checkInvalid checks that parsing raw fails with EINVALID and a message
// that starts with want.
func checkInvalid(t *testing.T, raw, want string) {
	t.Helper()
	_, err := parseV2List(raw, testProfile)
	if cloudimage.ErrorCode(err) != cloudimage.EINVALID || !strings.HasPrefix(cloudimage.ErrorMessage(err), want) {
		t.Errorf("%q: %v, want EINVALID %q", raw, err, want)
	}
}

func TestParseV2ListInvalid(t *testing.T) {
	for raw, want := range map[string]string{
		"limit=-1":                    "limit param must be positive",
		"limit=-99999999999999999999": "limit param must be positive",
		"limit=abc":                   "limit param must be an integer",
		"limit=1.5":                   "limit param must be an integer",
		"limit=":                      "limit param must be an integer",
		"visibility=bogus":            "Invalid visibility value: bogus",
		"visibility=PUBLIC":           "Invalid visibility value",
		"member_status=maybe":         "Invalid status: maybe",
		"size_min=abc":                "Unable to filter on a range with a non-numeric value.",
		"size_max=1.5":                "Unable to filter on a range with a non-numeric value.",
		"protected=yes":               "Invalid value 'yes' for 'protected' filter.",
		"protected=True":              "Invalid value 'True' for 'protected' filter.",
		"os_hidden=1":                 "Invalid value '1' for 'os_hidden' filter.",
		"sort_key=bogus":              "Invalid sort key: bogus. It must be one of the following: name, status, container_format, disk_format, size, id, created_at, updated_at.",
		"sort=bogus:asc":              "Invalid sort key: bogus.",
		"sort=":                       "Invalid sort key: .",
		"sort_dir=bogus":              "Invalid sort direction: bogus",
		"sort=name:sideways":          "Invalid sort direction: sideways",
		"sort=name:asc&sort_key=name": "Old and new sorting syntax cannot be combined",
		"sort_dir=asc&sort=name":      "Old and new sorting syntax cannot be combined",
		"sort_key=name&sort_dir=asc&sort_dir=desc&sort_key=size&sort_key=id": "Number of sort dirs does not match the number of sort keys",
		"sort_dir=asc&sort_dir=desc":                                         "Number of sort dirs does not match the number of sort keys",
		"created_at=gt:yesterday":                                            `Bad "created_at" query filter format. Use ISO 8601 DateTime notation.`,
		"updated_at=2000-13-01T00:00:00Z":                                    `Bad "updated_at" query filter format.`,
		"created_at=around:2000-01-01T00:00:00Z":                             "Unable to filter on a unknown operator.",
		"changes-since=2000-01-01":                                           `The "changes-since" filter is no longer available on v2.`,
		`name=in:"a,b`:                                                       "Invalid filter value \"a,b. The quote is not closed.",
		`name=in:a"b"`:                                                       "Invalid filter value a\"b\". There is no comma before opening quotation mark.",
		`name=in:"a"b`:                                                       "Invalid filter value \"a\"b. There is no comma after closing quotation mark.",
		"name=%zz":                                                           "Malformed query string.",
	} {
		checkInvalid(t, raw, want)
	}
}

func TestParseV2ListFilters(t *testing.T) {
	l := mustParseV2List(t, "name=cirros&id=in:a,b&status=in:active,queued&container_format=bare&disk_format=eq:raw"+
		"&owner=p1&size_min=10&size_max=+20&protected=true&os_hidden=TRUE&tag=x&tag=%20y%20"+
		"&visibility=community&member_status=all&os_type=linux&marker=abc")
	f := l.opts.Filter
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"names", f.Names, []string{"cirros"}},
		{"ids", f.IDs, []string{"a", "b"}},
		{"statuses", f.Statuses, []cloudimage.Status{"active", "queued"}},
		{"container formats", f.ContainerFormats, []string{"bare"}},
		{"disk formats", f.DiskFormats, []string{"raw"}},
		{"owner", f.Owner, "p1"},
		{"size min", *f.SizeMin, int64(10)},
		{"size max", *f.SizeMax, int64(20)},
		{"protected", *f.Protected, true},
		{"hidden", *f.Hidden, true},
		{"tags", f.Tags, []string{"x", "y"}},
		{"visibility", l.opts.Visibility, cloudimage.ListCommunity},
		{"member status", l.opts.MemberStatus, cloudimage.MemberAny},
		{"marker", l.opts.Marker, "abc"},
		{"properties", l.properties, map[string]string{"os_type": "linux"}},
	} {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}

	// Nothing given: no filter, the default view.
	l = mustParseV2List(t, "")
	if fmt.Sprint(l.opts.Filter) != fmt.Sprint(cloudimage.ImageFilter{}) || l.opts.Visibility != "" ||
		l.opts.MemberStatus != "" || l.opts.Marker != "" {
		t.Errorf("empty query: %+v", l.opts)
	}
	// A marker that is a UUID is made canonical.
	id := "0B8E1C5A-3F1D-4C1E-9A53-6D2F4E7B9C10"
	if got := mustParseV2List(t, "marker="+id).opts.Marker; got != strings.ToLower(id) {
		t.Errorf("marker %q, want %q", got, strings.ToLower(id))
	}
	// An exact size is a range of one; a size that is no number, an empty one.
	l = mustParseV2List(t, "size=1024&size_min=5")
	if *l.opts.Filter.SizeMin != 1024 || *l.opts.Filter.SizeMax != 1024 {
		t.Errorf("size=1024: range %d..%d", *l.opts.Filter.SizeMin, *l.opts.Filter.SizeMax)
	}
	l = mustParseV2List(t, "size=big")
	if *l.opts.Filter.SizeMin <= *l.opts.Filter.SizeMax {
		t.Errorf("size=big: range %d..%d matches images", *l.opts.Filter.SizeMin, *l.opts.Filter.SizeMax)
	}
	// The last of a repeated single-valued parameter counts, as in Glance.
	if got := mustParseV2List(t, "name=a&name=b").opts.Filter.Names; !slices.Equal(got, []string{"b"}) {
		t.Errorf("name=a&name=b: names %v, want [b]", got)
	}
	// A value with a colon that is no operator is the value itself.
	if got := mustParseV2List(t, "name=ubuntu:22.04").opts.Filter.Names; !slices.Equal(got, []string{"ubuntu:22.04"}) {
		t.Errorf("name=ubuntu:22.04: names %v", got)
	}
}

// filterJSON renders a filter with its pointers followed.
func filterJSON(f cloudimage.ImageFilter) string {
	b, _ := json.Marshal(f)
	return string(b)
}

func TestSplitInValues(t *testing.T) {
	for in, want := range map[string][]string{
		`a,b,c`:         {"a", "b", "c"},
		`a`:             {"a"},
		`"a,b",c`:       {"a,b", "c"},
		`c,"a,b"`:       {"c", "a,b"},
		`"x"`:           {"x"},
		`"say \"hi\""`:  {`say "hi"`},
		`"back\\slash"`: {`back\slash`},
		`a,,b`:          {"a", "", "b"},
		`,a`:            {"", "a"},
		`a,`:            {"a"},
		`""`:            {""},
		``:              {},
		`a\"b`:          {`a\"b`},
	} {
		got, err := splitInValues(in)
		if err != nil || !slices.Equal(got, want) || got == nil {
			t.Errorf("splitInValues(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestParseV2ListTimes(t *testing.T) {
	ts := time.Date(2000, 1, 2, 3, 4, 5, 0, time.UTC)
	l := mustParseV2List(t, "created_at="+url.QueryEscape("gt:2000-01-02T03:04:05Z")+
		"&created_at="+url.QueryEscape("lte:2000-01-02T04:04:05+01:00")+
		"&updated_at=2000-01-02T03:04:05Z&updated_at=neq:2000-01-02T03:04:05&updated_at=lt:2000-01-02")
	want := []cloudimage.TimeFilter{{Op: cloudimage.OpGt, Time: ts}, {Op: cloudimage.OpLte, Time: ts}}
	if !slices.Equal(l.opts.Filter.CreatedAt, want) {
		t.Errorf("created_at filters %v, want %v", l.opts.Filter.CreatedAt, want)
	}
	want = []cloudimage.TimeFilter{{Op: cloudimage.OpEq, Time: ts}, {Op: cloudimage.OpNeq, Time: ts},
		{Op: cloudimage.OpLt, Time: time.Date(2000, 1, 2, 0, 0, 0, 0, time.UTC)}}
	if !slices.Equal(l.opts.Filter.UpdatedAt, want) {
		t.Errorf("updated_at filters %v, want %v", l.opts.Filter.UpdatedAt, want)
	}
}

func TestParseV2ListSort(t *testing.T) {
	s := func(k cloudimage.SortKey, desc bool) cloudimage.Sort { return cloudimage.Sort{Key: k, Desc: desc} }
	const asc, desc = false, true
	for _, tc := range []struct {
		raw  string
		want []cloudimage.Sort
	}{
		{"", cloudimage.DefaultSort},
		{"sort_key=name", []cloudimage.Sort{s("name", desc), s("created_at", desc), s("id", desc)}},
		{"sort_key=name&sort_dir=asc", []cloudimage.Sort{s("name", asc), s("created_at", asc), s("id", asc)}},
		{"sort_dir=asc", []cloudimage.Sort{s("created_at", asc), s("id", asc)}},
		{"sort_key=name&sort_key=size&sort_dir=asc",
			[]cloudimage.Sort{s("name", asc), s("size", asc), s("created_at", asc), s("id", asc)}},
		{"sort_key=name&sort_dir=asc&sort_key=size&sort_dir=desc",
			[]cloudimage.Sort{s("name", asc), s("size", desc), s("created_at", desc), s("id", desc)}},
		{"sort_key=id&sort_dir=asc", []cloudimage.Sort{s("id", asc), s("created_at", asc)}},
		{"sort=name", []cloudimage.Sort{s("name", desc), s("created_at", desc), s("id", desc)}},
		{"sort=name:asc", []cloudimage.Sort{s("name", asc), s("created_at", asc), s("id", asc)}},
		{"sort=name:asc,size", []cloudimage.Sort{s("name", asc), s("size", desc), s("created_at", desc), s("id", desc)}},
		{"sort=%20size%20:%20asc%20,%20updated_at:desc",
			[]cloudimage.Sort{s("size", asc), s("updated_at", desc), s("created_at", desc), s("id", desc)}},
		{"sort=created_at:asc,id:asc", []cloudimage.Sort{s("created_at", asc), s("id", asc)}},
	} {
		if got := mustParseV2List(t, tc.raw).opts.Sort; !slices.Equal(got, tc.want) {
			t.Errorf("%q: sort %v, want %v", tc.raw, got, tc.want)
		}
	}
}

func TestV2ListLinks(t *testing.T) {
	for _, tc := range []struct {
		raw, first, next string
	}{
		{"", "/v2/images", "/v2/images?marker=LAST"},
		{"limit=2", "/v2/images?limit=2", "/v2/images?limit=2&marker=LAST"},
		{"marker=m1&limit=2", "/v2/images?limit=2", "/v2/images?limit=2&marker=LAST"},
		{"tag=a&limit=1&tag=b&marker=m1", "/v2/images?tag=a&limit=1&tag=b", "/v2/images?tag=a&limit=1&tag=b&marker=LAST"},
		{"sort=name:desc,created_at:asc&limit=3",
			"/v2/images?sort=name%3Adesc%2Ccreated_at%3Aasc&limit=3",
			"/v2/images?sort=name%3Adesc%2Ccreated_at%3Aasc&limit=3&marker=LAST"},
		{"created_at=gt:2000-01-01T00:00:00Z&limit=1",
			"/v2/images?created_at=gt%3A2000-01-01T00%3A00%3A00Z&limit=1",
			"/v2/images?created_at=gt%3A2000-01-01T00%3A00%3A00Z&limit=1&marker=LAST"},
		{"name=a%20b%26c", "/v2/images?name=a+b%26c", "/v2/images?name=a+b%26c&marker=LAST"},
	} {
		l := mustParseV2List(t, tc.raw)
		if got := l.firstLink(); got != tc.first {
			t.Errorf("%q: first %q, want %q", tc.raw, got, tc.first)
		}
		if got := l.nextLink("LAST"); got != tc.next {
			t.Errorf("%q: next %q, want %q", tc.raw, got, tc.next)
		}
		// Following the link asks for what was asked, from the new marker.
		u, err := url.Parse(l.nextLink("LAST"))
		if err != nil {
			t.Fatal(err)
		}
		again := mustParseV2List(t, u.RawQuery)
		if again.opts.Marker != "LAST" || filterJSON(again.opts.Filter) != filterJSON(l.opts.Filter) ||
			!slices.Equal(again.opts.Sort, l.opts.Sort) || again.opts.Limit != l.opts.Limit {
			t.Errorf("%q: next asks for %+v, want %+v after LAST", tc.raw, again.opts, l.opts)
		}
	}
}

func TestSatisfiableRanges(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"bytes=0-99", "bytes=0-99"},
		{"bytes=-10", "bytes=-10"},
		{"bytes=-0", "bytes=100-"},
		{"bytes= -0 ", "bytes=100-"},
		{"bytes=-000", "bytes=100-"},
		{"bytes=0-1,-0", "bytes=0-1"},
		{"bytes=-0,-0", "bytes=100-"},
		{"items=-0", "items=-0"},
	} {
		if got := satisfiableRanges(tc.in, 100); got != tc.want {
			t.Errorf("satisfiableRanges(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestVersionList(t *testing.T) {
	vs := imageVersionList("http://x")
	if len(vs) != 12 || vs[0].ID != "v2.11" || vs[0].Status != "CURRENT" || vs[11].ID != "v2.0" {
		t.Fatalf("versions %+v", vs)
	}
	for _, v := range vs[1:] {
		if v.Status != "SUPPORTED" || len(v.Links) != 1 || v.Links[0] != (imageVersionLink{"self", "http://x/v2/"}) {
			t.Errorf("version %+v", v)
		}
	}
}

// FuzzParseV2List checks that any query parses or fails cleanly, and that
// what parses asks for a bounded, total order whose next link asks again
// for the same thing.
func FuzzParseV2List(f *testing.F) {
	for _, seed := range []string{
		"", "limit=2&marker=m", "sort=name:asc,size", "sort_key=name&sort_dir=asc&sort_key=id",
		`name=in:"a,b",c`, "created_at=gt:2000-01-01T00:00:00Z", "size=5&size_min=1", "tag=a&tag=b",
		"os_hidden=true&protected=false&visibility=all&member_status=pending", "limit=%zz", "a=b;c=d",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		l, err := parseV2List(raw, testProfile)
		if err != nil {
			if cloudimage.ErrorCode(err) != cloudimage.EINVALID {
				t.Fatalf("%q: %v, want EINVALID", raw, err)
			}
			return
		}
		if l.opts.Limit < 0 || l.opts.Limit > testProfile.MaxLimit {
			t.Fatalf("%q: limit %d", raw, l.opts.Limit)
		}
		keys := map[cloudimage.SortKey]bool{}
		for _, s := range l.opts.Sort {
			if !s.Key.Valid() {
				t.Fatalf("%q: sort key %q", raw, s.Key)
			}
			keys[s.Key] = true
		}
		if !keys[cloudimage.SortCreatedAt] || !keys[cloudimage.SortID] {
			t.Fatalf("%q: sort %v is not complete", raw, l.opts.Sort)
		}
		u, err := url.Parse(l.nextLink("m"))
		if err != nil {
			t.Fatalf("%q: next %q: %v", raw, l.nextLink("m"), err)
		}
		again, err := parseV2List(u.RawQuery, testProfile)
		if err != nil || again.opts.Marker != "m" || !slices.Equal(again.opts.Sort, l.opts.Sort) ||
			again.opts.Limit != l.opts.Limit || filterJSON(again.opts.Filter) != filterJSON(l.opts.Filter) {
			t.Fatalf("%q: next %q asks for %+v, %v; want %+v", raw, u.RawQuery, again, err, l.opts)
		}
	})
}
