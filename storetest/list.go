package storetest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/google/uuid"
)

// This file holds the list tests. Each one checks the store against a
// model written here in Go from the contract in query.go: which images a
// view holds (inView), which a filter keeps (matchFilter) and how an
// order compares two images (compareImages). Text compares byte by byte,
// as Go compares strings (SQL: the C/binary collation).

// idFor returns a fixed UUID for a name, so that every run has the same
// data, ties between IDs included.
func idFor(name string) string {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte("cloudimage-storetest/"+name)).String()
}

// memberships records, as the model sees them, who each image is shared
// with: image ID → project → status.
type memberships map[string]map[string]cloudimage.MemberStatus

func (ms memberships) add(t *testing.T, s MetadataStore, img *cloudimage.Image, project string, st cloudimage.MemberStatus) {
	t.Helper()
	m := &cloudimage.Member{ImageID: img.ID, ProjectID: project, Status: st, CreatedAt: base, UpdatedAt: base}
	if err := s.AddMember(context.Background(), m, cloudimage.MaxMembers); err != nil {
		t.Fatalf("add member %s to %s: %v", project, img.Name, err)
	}
	if ms[img.ID] == nil {
		ms[img.ID] = map[string]cloudimage.MemberStatus{}
	}
	ms[img.ID][project] = st
}

// inView reports whether img is in q's view (visibility and member status
// only: not the filter), as query.go defines the views.
func inView(img *cloudimage.Image, q cloudimage.ImageQuery, ms memberships) bool {
	if img.Deleted() {
		return false
	}
	own := img.Owner == q.Viewer
	want := q.MemberStatus
	if want == "" {
		want = cloudimage.MemberAccepted
	}
	st, member := ms[img.ID][q.Viewer]
	sharedWithViewer := !own && img.Visibility == cloudimage.VisibilityShared && member &&
		(want == cloudimage.MemberAny || st == want)
	vis := img.Visibility
	switch q.Visibility {
	case cloudimage.ListDefault:
		return own || vis == cloudimage.VisibilityPublic || sharedWithViewer
	case cloudimage.ListAll:
		return own || vis == cloudimage.VisibilityPublic || vis == cloudimage.VisibilityCommunity || sharedWithViewer
	case cloudimage.ListPublic:
		return vis == cloudimage.VisibilityPublic
	case cloudimage.ListCommunity:
		return vis == cloudimage.VisibilityCommunity
	case cloudimage.ListShared:
		return own && vis == cloudimage.VisibilityShared || sharedWithViewer
	case cloudimage.ListPrivate:
		return own && vis == cloudimage.VisibilityPrivate
	}
	panic("unknown view " + q.Visibility)
}

// matchFilter reports whether img passes f, as ImageFilter defines it.
func matchFilter(img *cloudimage.Image, f cloudimage.ImageFilter) bool {
	inList := func(v string, list []string) bool { return len(list) == 0 || slices.Contains(list, v) }
	switch {
	case !inList(img.ID, f.IDs), !inList(img.Name, f.Names),
		!inList(img.ContainerFormat, f.ContainerFormats), !inList(img.DiskFormat, f.DiskFormats):
		return false
	case len(f.Statuses) == 0 && img.Status == cloudimage.StatusKilled,
		len(f.Statuses) > 0 && !slices.Contains(f.Statuses, img.Status):
		return false
	case f.Owner != "" && img.Owner != f.Owner:
		return false
	case f.SizeMin != nil && (img.Size == nil || *img.Size < *f.SizeMin),
		f.SizeMax != nil && (img.Size == nil || *img.Size > *f.SizeMax):
		return false
	case f.Protected != nil && img.Protected != *f.Protected:
		return false
	case img.Hidden != (f.Hidden != nil && *f.Hidden):
		return false
	}
	for _, tag := range f.Tags {
		if !img.HasTag(tag) {
			return false
		}
	}
	for k, v := range f.Properties {
		if got, ok := img.Properties[k]; !ok || got != v {
			return false
		}
	}
	for _, tf := range f.CreatedAt {
		if !tf.Match(img.CreatedAt) {
			return false
		}
	}
	for _, tf := range f.UpdatedAt {
		if !tf.Match(img.UpdatedAt) {
			return false
		}
	}
	return true
}

// compareImages compares two images in the order sorts.
func compareImages(sorts []cloudimage.Sort) func(x, y *cloudimage.Image) int {
	size := func(img *cloudimage.Image) int64 {
		if img.Size == nil {
			return -1
		}
		return *img.Size
	}
	return func(x, y *cloudimage.Image) int {
		for _, s := range sorts {
			var c int
			switch s.Key {
			case cloudimage.SortName:
				c = strings.Compare(x.Name, y.Name)
			case cloudimage.SortStatus:
				c = strings.Compare(string(x.Status), string(y.Status))
			case cloudimage.SortContainerFormat:
				c = strings.Compare(x.ContainerFormat, y.ContainerFormat)
			case cloudimage.SortDiskFormat:
				c = strings.Compare(x.DiskFormat, y.DiskFormat)
			case cloudimage.SortSize:
				c = cmp.Compare(size(x), size(y))
			case cloudimage.SortID:
				c = strings.Compare(x.ID, y.ID)
			case cloudimage.SortCreatedAt:
				c = x.CreatedAt.Compare(y.CreatedAt)
			case cloudimage.SortUpdatedAt:
				c = x.UpdatedAt.Compare(y.UpdatedAt)
			default:
				panic("unknown sort key " + s.Key)
			}
			if s.Desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	}
}

// expect returns the images of all that q lists, in q's order, without
// paging.
func expect(all []*cloudimage.Image, q cloudimage.ImageQuery, ms memberships) []*cloudimage.Image {
	var out []*cloudimage.Image
	for _, img := range all {
		if inView(img, q, ms) && matchFilter(img, q.Filter) {
			out = append(out, img)
		}
	}
	slices.SortStableFunc(out, compareImages(orderOrDefault(q.Sort)))
	return out
}

func names(imgs []*cloudimage.Image) []string {
	out := make([]string, len(imgs))
	for i, img := range imgs {
		out[i] = img.Name
	}
	return out
}

func mustList(t *testing.T, s MetadataStore, q cloudimage.ImageQuery) []*cloudimage.Image {
	t.Helper()
	imgs, err := s.ListImages(context.Background(), q)
	if err != nil {
		t.Fatalf("list %+v: %v", q, err)
	}
	if len(imgs) > q.Limit {
		t.Fatalf("list %+v: %d images for limit %d", q, len(imgs), q.Limit)
	}
	return imgs
}

// viewFixture is three projects' images in every visibility, shared in
// every member status, some deleted; each image is named for what it is.
type viewFixture struct {
	o, m, st string // owner, member, stranger
	all      []*cloudimage.Image
	members  memberships
}

func newViewFixture(t *testing.T, s MetadataStore) *viewFixture {
	f := &viewFixture{
		o: mustProject(t, s, "owner").ID, m: mustProject(t, s, "member").ID, st: mustProject(t, s, "stranger").ID,
		members: memberships{},
	}
	pub, com, sh, priv := cloudimage.VisibilityPublic, cloudimage.VisibilityCommunity, cloudimage.VisibilityShared, cloudimage.VisibilityPrivate
	pending, accepted, rejected := cloudimage.MemberPending, cloudimage.MemberAccepted, cloudimage.MemberRejected
	n := 0
	add := func(owner, name string, vis cloudimage.Visibility, deleted bool) *cloudimage.Image {
		n++
		img := newImage(owner, base.Add(time.Duration(n)*time.Second))
		img.ID, img.Name, img.Visibility = idFor(name), name, vis
		img.Tags = []string{name}
		if deleted {
			if err := img.SetStatus(cloudimage.StatusDeleted, img.CreatedAt); err != nil {
				t.Fatal(err)
			}
		}
		mustCreate(t, s, img)
		f.all = append(f.all, img)
		return img
	}
	add(f.o, "O-private", priv, false)
	add(f.o, "O-shared-none", sh, false)
	f.members.add(t, s, add(f.o, "O-shared-M-pending", sh, false), f.m, pending)
	f.members.add(t, s, add(f.o, "O-shared-M-accepted", sh, false), f.m, accepted)
	f.members.add(t, s, add(f.o, "O-shared-M-rejected", sh, false), f.m, rejected)
	add(f.o, "O-public", pub, false)
	add(f.o, "O-community", com, false)
	f.members.add(t, s, add(f.o, "O-private-M-accepted", priv, false), f.m, accepted)
	add(f.o, "O-deleted-public", pub, true)
	f.members.add(t, s, add(f.o, "O-deleted-shared-M-accepted", sh, true), f.m, accepted)
	img := add(f.o, "O-shared-S-accepted-M-pending", sh, false)
	f.members.add(t, s, img, f.st, accepted)
	f.members.add(t, s, img, f.m, pending)
	// The owner as a member of its own image (the service refuses that;
	// a store must still list the image once).
	f.members.add(t, s, add(f.o, "O-shared-O-accepted", sh, false), f.o, accepted)
	add(f.m, "M-private", priv, false)
	add(f.m, "M-shared", sh, false)
	add(f.m, "M-public", pub, false)
	add(f.m, "M-community", com, false)
	add(f.m, "M-deleted-private", priv, true)
	add(f.st, "S-public", pub, false)
	add(f.st, "S-community", com, false)
	f.members.add(t, s, add(f.st, "S-shared-M-accepted", sh, false), f.m, accepted)
	return f
}

// testListViews checks every view of an owner, a member and a stranger,
// with each member status and owner filter, against the model, and a
// few of them against lists written out by hand.
func testListViews(t *testing.T, s MetadataStore) {
	f := newViewFixture(t, s)
	// Hand-written: the member's views, and the default of the others.
	mine := []string{"M-private", "M-shared", "M-public", "M-community"}
	for _, c := range []struct {
		viewer string
		vis    cloudimage.ListVisibility
		ms     cloudimage.MemberStatus
		owner  string
		want   []string
	}{
		{f.m, "", "", "", append(slices.Clone(mine), "O-public", "O-shared-M-accepted", "S-public", "S-shared-M-accepted")},
		{f.m, "", cloudimage.MemberAccepted, "", append(slices.Clone(mine), "O-public", "O-shared-M-accepted", "S-public", "S-shared-M-accepted")},
		{f.m, "", cloudimage.MemberPending, "", append(slices.Clone(mine), "O-public", "O-shared-M-pending", "O-shared-S-accepted-M-pending", "S-public")},
		{f.m, "", cloudimage.MemberRejected, "", append(slices.Clone(mine), "O-public", "O-shared-M-rejected", "S-public")},
		{f.m, "", cloudimage.MemberAny, "", append(slices.Clone(mine), "O-public", "O-shared-M-pending", "O-shared-M-accepted",
			"O-shared-M-rejected", "O-shared-S-accepted-M-pending", "S-public", "S-shared-M-accepted")},
		{f.m, cloudimage.ListAll, "", "", append(slices.Clone(mine), "O-public", "O-community", "O-shared-M-accepted",
			"S-public", "S-community", "S-shared-M-accepted")},
		{f.m, cloudimage.ListPublic, "", "", []string{"O-public", "M-public", "S-public"}},
		{f.m, cloudimage.ListCommunity, "", "", []string{"O-community", "M-community", "S-community"}},
		{f.m, cloudimage.ListShared, "", "", []string{"M-shared", "O-shared-M-accepted", "S-shared-M-accepted"}},
		{f.m, cloudimage.ListShared, cloudimage.MemberAny, "", []string{"M-shared", "O-shared-M-pending", "O-shared-M-accepted",
			"O-shared-M-rejected", "O-shared-S-accepted-M-pending", "S-shared-M-accepted"}},
		{f.m, cloudimage.ListPrivate, "", "", []string{"M-private"}},
		{f.m, cloudimage.ListAll, "", f.o, []string{"O-public", "O-community", "O-shared-M-accepted"}},
		{f.m, "", cloudimage.MemberAny, f.m, mine},
		{f.st, "", "", "", []string{"S-public", "S-community", "S-shared-M-accepted", "O-public", "O-shared-S-accepted-M-pending", "M-public"}},
		{f.o, "", "", "", []string{"O-private", "O-shared-none", "O-shared-M-pending", "O-shared-M-accepted", "O-shared-M-rejected",
			"O-public", "O-community", "O-private-M-accepted", "O-shared-S-accepted-M-pending", "O-shared-O-accepted", "M-public", "S-public"}},
		{f.o, cloudimage.ListShared, cloudimage.MemberAny, "", []string{"O-shared-none", "O-shared-M-pending", "O-shared-M-accepted",
			"O-shared-M-rejected", "O-shared-S-accepted-M-pending", "O-shared-O-accepted"}},
	} {
		q := cloudimage.ImageQuery{Viewer: c.viewer, Visibility: c.vis, MemberStatus: c.ms, Limit: 100,
			Filter: cloudimage.ImageFilter{Owner: c.owner}}
		got := names(mustList(t, s, q))
		slices.Sort(got)
		want := slices.Sorted(slices.Values(c.want))
		if !slices.Equal(got, want) {
			t.Errorf("view %q member status %q owner %q of %s:\n got %v\nwant %v", c.vis, c.ms, c.owner, c.viewer, got, want)
		}
	}

	// Every view, member status and owner filter, against the model, in
	// order; the images come back whole, with their tags.
	for _, viewer := range []string{f.o, f.m, f.st} {
		for _, vis := range []cloudimage.ListVisibility{cloudimage.ListDefault, cloudimage.ListAll, cloudimage.ListPublic,
			cloudimage.ListCommunity, cloudimage.ListShared, cloudimage.ListPrivate} {
			for _, ms := range []cloudimage.MemberStatus{"", cloudimage.MemberPending, cloudimage.MemberAccepted,
				cloudimage.MemberRejected, cloudimage.MemberAny} {
				for _, owner := range []string{"", f.o, f.m} {
					q := cloudimage.ImageQuery{Viewer: viewer, Visibility: vis, MemberStatus: ms, Limit: 100, Tags: true,
						Filter: cloudimage.ImageFilter{Owner: owner}}
					got, want := mustList(t, s, q), expect(f.all, q, f.members)
					if !slices.Equal(ids(got), ids(want)) {
						t.Fatalf("view %q member status %q owner %q of %s:\n got %v\nwant %v",
							vis, ms, owner, viewer, names(got), names(want))
					}
					for i := range got {
						sameImage(t, got[i], want[i])
					}
				}
			}
		}
	}
}

// testListInvalid checks that a query the contract does not allow is
// EINVALID rather than a guess.
func testListInvalid(t *testing.T, s MetadataStore) {
	ctx := context.Background()
	p := mustProject(t, s, "p")
	for name, q := range map[string]cloudimage.ImageQuery{
		"limit 0":        {Viewer: p.ID},
		"negative limit": {Viewer: p.ID, Limit: -1},
		"visibility":     {Viewer: p.ID, Limit: 1, Visibility: "bogus"},
		"member status":  {Viewer: p.ID, Limit: 1, MemberStatus: "bogus"},
		"sort key":       {Viewer: p.ID, Limit: 1, Sort: []cloudimage.Sort{{Key: "owner"}}},
		"time operator": {Viewer: p.ID, Limit: 1, Filter: cloudimage.ImageFilter{
			CreatedAt: []cloudimage.TimeFilter{{Op: "ge", Time: base}}}},
	} {
		_, err := s.ListImages(ctx, q)
		if got := cloudimage.ErrorCode(err); got != cloudimage.EINVALID {
			t.Errorf("%s: got error %v (code %q), want EINVALID", name, err, got)
		}
	}
}

// filterFixture is images of one project (and a few public ones of
// another) whose attributes cycle through small sets, so that every
// filter keeps some and drops some.
func filterFixture(t *testing.T, s MetadataStore) (viewer, other string, all []*cloudimage.Image) {
	viewer, other = mustProject(t, s, "viewer").ID, mustProject(t, s, "other").ID
	statuses := []cloudimage.Status{cloudimage.StatusActive, cloudimage.StatusQueued, cloudimage.StatusSaving,
		cloudimage.StatusKilled, cloudimage.StatusDeactivated, cloudimage.StatusActive}
	for i := range 30 {
		// Pairs of images 1µs apart: the stores keep microseconds.
		img := newImage(viewer, base.Add(time.Duration(i/2)*time.Second+time.Duration(i%2)*time.Microsecond))
		img.UpdatedAt = base.Add(time.Hour + time.Duration(i%5)*time.Minute)
		img.ID = idFor(fmt.Sprint("filter-", i))
		img.Name = []string{"alpha", "beta", "gamma"}[i%3]
		img.Status = statuses[i%6]
		img.ContainerFormat = []string{"bare", "ovf"}[i%2]
		img.DiskFormat = []string{"raw", "qcow2", "iso"}[(i/2)%3]
		if i%4 != 0 {
			size := int64(i * 100)
			img.Size = &size
		}
		img.Protected = i%5 == 0
		img.Hidden = i%7 == 3
		img.Properties = map[string]string{"os_type": []string{"linux", "windows"}[i%2], "empty": ""}
		if i%3 == 1 {
			img.Properties[`odd "key"`] = "x"
		}
		img.Tags = []string{"all"}
		if i%2 == 0 {
			img.Tags = append(img.Tags, "even")
		}
		if i%3 == 0 {
			img.Tags = append(img.Tags, "three")
		}
		if i%8 == 5 {
			img.Owner, img.Visibility = other, cloudimage.VisibilityPublic
		}
		if i == 12 || i == 25 { // deleted: never listed, whatever matches
			if err := img.SetStatus(cloudimage.StatusDeleted, img.UpdatedAt); err != nil {
				t.Fatal(err)
			}
		}
		mustCreate(t, s, img)
		all = append(all, img)
	}
	return viewer, other, all
}

func testListFilters(t *testing.T, s MetadataStore) {
	viewer, other, all := filterFixture(t, s)
	i64 := func(v int64) *int64 { return &v }
	yes, no := true, false
	pivot := all[6].CreatedAt   // base+3s, shared with no other image
	pivotµs := all[7].CreatedAt // base+3s+1µs, 1µs after the pivot
	upivot := all[2].UpdatedAt  // base+1h+2m, shared by every fifth image
	type tf = cloudimage.TimeFilter
	type filterCase struct {
		name  string
		f     cloudimage.ImageFilter
		empty bool // the filter keeps nothing
		same  bool // the filter keeps what no filter keeps
	}
	cases := []filterCase{
		{name: "none", same: true},
		{name: "ids", f: cloudimage.ImageFilter{IDs: []string{all[0].ID, all[9].ID, all[12].ID, all[13].ID, idFor("absent")}}},
		{name: "names", f: cloudimage.ImageFilter{Names: []string{"alpha", "gamma", "delta"}}},
		{name: "name absent", f: cloudimage.ImageFilter{Names: []string{"Alpha"}}, empty: true},
		{name: "status", f: cloudimage.ImageFilter{Statuses: []cloudimage.Status{cloudimage.StatusActive}}},
		{name: "statuses", f: cloudimage.ImageFilter{Statuses: []cloudimage.Status{cloudimage.StatusQueued, cloudimage.StatusDeactivated}}},
		{name: "killed asked for", f: cloudimage.ImageFilter{Statuses: []cloudimage.Status{cloudimage.StatusKilled}}},
		{name: "killed among others", f: cloudimage.ImageFilter{Statuses: []cloudimage.Status{cloudimage.StatusKilled, cloudimage.StatusSaving}}},
		{name: "deleted asked for", f: cloudimage.ImageFilter{Statuses: []cloudimage.Status{cloudimage.StatusDeleted}}, empty: true},
		{name: "container formats", f: cloudimage.ImageFilter{ContainerFormats: []string{"ovf", "docker"}}},
		{name: "disk formats", f: cloudimage.ImageFilter{DiskFormats: []string{"qcow2", "iso"}}},
		{name: "owner", f: cloudimage.ImageFilter{Owner: other}},
		{name: "own", f: cloudimage.ImageFilter{Owner: viewer}},
		{name: "size min", f: cloudimage.ImageFilter{SizeMin: i64(1500)}},
		{name: "size max", f: cloudimage.ImageFilter{SizeMax: i64(1500)}},
		{name: "size min 0 drops no size", f: cloudimage.ImageFilter{SizeMin: i64(0)}},
		{name: "size max huge drops no size", f: cloudimage.ImageFilter{SizeMax: i64(1 << 62)}},
		{name: "size exact", f: cloudimage.ImageFilter{SizeMin: i64(700), SizeMax: i64(700)}},
		{name: "size range", f: cloudimage.ImageFilter{SizeMin: i64(500), SizeMax: i64(1100)}},
		{name: "size empty range", f: cloudimage.ImageFilter{SizeMin: i64(1100), SizeMax: i64(500)}, empty: true},
		{name: "protected", f: cloudimage.ImageFilter{Protected: &yes}},
		{name: "unprotected", f: cloudimage.ImageFilter{Protected: &no}},
		{name: "hidden", f: cloudimage.ImageFilter{Hidden: &yes}},
		{name: "not hidden", f: cloudimage.ImageFilter{Hidden: &no}, same: true},
		{name: "tag", f: cloudimage.ImageFilter{Tags: []string{"even"}}},
		{name: "tags all must match", f: cloudimage.ImageFilter{Tags: []string{"even", "three"}}},
		{name: "tags one absent", f: cloudimage.ImageFilter{Tags: []string{"even", "absent"}}, empty: true},
		{name: "tags repeated", f: cloudimage.ImageFilter{Tags: []string{"three", "three", "all"}}},
		{name: "property", f: cloudimage.ImageFilter{Properties: map[string]string{"os_type": "windows"}}},
		{name: "properties all must match", f: cloudimage.ImageFilter{Properties: map[string]string{"os_type": "linux", `odd "key"`: "x"}}},
		{name: "property empty value", f: cloudimage.ImageFilter{Properties: map[string]string{"empty": ""}}, same: true},
		{name: "property absent", f: cloudimage.ImageFilter{Properties: map[string]string{"os_distro": ""}}, empty: true},
		{name: "property value differs in case", f: cloudimage.ImageFilter{Properties: map[string]string{"os_type": "Linux"}}, empty: true},
		{name: "combined", f: cloudimage.ImageFilter{Names: []string{"alpha", "beta"}, Tags: []string{"all"},
			SizeMin: i64(100), Protected: &no, Statuses: []cloudimage.Status{cloudimage.StatusActive, cloudimage.StatusSaving}}},
		{name: "created in a window", f: cloudimage.ImageFilter{CreatedAt: []tf{{Op: cloudimage.OpGte, Time: pivot}, {Op: cloudimage.OpLt, Time: base.Add(8 * time.Second)}}}},
		{name: "created eq µs", f: cloudimage.ImageFilter{CreatedAt: []tf{{Op: cloudimage.OpEq, Time: pivotµs}}}},
		{name: "created gt and lt one µs", f: cloudimage.ImageFilter{CreatedAt: []tf{{Op: cloudimage.OpGt, Time: pivot}, {Op: cloudimage.OpLt, Time: pivotµs.Add(time.Microsecond)}}}},
		{name: "created empty window", f: cloudimage.ImageFilter{CreatedAt: []tf{{Op: cloudimage.OpGt, Time: pivot}, {Op: cloudimage.OpLt, Time: pivotµs}}}, empty: true},
		{name: "updated window and created", f: cloudimage.ImageFilter{UpdatedAt: []tf{{Op: cloudimage.OpGt, Time: base.Add(time.Hour)}, {Op: cloudimage.OpNeq, Time: upivot}},
			CreatedAt: []tf{{Op: cloudimage.OpLte, Time: base.Add(10 * time.Second)}}}},
	}
	for _, op := range []cloudimage.CompareOp{cloudimage.OpEq, cloudimage.OpNeq, cloudimage.OpGt, cloudimage.OpGte, cloudimage.OpLt, cloudimage.OpLte} {
		cases = append(cases,
			filterCase{name: "created " + string(op), f: cloudimage.ImageFilter{CreatedAt: []tf{{Op: op, Time: pivot}}}},
			filterCase{name: "updated " + string(op), f: cloudimage.ImageFilter{UpdatedAt: []tf{{Op: op, Time: upivot}}}})
	}
	visible := expect(all, cloudimage.ImageQuery{Viewer: viewer}, nil)
	for _, c := range cases {
		for _, sorts := range [][]cloudimage.Sort{nil, cloudimage.CompleteSort([]cloudimage.Sort{{Key: cloudimage.SortName}}, false)} {
			q := cloudimage.ImageQuery{Viewer: viewer, Filter: c.f, Sort: sorts, Limit: 100, Tags: true}
			want := expect(all, q, nil)
			if c.empty != (len(want) == 0) {
				t.Fatalf("%s: the model keeps %d images; the case says empty=%v", c.name, len(want), c.empty)
			}
			if c.same != slices.Equal(ids(want), ids(expect(all, cloudimage.ImageQuery{Viewer: viewer, Sort: sorts}, nil))) {
				t.Fatalf("%s: the model keeps %d of %d images; the case says same=%v", c.name, len(want), len(visible), c.same)
			}
			got := mustList(t, s, q)
			if !slices.Equal(ids(got), ids(want)) {
				t.Errorf("%s, sort %v:\n got %v\nwant %v", c.name, sorts, ids(got), ids(want))
			}
			// The same filter a page at a time.
			q.Limit = 3
			if walked := walk(t, s, q); !slices.Equal(ids(walked), ids(want)) {
				t.Errorf("%s, sort %v, pages of 3:\n got %v\nwant %v", c.name, sorts, ids(walked), ids(want))
			}
		}
	}
}

// walk lists every page of q, each strictly after the last image of the
// one before, until a short page.
func walk(t *testing.T, s MetadataStore, q cloudimage.ImageQuery) []*cloudimage.Image {
	t.Helper()
	var out []*cloudimage.Image
	for range 1000 {
		page := mustList(t, s, q)
		out = append(out, page...)
		if len(page) < q.Limit {
			return out
		}
		q.After = page[len(page)-1]
	}
	t.Fatalf("walk with limit %d does not end", q.Limit)
	return nil
}

// testListPagination walks lists in every order by pages of several sizes:
// each walk must visit every image once, in the order of one unpaged list,
// which must be the order the model sorts. The data has many ties, images
// without a size, and comes from every branch of the view.
func testListPagination(t *testing.T, s MetadataStore) {
	p, q := mustProject(t, s, "p"), mustProject(t, s, "q")
	ms := memberships{}
	var all []*cloudimage.Image
	statuses := []cloudimage.Status{cloudimage.StatusQueued, cloudimage.StatusActive, cloudimage.StatusSaving, cloudimage.StatusDeactivated}
	for i := range 24 {
		img := newImage(p.ID, base.Add(time.Duration(i%5)*time.Second))
		img.ID = idFor(fmt.Sprint("page-", i))
		img.Tags = []string{"tag"}
		img.UpdatedAt = base.Add(time.Duration(i%4) * time.Minute)
		img.Name = []string{"a", "B", "b", "", "a b", "ä"}[i%6]
		img.Status = statuses[(i/3)%4]
		img.ContainerFormat = []string{"bare", "ovf"}[(i/2)%2]
		img.DiskFormat = []string{"raw", "qcow2", "iso"}[(i/5)%3]
		switch i % 5 {
		case 1, 2:
			size := int64(10)
			img.Size = &size
		case 3:
			size := int64(i) << 33
			img.Size = &size
		case 4:
			size := int64(0)
			img.Size = &size
		}
		// Other projects' images in every branch of the "all" view, and
		// some that are not in it.
		switch i % 8 {
		case 1:
			img.Owner, img.Visibility = q.ID, cloudimage.VisibilityPublic
		case 2:
			img.Owner, img.Visibility = q.ID, cloudimage.VisibilityCommunity
		case 3, 4:
			img.Owner, img.Visibility = q.ID, cloudimage.VisibilityShared
		case 5:
			img.Visibility = cloudimage.VisibilityShared
		case 6:
			img.Visibility = cloudimage.VisibilityPublic
		}
		if i == 16 { // deleted: never listed, but a marker may name it
			if err := img.SetStatus(cloudimage.StatusDeleted, img.UpdatedAt); err != nil {
				t.Fatal(err)
			}
		}
		mustCreate(t, s, img)
		if i%8 == 3 {
			ms.add(t, s, img, p.ID, cloudimage.MemberAccepted)
		} else if i%8 == 4 {
			ms.add(t, s, img, p.ID, []cloudimage.MemberStatus{cloudimage.MemberPending, cloudimage.MemberRejected}[(i/8)%2])
		}
		all = append(all, img)
	}

	var orders [][]cloudimage.Sort
	for _, k := range cloudimage.SortKeys {
		for _, desc := range []bool{false, true} {
			orders = append(orders, cloudimage.CompleteSort([]cloudimage.Sort{{Key: k, Desc: desc}}, desc))
		}
	}
	orders = append(orders,
		nil, // the default order
		[]cloudimage.Sort{{Key: cloudimage.SortName}, {Key: cloudimage.SortCreatedAt, Desc: true}, {Key: cloudimage.SortID, Desc: true}},
		[]cloudimage.Sort{{Key: cloudimage.SortName, Desc: true}, {Key: cloudimage.SortCreatedAt}, {Key: cloudimage.SortID, Desc: true}},
		[]cloudimage.Sort{{Key: cloudimage.SortSize, Desc: true}, {Key: cloudimage.SortName}, {Key: cloudimage.SortCreatedAt}, {Key: cloudimage.SortID}},
		[]cloudimage.Sort{{Key: cloudimage.SortStatus}, {Key: cloudimage.SortUpdatedAt, Desc: true}, {Key: cloudimage.SortCreatedAt}, {Key: cloudimage.SortID, Desc: true}},
		[]cloudimage.Sort{{Key: cloudimage.SortDiskFormat, Desc: true}, {Key: cloudimage.SortContainerFormat},
			{Key: cloudimage.SortSize}, {Key: cloudimage.SortCreatedAt, Desc: true}, {Key: cloudimage.SortID}},
		cloudimage.CompleteSort([]cloudimage.Sort{{Key: cloudimage.SortUpdatedAt}, {Key: cloudimage.SortName, Desc: true}}, true),
	)
	deleted := all[16]
	// The orders are independent reads: they run side by side, which
	// matters under the race detector.
	for _, order := range orders {
		t.Run(orderName(order), func(t *testing.T) {
			t.Parallel()
			testOrder(t, s, cloudimage.ImageQuery{Viewer: p.ID, Visibility: cloudimage.ListAll, Sort: order, Limit: 1000},
				all, ms, deleted)
		})
	}
}

// testOrder checks the pages of query in its order; deleted is an image
// of the view that was deleted.
func testOrder(t *testing.T, s MetadataStore, query cloudimage.ImageQuery, all []*cloudimage.Image, ms memberships, deleted *cloudimage.Image) {
	order := query.Sort
	want := expect(all, query, ms)
	if len(want) < 15 {
		t.Fatalf("only %d images in the view: the fixture tests little", len(want))
	}
	got := mustList(t, s, query)
	if !slices.Equal(ids(got), ids(want)) {
		t.Fatalf("order %v:\n got %v\nwant %v", order, names(got), names(want))
	}
	for _, img := range got {
		if len(img.Tags) != 0 {
			t.Fatalf("tags loaded without being asked for: %v", img.Tags)
		}
	}
	for _, limit := range []int{1, 2, 3, 7} {
		query.Limit = limit
		if walked := walk(t, s, query); !slices.Equal(ids(walked), ids(got)) {
			t.Fatalf("order %v, pages of %d:\n got %v\nwant %v", order, limit, ids(walked), ids(got))
		}
	}
	// A marker that was deleted still has its place.
	query.Limit, query.After = 1000, deleted
	after := slices.IndexFunc(want, func(img *cloudimage.Image) bool {
		return compareImages(orderOrDefault(order))(img, deleted) > 0
	})
	wantAfter := want[len(want):]
	if after >= 0 {
		wantAfter = want[after:]
	}
	if got := mustList(t, s, query); !slices.Equal(ids(got), ids(wantAfter)) {
		t.Fatalf("order %v, after a deleted image:\n got %v\nwant %v", order, ids(got), ids(wantAfter))
	}
}

// orderName names an order as Glance's sort parameter would.
func orderName(sorts []cloudimage.Sort) string {
	if len(sorts) == 0 {
		return "default"
	}
	terms := make([]string, len(sorts))
	for i, s := range sorts {
		terms[i] = string(s.Key) + ":asc"
		if s.Desc {
			terms[i] = string(s.Key) + ":desc"
		}
	}
	return strings.Join(terms, ",")
}

func orderOrDefault(sorts []cloudimage.Sort) []cloudimage.Sort {
	if len(sorts) == 0 {
		return cloudimage.DefaultSort
	}
	return sorts
}
