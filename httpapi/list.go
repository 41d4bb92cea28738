package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudimage/cloudimage"
)

// GET /v2/images: Glance's filters, its two sort syntaxes and keyset pages
// with first and next links.

// queryParam is one key=value pair of a query string, decoded.
type queryParam struct{ key, value string }

// v2List is a parsed list request.
type v2List struct {
	opts cloudimage.ListOptions
	// params are the request's parameters in their order, the marker left
	// out: the first and next links carry them.
	params []queryParam
	// properties are the parameters Glance takes for extra-property
	// filters (?os_type=linux).
	properties map[string]string
}

// v2SortKeys is the list Glance names in its sort key error, in its order.
var v2SortKeys = func() string {
	keys := make([]string, len(cloudimage.SortKeys))
	for i, k := range cloudimage.SortKeys {
		keys[i] = string(k)
	}
	return strings.Join(keys, ", ")
}()

// listParams are the parameters that are not property filters.
var listParams = map[string]bool{
	"limit": true, "marker": true, "member_status": true, "tag": true, "sort": true, "sort_key": true,
	"sort_dir": true, "visibility": true, "owner": true, "name": true, "id": true, "status": true,
	"container_format": true, "disk_format": true, "size": true, "size_min": true, "size_max": true,
	"protected": true, "os_hidden": true, "created_at": true, "updated_at": true,
}

// unfilterable are attributes Glance filters on by equality that this
// server does not: a query naming one is refused rather than taken as a
// property filter that would quietly match nothing.
var unfilterable = map[string]bool{
	"checksum": true, "os_hash_algo": true, "os_hash_value": true, "min_disk": true, "min_ram": true,
	"virtual_size": true,
}

// Caps on a list's filters. Each filter is a condition of one SQL
// statement, and SQLite refuses an expression tree deeper than 1000 and
// more than 32766 bound parameters; past these caps a request is refused
// with 400 rather than failing in the database. At most one in: list is
// read per attribute (the last one given), and five attributes take one
// (id, name, status, disk_format, container_format), so the in: values of
// a list are at most 5*maxInValues = 5000 parameters; tags, properties
// and times add a few hundred more at most.
const (
	// maxTimeFilters is how many created_at (or updated_at) filters one
	// list may give. Two make a range; more are never needed.
	maxTimeFilters = 10
	// maxInValues is how many values one in: list may hold.
	maxInValues = 1000
)

// Tags and properties are capped at cloudimage.MaxTags and
// cloudimage.MaxProperties: an image has no more than that many, so a
// list filtering on more distinct ones could match nothing anyway.

// invalidf is a request the image API refuses as malformed: 400.
func invalidf(format string, args ...any) error {
	return cloudimage.Errorf(cloudimage.EINVALID, format, args...)
}

// parseQueryParams splits a raw query string into its pairs, in order.
func parseQueryParams(raw string) ([]queryParam, error) {
	var out []queryParam
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		key, err1 := url.QueryUnescape(k)
		value, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, invalidf("Malformed query string.")
		}
		out = append(out, queryParam{key, value})
	}
	return out, nil
}

// parseV2List parses a list's query string under the profile's page
// sizes, as Glance's images index does.
func parseV2List(raw string, p cloudimage.Profile) (*v2List, error) {
	params, err := parseQueryParams(raw)
	if err != nil {
		return nil, err
	}
	l := &v2List{opts: cloudimage.ListOptions{Limit: p.DefaultLimit, Tags: true}}
	// Glance reads the last of a repeated single-valued parameter.
	last := map[string]string{}
	all := map[string][]string{}
	for _, qp := range params {
		if qp.key != "marker" {
			l.params = append(l.params, qp)
		}
		last[qp.key] = qp.value
		all[qp.key] = append(all[qp.key], qp.value)
		if unfilterable[qp.key] {
			return nil, invalidf("Filtering on %s is not supported by this server.", qp.key)
		}
		if !listParams[qp.key] {
			if l.properties == nil {
				l.properties = map[string]string{}
			}
			l.properties[qp.key] = qp.value
		}
	}
	if _, ok := last["changes-since"]; ok {
		return nil, invalidf(`The "changes-since" filter is no longer available on v2.`)
	}
	delete(l.properties, "changes-since")
	if len(l.properties) > cloudimage.MaxProperties {
		return nil, invalidf("Too many property filters: at most %d may be given.", cloudimage.MaxProperties)
	}
	l.opts.Filter.Properties = l.properties
	if v, ok := last["limit"]; ok {
		if l.opts.Limit, err = parseLimit(v, p.MaxLimit); err != nil {
			return nil, err
		}
	}
	if v, ok := last["marker"]; ok {
		l.opts.Marker = v
		if id, err := cloudimage.ParseID(v); err == nil {
			l.opts.Marker = id
		}
	}
	// An empty visibility= or member_status= is an invalid value, as in
	// Glance. Every other empty parameter keeps the meaning its parser
	// gives it: marker= and owner= filter nothing; id=, name=, status=,
	// disk_format=, container_format=, tag=, size= and a property filter
	// (os_type=) ask for the empty value (name= lists the images without a
	// name; the others match nothing); limit=, size_min=, size_max=,
	// protected=, os_hidden=, created_at=, updated_at= and the sort
	// parameters are malformed and refused.
	if v, ok := last["visibility"]; ok {
		switch vis := cloudimage.ListVisibility(v); vis {
		case cloudimage.ListPublic, cloudimage.ListPrivate, cloudimage.ListShared,
			cloudimage.ListCommunity, cloudimage.ListAll:
			l.opts.Visibility = vis
		default:
			return nil, invalidf("Invalid visibility value: %s", v)
		}
	}
	if v, ok := last["member_status"]; ok {
		ms := cloudimage.MemberStatus(v)
		if !ms.Valid() && ms != cloudimage.MemberAny {
			return nil, invalidf("Invalid status: %s", v)
		}
		l.opts.MemberStatus = ms
	}
	if err := parseListFilter(&l.opts.Filter, last, all); err != nil {
		return nil, err
	}
	if l.opts.Sort, err = parseListSort(all); err != nil {
		return nil, err
	}
	return l, nil
}

// parseLimit reads limit as Glance does: an integer, not negative, capped
// at max.
func parseLimit(v string, max int) (int, error) {
	v = strings.TrimSpace(v)
	n, err := strconv.ParseInt(v, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(v, "-"):
		return max, nil // beyond int64 is beyond any cap
	case errors.Is(err, strconv.ErrRange) || err == nil && n < 0:
		return 0, invalidf("limit param must be positive")
	case err != nil:
		return 0, invalidf("limit param must be an integer")
	}
	return int(min(n, int64(max))), nil
}

// parseListFilter fills f from the filter parameters.
func parseListFilter(f *cloudimage.ImageFilter, last map[string]string, all map[string][]string) error {
	var err error
	for _, a := range []struct {
		key string
		dst *[]string
	}{
		{"id", &f.IDs}, {"name", &f.Names}, {"container_format", &f.ContainerFormats}, {"disk_format", &f.DiskFormats},
	} {
		if v, ok := last[a.key]; ok {
			if *a.dst, err = parseInFilter(a.key, v); err != nil {
				return err
			}
		}
	}
	if v, ok := last["status"]; ok {
		statuses, err := parseInFilter("status", v)
		if err != nil {
			return err
		}
		for _, s := range statuses {
			f.Statuses = append(f.Statuses, cloudimage.Status(s))
		}
	}
	f.Owner = last["owner"]
	for _, r := range []struct {
		key string
		dst **int64
	}{{"size_min", &f.SizeMin}, {"size_max", &f.SizeMax}} {
		if v, ok := last[r.key]; ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return invalidf("Unable to filter on a range with a non-numeric value.")
			}
			*r.dst = &n
		}
	}
	if v, ok := last["size"]; ok {
		// An exact size is the range [size, size]; a size that is no
		// number matches no image, as in Glance.
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		lo, hi := n, n
		if err != nil {
			lo, hi = 1, 0
		}
		if f.SizeMin == nil || *f.SizeMin < lo {
			f.SizeMin = &lo
		}
		if f.SizeMax == nil || *f.SizeMax > hi {
			f.SizeMax = &hi
		}
	}
	if v, ok := last["protected"]; ok {
		if v != "true" && v != "false" {
			return cloudimage.Errorf(cloudimage.EINVALID,
				"Invalid value '%s' for 'protected' filter. Valid values are 'true' or 'false'.", v)
		}
		b := v == "true"
		f.Protected = &b
	}
	if v, ok := last["os_hidden"]; ok {
		v = strings.ToLower(v)
		if v != "true" && v != "false" {
			return cloudimage.Errorf(cloudimage.EINVALID,
				"Invalid value '%s' for 'os_hidden' filter. Valid values are 'true' or 'false'.", v)
		}
		b := v == "true"
		f.Hidden = &b
	}
	// A tag given twice is one filter.
	for _, v := range all["tag"] {
		if tag := strings.TrimSpace(v); !slices.Contains(f.Tags, tag) {
			if len(f.Tags) == cloudimage.MaxTags {
				return invalidf("Too many tag filters: at most %d different tags may be given.", cloudimage.MaxTags)
			}
			f.Tags = append(f.Tags, tag)
		}
	}
	// Glance reads one time filter per attribute; every one given applies
	// here, so that gt: and lt: together make a range.
	for _, a := range []struct {
		key string
		dst *[]cloudimage.TimeFilter
	}{{"created_at", &f.CreatedAt}, {"updated_at", &f.UpdatedAt}} {
		if len(all[a.key]) > maxTimeFilters {
			return invalidf("Too many %s filters: at most %d may be given.", a.key, maxTimeFilters)
		}
		for _, v := range all[a.key] {
			tf, err := parseTimeFilter(a.key, v)
			if err != nil {
				return err
			}
			*a.dst = append(*a.dst, tf)
		}
	}
	return nil
}

// parseInFilter reads the value of an attribute filter: "in:a,b" is any
// of a and b, "eq:a" and any other value is the value itself. Glance
// refuses a value with an unknown operator ("name=a:b"); here such a
// value is taken literally, so that names with colons can be listed.
// An in: list holds at most maxInValues values.
func parseInFilter(key, v string) ([]string, error) {
	if rest, ok := strings.CutPrefix(v, "in:"); ok {
		vals, err := splitInValues(rest)
		if err == nil && len(vals) > maxInValues {
			err = tooManyIn(key)
		}
		return vals, err
	}
	if rest, ok := strings.CutPrefix(v, "eq:"); ok {
		return []string{rest}, nil
	}
	return []string{v}, nil
}

func tooManyIn(key string) error {
	return invalidf("Too many values in the %s filter: at most %d may be given.", key, maxInValues)
}

// splitInValues splits the values of an in: filter at commas. A value
// may be double-quoted to hold commas, with \" and \\ inside the quotes
// standing for " and \. An empty list matches nothing.
func splitInValues(v string) ([]string, error) {
	var out []string
	for i := 0; i < len(v); {
		if v[i] != '"' {
			end := strings.IndexByte(v[i:], ',')
			if end < 0 {
				end = len(v) - i
			}
			field := v[i : i+end]
			if j := strings.IndexByte(field, '"'); j >= 0 && (j == 0 || field[j-1] != '\\') {
				return nil, cloudimage.Errorf(cloudimage.EINVALID,
					"Invalid filter value %s. There is no comma before opening quotation mark.", v)
			}
			out = append(out, field)
			i += end + 1
			continue
		}
		var b strings.Builder
		j := i + 1
		for ; j < len(v) && v[j] != '"'; j++ {
			if v[j] == '\\' && j+1 < len(v) {
				j++
			}
			b.WriteByte(v[j])
		}
		if j >= len(v) {
			return nil, invalidf("Invalid filter value %s. The quote is not closed.", v)
		}
		if j+1 < len(v) && v[j+1] != ',' {
			return nil, cloudimage.Errorf(cloudimage.EINVALID,
				"Invalid filter value %s. There is no comma after closing quotation mark.", v)
		}
		out = append(out, b.String())
		i = j + 2
	}
	if out == nil {
		// "in:" with nothing after it: a list no attribute equals.
		out = []string{}
	}
	return out, nil
}

// isoLayouts are the time forms a time filter accepts: ISO 8601 with or
// without a zone (UTC then) or fraction, or a date alone.
var isoLayouts = []string{
	time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04Z07:00", "2006-01-02T15:04", "2006-01-02",
}

func parseISOTime(s string) (time.Time, bool) {
	for _, layout := range isoLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// parseTimeFilter reads "op:time", or a time alone, which is eq.
func parseTimeFilter(key, v string) (cloudimage.TimeFilter, error) {
	if t, ok := parseISOTime(v); ok {
		return cloudimage.TimeFilter{Op: cloudimage.OpEq, Time: t}, nil
	}
	op, rest, _ := strings.Cut(v, ":")
	t, ok := parseISOTime(rest)
	if !ok {
		return cloudimage.TimeFilter{}, cloudimage.Errorf(cloudimage.EINVALID,
			`Bad "%s" query filter format. Use ISO 8601 DateTime notation.`, key)
	}
	if !cloudimage.CompareOp(op).Valid() {
		return cloudimage.TimeFilter{}, invalidf("Unable to filter on a unknown operator.")
	}
	return cloudimage.TimeFilter{Op: cloudimage.CompareOp(op), Time: t}, nil
}

// parseListSort reads the classic syntax (sort_key and sort_dir, each
// repeatable) or the new one (sort=key:dir,...), never both, and completes
// the order as Glance does: with created_at and id, in the direction given
// when exactly one was, descending otherwise.
func parseListSort(all map[string][]string) ([]cloudimage.Sort, error) {
	var keys []cloudimage.SortKey
	var dirs []bool
	if sorts, ok := all["sort"]; ok {
		if all["sort_key"] != nil || all["sort_dir"] != nil {
			return nil, invalidf("Old and new sorting syntax cannot be combined")
		}
		for part := range strings.SplitSeq(strings.TrimSpace(sorts[0]), ",") {
			k, d, _ := strings.Cut(part, ":")
			if d == "" {
				d = "desc"
			}
			key, err := sortKey(k)
			if err != nil {
				return nil, err
			}
			desc, err := sortDesc(d)
			if err != nil {
				return nil, err
			}
			keys, dirs = append(keys, key), append(dirs, desc)
		}
	} else {
		for _, k := range all["sort_key"] {
			key, err := sortKey(k)
			if err != nil {
				return nil, err
			}
			keys = append(keys, key)
		}
		for _, d := range all["sort_dir"] {
			desc, err := sortDesc(d)
			if err != nil {
				return nil, err
			}
			dirs = append(dirs, desc)
		}
		if len(dirs) > 1 && len(dirs) != len(keys) {
			return nil, invalidf("Number of sort dirs does not match the number of sort keys")
		}
		if len(keys) == 0 {
			keys = []cloudimage.SortKey{cloudimage.SortCreatedAt}
		}
		if len(dirs) == 0 {
			dirs = []bool{true}
		}
	}
	tieDesc := true
	if len(dirs) == 1 {
		tieDesc = dirs[0]
		dirs = slices.Repeat(dirs, len(keys))
	}
	sorts := make([]cloudimage.Sort, len(keys))
	for i, k := range keys {
		sorts[i] = cloudimage.Sort{Key: k, Desc: dirs[i]}
	}
	return cloudimage.CompleteSort(sorts, tieDesc), nil
}

func sortKey(k string) (cloudimage.SortKey, error) {
	key := cloudimage.SortKey(strings.TrimSpace(k))
	if !key.Valid() {
		return "", cloudimage.Errorf(cloudimage.EINVALID,
			"Invalid sort key: %s. It must be one of the following: %s.", key, v2SortKeys)
	}
	return key, nil
}

func sortDesc(d string) (bool, error) {
	switch d = strings.TrimSpace(d); d {
	case "asc":
		return false, nil
	case "desc":
		return true, nil
	}
	return false, invalidf("Invalid sort direction: %s", d)
}

// encodeParams encodes params as a query string, in their order.
func encodeParams(params []queryParam) string {
	var b strings.Builder
	for i, p := range params {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(p.key))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(p.value))
	}
	return b.String()
}

// firstLink is the list's first page: the request without its marker.
func (l *v2List) firstLink() string {
	if len(l.params) == 0 {
		return "/v2/images"
	}
	return "/v2/images?" + encodeParams(l.params)
}

// nextLink is the page after the one that ends with the image lastID: the
// request with every parameter it had, the marker replaced.
func (l *v2List) nextLink(lastID string) string {
	return "/v2/images?" + encodeParams(append(slices.Clone(l.params), queryParam{"marker", lastID}))
}

// jsonString encodes s as a JSON string, leaving & < > as they are.
func jsonString(s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// listImages answers a v2 list, from the page cache when it can.
func (s *Server) listImages(w http.ResponseWriter, r *http.Request, c *cloudimage.Caller) error {
	return s.cachedList(w, r, c, func(w http.ResponseWriter) error { return s.renderList(w, r, c) })
}

// renderList streams a page of the caller's images. One image more than
// the page holds is asked for, so that next is there exactly when another
// page follows (Glance sends it on every full page).
func (s *Server) renderList(w http.ResponseWriter, r *http.Request, c *cloudimage.Caller) error {
	l, err := parseV2List(r.URL.RawQuery, s.images.Profile())
	if err != nil {
		return err
	}
	pageSize := l.opts.Limit
	opts := l.opts
	if pageSize > 0 {
		opts.Limit = pageSize + 1
	}
	images, err := s.images.List(r.Context(), c, opts)
	if err != nil {
		if cloudimage.ErrorCode(err) == cloudimage.EINVALID && opts.Marker != "" &&
			strings.HasPrefix(cloudimage.ErrorMessage(err), "marker could not be found") {
			return invalidf("No image found with ID %s", opts.Marker)
		}
		return err
	}
	w.Header().Set("Content-Type", jsonContentType)
	bw := bufio.NewWriterSize(w, 32<<10)
	bw.WriteString(`{"images":[`)
	n, lastID, more := 0, "", false
	var obj []byte // one image's JSON, its room reused
	for img, err := range images {
		if err != nil {
			// The status line is gone: cut the body rather than end it
			// as if the page were whole.
			s.logger.Error("list images", "err", err, "request_id", requestID(r.Context()))
			bw.Flush()
			panic(http.ErrAbortHandler)
		}
		if n == pageSize {
			more = true
			break
		}
		if n > 0 {
			bw.WriteByte(',')
		}
		obj = appendV2Image(obj[:0], img)
		bw.Write(obj)
		n, lastID = n+1, img.ID
	}
	bw.WriteString(`],"first":`)
	bw.Write(jsonString(l.firstLink()))
	if more {
		bw.WriteString(`,"next":`)
		bw.Write(jsonString(l.nextLink(lastID)))
	}
	bw.WriteString(`,"schema":"/v2/schemas/images"}` + "\n")
	// The answer has begun: a client gone by now cannot be told anything.
	_ = bw.Flush()
	return nil
}
