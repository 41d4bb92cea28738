package main

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	tokens2 "github.com/gophercloud/gophercloud/v2/openstack/identity/v2/tokens"
	tokens3 "github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imageimport"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/members"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// These tests drive a server that run started with gophercloud, the Go
// OpenStack SDK behind Terraform's OpenStack providers: each call is the
// one a user's program makes, and each expectation is what upstream
// Glance and Keystone answer (see /work/shared/spec/glance-behaviour.md).

// TestGophercloudOpenStack runs the whole image workflow of two projects
// against a server with the openstack profile.
func TestGophercloudOpenStack(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir(), map[string]string{"CLOUDIMAGE_ADMIN_PASSWORD": testAdminPassword},
		"--profile", "openstack")
	// alice authenticates with identity v3, by project name and by ID;
	// bob with identity v2.0. RevokedTokenV3, the last subtest, revokes
	// alice's token scoped by ID.
	sessions := gcSessions(t, s,
		gcSessionSpec{Project: "alpha", User: "alice", Ways: []gcAuthWay{gcV3ByName, gcV3ByID}},
		gcSessionSpec{Project: "beta", User: "bob", Ways: []gcAuthWay{gcV2ByName}})
	alpha, alphaP, alphaByIDP := sessions[0].gcProject, sessions[0].Providers[0], sessions[0].Providers[1]
	beta, betaP := sessions[1].gcProject, sessions[1].Providers[0]
	a := gcImageClient(t, alphaP)
	b := gcImageClient(t, betaP)

	t.Run("AuthV3", func(t *testing.T) {
		res, ok := alphaP.GetAuthResult().(tokens3.CreateResult)
		if !ok {
			t.Fatalf("the v3 authentication result is a %T", alphaP.GetAuthResult())
		}
		checkV3Token(t, res, alpha)
		if want := s.URL + "/v2/"; a.ResourceBase != want {
			t.Errorf("image client's resource base is %q, want %q (the catalog's image endpoint is the root)",
				a.ResourceBase, want)
		}

		// Scoped by project ID instead of name.
		p := alphaByIDP
		res, ok = p.GetAuthResult().(tokens3.CreateResult)
		if !ok {
			t.Fatalf("the v3 authentication result is a %T", p.GetAuthResult())
		}
		checkV3Token(t, res, alpha)
		// Tokens of one project, however issued, see the same images.
		img := gcCreate(t, gcImageClient(t, p), images.CreateOpts{Name: "gc-auth-v3-by-id"})
		if got := gcGet(t, a, img.ID); got.Owner != alpha.ID {
			t.Errorf("image made with a token scoped by ID has owner %q, want %q", got.Owner, alpha.ID)
		}
		if err := images.Delete(t.Context(), a, img.ID).ExtractErr(); err != nil {
			t.Errorf("delete: %v", err)
		}
	})

	t.Run("AuthV2", func(t *testing.T) {
		res, ok := betaP.GetAuthResult().(tokens2.CreateResult)
		if !ok {
			t.Fatalf("the v2.0 authentication result is a %T", betaP.GetAuthResult())
		}
		tok, err := res.ExtractToken()
		if err != nil {
			t.Fatal(err)
		}
		if tok.Tenant.ID != beta.ID || tok.Tenant.Name != beta.Name || tok.ID == "" || !tok.ExpiresAt.After(time.Now()) {
			t.Errorf("v2.0 token %+v, want tenant %q %q and an expiry in the future", tok, beta.ID, beta.Name)
		}
		if want := s.URL + "/v2/"; b.ResourceBase != want {
			t.Errorf("image client's resource base is %q, want %q (the catalog's image endpoint is the root)",
				b.ResourceBase, want)
		}
		img := gcCreate(t, b, images.CreateOpts{Name: "gc-auth-v2"})
		if got := gcGet(t, b, img.ID); got.Owner != beta.ID {
			t.Errorf("image made with a v2.0 token has owner %q, want %q", got.Owner, beta.ID)
		}
		if err := images.Delete(t.Context(), b, img.ID).ExtractErr(); err != nil {
			t.Errorf("delete with the v2.0 token: %v", err)
		}

		// Identity v3 validates the v2.0 token: they are the same tokens.
		// (Keystone lets a non-admin validate only its own tokens.)
		idc, err := openstack.NewIdentityV3(betaP, gophercloud.EndpointOpts{})
		if err != nil {
			t.Fatal(err)
		}
		got := tokens3.Get(t.Context(), idc, betaP.Token())
		if proj, err := got.ExtractProject(); err != nil {
			t.Errorf("v3 validation of a v2.0 token: %v", err)
		} else if proj == nil || proj.ID != beta.ID {
			t.Errorf("v3 validation of a v2.0 token gives project %+v, want %s", proj, beta.ID)
		}
	})

	t.Run("CreateUploadDownload", func(t *testing.T) {
		private := images.ImageVisibilityPrivate
		created := gcCreate(t, a, images.CreateOpts{
			Name:            "gc-debian",
			ContainerFormat: "bare",
			DiskFormat:      "raw",
			Visibility:      &private,
			Tags:            []string{"gc-create", "debian"},
			MinDisk:         1,
			MinRAM:          256,
			Properties:      map[string]string{"os_distro": "debian", "hw_disk_bus": "virtio"},
		})
		id := created.ID
		checkImage(t, "created image", created, gcWant{
			Name: "gc-debian", Status: images.ImageStatusQueued, Visibility: private, Owner: alpha.ID,
			Tags: []string{"gc-create", "debian"}, ContainerFormat: "bare", DiskFormat: "raw",
			MinDisk: 1, MinRAM: 256,
			Properties: map[string]any{"os_distro": "debian", "hw_disk_bus": "virtio", "os_hash_algo": nil, "os_hash_value": nil},
		})
		if created.File != "/v2/images/"+id+"/file" || created.Schema != "/v2/schemas/image" {
			t.Errorf("file %q and schema %q, want /v2/images/%s/file and /v2/schemas/image", created.File, created.Schema, id)
		}
		if !slices.Contains(created.OpenStackImageImportMethods, "glance-direct") {
			t.Errorf("create's OpenStack-Image-Import-Methods gave %q, want glance-direct among them",
				created.OpenStackImageImportMethods)
		}
		if created.CreatedAt.IsZero() || created.UpdatedAt.IsZero() {
			t.Errorf("created_at %v, updated_at %v: want both set", created.CreatedAt, created.UpdatedAt)
		}

		data := gcData(3<<20+17, 1)
		gcUpload(t, a, id, data)
		got := gcGet(t, a, id)
		checkImage(t, "uploaded image", got, gcWant{
			Name: "gc-debian", Status: images.ImageStatusActive, Visibility: private, Owner: alpha.ID,
			Tags: []string{"gc-create", "debian"}, ContainerFormat: "bare", DiskFormat: "raw",
			MinDisk: 1, MinRAM: 256, Size: int64(len(data)), Checksum: gcMD5(data),
			Properties: map[string]any{"os_distro": "debian", "os_hash_algo": "sha512", "os_hash_value": gcSHA512(data)},
		})
		if got.VirtualSize != int64(len(data)) {
			t.Errorf("virtual_size of a raw image is %d, want its size %d", got.VirtualSize, len(data))
		}
		if got.UpdatedAt.Before(created.UpdatedAt) || !got.CreatedAt.Equal(created.CreatedAt) {
			t.Errorf("after upload created_at %v updated_at %v; before %v %v",
				got.CreatedAt, got.UpdatedAt, created.CreatedAt, created.UpdatedAt)
		}

		down, header, err := gcDownload(t, a, id)
		if err != nil {
			t.Fatalf("download: %v", err)
		}
		if !bytes.Equal(down, data) {
			t.Errorf("downloaded %d bytes (md5 %s), want the %d uploaded (md5 %s)",
				len(down), gcMD5(down), len(data), gcMD5(data))
		}
		// A program checks what it downloaded against the image's checksum,
		// and glanceclient against Content-MD5 (hex, as Glance's checksum).
		if gcMD5(down) != got.Checksum {
			t.Errorf("md5 of the download %s, image checksum %s", gcMD5(down), got.Checksum)
		}
		if h := header.Get("Content-MD5"); h != got.Checksum {
			t.Errorf("download's Content-MD5 is %q, want the checksum %q", h, got.Checksum)
		}
		if ct := header.Get("Content-Type"); ct != "application/octet-stream" {
			t.Errorf("download's Content-Type is %q, want application/octet-stream", ct)
		}

		err = imagedata.Upload(t.Context(), a, id, bytes.NewReader(data)).ExtractErr()
		gcWantStatus(t, err, http.StatusConflict, "upload again to an active image")

		_, err = images.Create(t.Context(), a, images.CreateOpts{Name: "gc-bad", DiskFormat: "bogus"}).Extract()
		gcWantStatus(t, err, http.StatusBadRequest, "create with disk_format bogus")
		_, err = images.Create(t.Context(), a, images.CreateOpts{ID: id, Name: "gc-dup"}).Extract()
		gcWantStatus(t, err, http.StatusConflict, "create with the id of an existing image")
		public := images.ImageVisibilityPublic
		_, err = images.Create(t.Context(), a, images.CreateOpts{Name: "gc-public", Visibility: &public}).Extract()
		gcWantStatus(t, err, http.StatusForbidden, "create a public image as a member")
	})

	t.Run("ListPages", func(t *testing.T) {
		const tag = "gc-pages"
		names := []string{"pg-d", "pg-a", "pg-g", "pg-c", "pg-f", "pg-b", "pg-e"}
		formats := []string{"raw", "qcow2", "iso"}
		var created []string
		byID := map[string]string{}
		format := map[string]string{}
		for i, name := range names {
			img := gcCreate(t, a, images.CreateOpts{
				Name: name, ContainerFormat: "bare", DiskFormat: formats[i%len(formats)], Tags: []string{tag},
			})
			created = append(created, img.ID)
			byID[img.ID] = name
			format[img.ID] = img.DiskFormat
		}
		newestFirst := gcReversed(created)

		// Limit 2 over 7 images: pages of 2, 2, 2 and 1, and the last has
		// no next link.
		pages := gcListPages(t, a, images.ListOpts{Limit: 2, Tags: []string{tag}})
		var sizes []int
		var walked []string
		for _, p := range pages {
			sizes = append(sizes, len(p))
			walked = append(walked, gcIDs(p)...)
		}
		if !slices.Equal(sizes, []int{2, 2, 2, 1}) {
			t.Errorf("pages of limit 2 over 7 images have sizes %v, want [2 2 2 1]", sizes)
		}
		gcSameIDs(t, "pages of limit 2, default sort (created_at desc)", walked, newestFirst, byID)
		gcSameIDs(t, "AllPages of limit 2", gcAllPages(t, a, images.ListOpts{Limit: 2, Tags: []string{tag}}),
			newestFirst, byID)

		// Over the whole project, the pages hold what one big page holds.
		one := gcListPages(t, a, images.ListOpts{Limit: 1000})
		if len(one) != 1 {
			t.Errorf("a list with limit 1000 took %d pages", len(one))
		}
		var everything []string
		for _, p := range one {
			everything = append(everything, gcIDs(p)...)
		}
		paged := gcAllPages(t, a, images.ListOpts{Limit: 2})
		gcSameIDs(t, "AllPages of the project, limit 2, against one page", paged, everything, byID)
		var ours []string
		for _, id := range paged {
			if _, ok := byID[id]; ok {
				ours = append(ours, id)
			}
		}
		gcSameIDs(t, "this test's images in the project's list", ours, newestFirst, byID)

		byName := slices.Clone(created)
		slices.SortFunc(byName, func(x, y string) int { return strings.Compare(byID[x], byID[y]) })
		gcSameIDs(t, "sort_key=name sort_dir=asc limit=3",
			gcAllPages(t, a, images.ListOpts{Limit: 3, SortKey: "name", SortDir: "asc", Tags: []string{tag}}), byName, byID)
		gcSameIDs(t, "sort_key=name (default direction desc) limit=3",
			gcAllPages(t, a, images.ListOpts{Limit: 3, SortKey: "name", Tags: []string{tag}}), gcReversed(byName), byID)
		gcSameIDs(t, "sort=name:desc limit=2",
			gcAllPages(t, a, images.ListOpts{Limit: 2, Sort: "name:desc", Tags: []string{tag}}), gcReversed(byName), byID)
		gcSameIDs(t, "sort=name limit=4 (default direction desc)",
			gcAllPages(t, a, images.ListOpts{Limit: 4, Sort: "name", Tags: []string{tag}}), gcReversed(byName), byID)

		byFormat := slices.Clone(created)
		slices.SortFunc(byFormat, func(x, y string) int {
			if c := strings.Compare(format[x], format[y]); c != 0 {
				return c
			}
			return strings.Compare(byID[y], byID[x])
		})
		gcSameIDs(t, "sort=disk_format:asc,name:desc limit=2",
			gcAllPages(t, a, images.ListOpts{Limit: 2, Sort: "disk_format:asc,name:desc", Tags: []string{tag}}),
			byFormat, byID)
		// Ties are broken by created_at, then id: in the one direction
		// given, or else descending (Glance's sqlalchemy api).
		byFormatThenOld := slices.Clone(created)
		slices.SortStableFunc(byFormatThenOld, func(x, y string) int { return strings.Compare(format[x], format[y]) })
		gcSameIDs(t, "sort_key=disk_format sort_dir=asc limit=2",
			gcAllPages(t, a, images.ListOpts{Limit: 2, SortKey: "disk_format", SortDir: "asc", Tags: []string{tag}}),
			byFormatThenOld, byID)
		gcSameIDs(t, "sort=disk_format:asc limit=2",
			gcAllPages(t, a, images.ListOpts{Limit: 2, Sort: "disk_format:asc", Tags: []string{tag}}),
			byFormatThenOld, byID)
		byFormatThenNew := slices.Clone(newestFirst)
		slices.SortStableFunc(byFormatThenNew, func(x, y string) int { return strings.Compare(format[x], format[y]) })
		gcSameIDs(t, "sort=disk_format:asc,container_format:desc limit=2 (ties: created_at desc)",
			gcAllPages(t, a, images.ListOpts{Limit: 2, Sort: "disk_format:asc,container_format:desc", Tags: []string{tag}}),
			byFormatThenNew, byID)
		gcSameIDs(t, "sort=created_at:asc limit=3",
			gcAllPages(t, a, images.ListOpts{Limit: 3, Sort: "created_at:asc", Tags: []string{tag}}), created, byID)

		// A marker starts after the image it names.
		gcSameIDs(t, "marker = third newest", gcList(t, a, images.ListOpts{Marker: newestFirst[2], Tags: []string{tag}}),
			newestFirst[3:], byID)

		gcWantStatus(t, gcListError(t, a, images.ListOpts{Sort: "name:asc", SortKey: "name"}),
			http.StatusBadRequest, "list with both sort and sort_key")
		gcWantStatus(t, gcListError(t, a, images.ListOpts{SortKey: "bogus"}),
			http.StatusBadRequest, "list with sort_key=bogus")
		gcWantStatus(t, gcListError(t, a, images.ListOpts{Sort: "name:sideways"}),
			http.StatusBadRequest, "list with sort=name:sideways")
		gcWantStatus(t, gcListError(t, a, images.ListOpts{SortKey: "name", SortDir: "sideways"}),
			http.StatusBadRequest, "list with sort_dir=sideways")
		gcWantStatus(t, gcListError(t, a, images.ListOpts{Marker: "7b3fd9e8-5f5e-4b6e-9d62-4a4f4b2f5a10"}),
			http.StatusBadRequest, "list with an unknown marker")
		gcWantStatus(t, gcListError(t, a, images.ListOpts{Limit: -1}),
			http.StatusBadRequest, "list with limit=-1")

		for _, id := range created {
			if err := images.Delete(t.Context(), a, id).ExtractErr(); err != nil {
				t.Errorf("delete %s: %v", byID[id], err)
			}
		}
	})

	t.Run("Filters", func(t *testing.T) {
		const grp = "gc-filters"
		shared, community, private := images.ImageVisibilityShared, images.ImageVisibilityCommunity, images.ImageVisibilityPrivate
		hidden := true
		names := map[string]string{}
		mk := func(name, format string, vis images.ImageVisibility, hide bool, tags []string, size int) *images.Image {
			t.Helper()
			opts := images.CreateOpts{
				Name: name, ContainerFormat: "bare", DiskFormat: format, Visibility: &vis, Tags: append([]string{grp}, tags...),
			}
			if hide {
				opts.Hidden = &hidden
			}
			img := gcCreate(t, a, opts)
			names[img.ID] = name
			if size > 0 {
				data := gcData(size, uint64(size))
				if format == "qcow2" {
					// The server takes only qcow2 data as qcow2: give it a
					// header (version 3, no backing file, no features).
					copy(data, "QFI\xfb\x00\x00\x00\x03")
					clear(data[8:80])
				}
				gcUpload(t, a, img.ID, data)
			}
			return gcGet(t, a, img.ID)
		}
		a1 := mk("flt-a", "raw", private, false, []string{"x"}, 100)
		a2 := mk("flt-b", "qcow2", shared, false, []string{"x", "y"}, 300)
		a3 := mk("flt-c", "iso", community, false, []string{"y"}, 0)
		a4 := mk("flt-hidden", "raw", private, true, nil, 0)
		// b1 is created a whole second after the others were last changed.
		gcWaitSecond(a1.UpdatedAt, a2.UpdatedAt, a3.UpdatedAt, a4.UpdatedAt)
		b1 := mk("flt-late", "raw", private, false, nil, 200)
		if !b1.CreatedAt.After(a1.UpdatedAt) || !b1.CreatedAt.After(a2.UpdatedAt) {
			t.Fatalf("the late image's created_at %v is not after the others' updated_at %v, %v",
				b1.CreatedAt, a1.UpdatedAt, a2.UpdatedAt)
		}
		ids := func(imgs ...*images.Image) []string {
			out := make([]string, len(imgs))
			for i, img := range imgs {
				out[i] = img.ID
			}
			return out
		}
		tags := func(more ...string) []string { return append([]string{grp}, more...) }
		far := time.Now().UTC().Add(time.Hour)
		long := b1.CreatedAt.Add(-time.Hour)
		cases := []struct {
			what             string
			opts             images.ListOpts
			want             []string
			sizeMin, sizeMax int64
		}{
			{"no other filter: os_hidden images left out", images.ListOpts{}, ids(b1, a3, a2, a1), 0, 0},
			{"os_hidden=true", images.ListOpts{Hidden: true}, ids(a4), 0, 0},
			{"name", images.ListOpts{Name: "flt-b"}, ids(a2), 0, 0},
			{"name in:", images.ListOpts{Name: "in:flt-a,flt-late"}, ids(b1, a1), 0, 0},
			{"id", images.ListOpts{ID: a3.ID}, ids(a3), 0, 0},
			{"id in:", images.ListOpts{ID: "in:" + a1.ID + "," + a2.ID}, ids(a2, a1), 0, 0},
			{"status active", images.ListOpts{Status: images.ImageStatusActive}, ids(b1, a2, a1), 0, 0},
			{"status queued", images.ListOpts{Status: images.ImageStatusQueued}, ids(a3), 0, 0},
			{"status in:", images.ListOpts{Status: "in:queued,active"}, ids(b1, a3, a2, a1), 0, 0},
			{"status bogus", images.ListOpts{Status: "bogus"}, nil, 0, 0},
			{"visibility private", images.ListOpts{Visibility: private}, ids(b1, a1), 0, 0},
			{"visibility shared", images.ListOpts{Visibility: shared}, ids(a2), 0, 0},
			{"visibility community", images.ListOpts{Visibility: community}, ids(a3), 0, 0},
			{"owner", images.ListOpts{Owner: alpha.ID}, ids(b1, a3, a2, a1), 0, 0},
			{"owner of another project", images.ListOpts{Owner: beta.ID}, nil, 0, 0},
			{"tag x", images.ListOpts{Tags: tags("x")}, ids(a2, a1), 0, 0},
			{"tags x and y", images.ListOpts{Tags: tags("x", "y")}, ids(a2), 0, 0},
			{"tag nope", images.ListOpts{Tags: tags("nope")}, nil, 0, 0},
			{"disk_format", images.ListOpts{DiskFormat: "qcow2"}, ids(a2), 0, 0},
			{"disk_format in:", images.ListOpts{DiskFormat: "in:raw,iso"}, ids(b1, a3, a1), 0, 0},
			{"container_format", images.ListOpts{ContainerFormat: "bare"}, ids(b1, a3, a2, a1), 0, 0},
			// Images without data have no size, so no size filter matches them.
			{"size_min", images.ListOpts{}, ids(b1, a2), 200, 0},
			{"size_max", images.ListOpts{}, ids(b1, a1), 0, 200},
			{"size_min and size_max", images.ListOpts{}, ids(b1), 150, 250},
			{"size_min = size_max", images.ListOpts{}, ids(a2), 300, 300},
			{"created_at gte: the late image's", images.ListOpts{
				CreatedAtQuery: &images.ImageDateQuery{Date: b1.CreatedAt, Filter: images.FilterGTE}}, ids(b1), 0, 0},
			{"created_at lt: the late image's", images.ListOpts{
				CreatedAtQuery: &images.ImageDateQuery{Date: b1.CreatedAt, Filter: images.FilterLT}}, ids(a3, a2, a1), 0, 0},
			{"created_at gt: an hour before", images.ListOpts{
				CreatedAtQuery: &images.ImageDateQuery{Date: long, Filter: images.FilterGT}}, ids(b1, a3, a2, a1), 0, 0},
			{"created_at gt: an hour from now", images.ListOpts{
				CreatedAtQuery: &images.ImageDateQuery{Date: far, Filter: images.FilterGT}}, nil, 0, 0},
			{"created_at lte: an hour from now", images.ListOpts{
				CreatedAtQuery: &images.ImageDateQuery{Date: far, Filter: images.FilterLTE}}, ids(b1, a3, a2, a1), 0, 0},
			{"created_at neq: an hour before", images.ListOpts{
				CreatedAtQuery: &images.ImageDateQuery{Date: long, Filter: images.FilterNEQ}}, ids(b1, a3, a2, a1), 0, 0},
			{"created_at eq: an hour before", images.ListOpts{
				CreatedAtQuery: &images.ImageDateQuery{Date: long, Filter: images.FilterEQ}}, nil, 0, 0},
			{"updated_at gte: the late image's creation", images.ListOpts{
				UpdatedAtQuery: &images.ImageDateQuery{Date: b1.CreatedAt, Filter: images.FilterGTE}}, ids(b1), 0, 0},
			{"status, visibility, tag and size", images.ListOpts{
				Status: images.ImageStatusActive, Visibility: private, Tags: tags("x")}, ids(a1), 50, 150},
		}
		for _, c := range cases {
			opts := c.opts
			if opts.Tags == nil {
				opts.Tags = []string{grp}
			}
			// Pages of two also check that next carries the filters.
			opts.Limit = 2
			gcSameIDs(t, c.what, gcList(t, a, gcSizeOpts{opts, c.sizeMin, c.sizeMax}), c.want, names)
		}
		gcWantStatus(t, gcListError(t, a, images.ListOpts{Visibility: "bogus"}),
			http.StatusBadRequest, "list with visibility=bogus")

		for id := range names {
			if err := images.Delete(t.Context(), a, id).ExtractErr(); err != nil {
				t.Errorf("delete %s: %v", names[id], err)
			}
		}
	})

	t.Run("Patch", func(t *testing.T) {
		img := gcCreate(t, a, images.CreateOpts{
			Name: "gc-patch", ContainerFormat: "bare", DiskFormat: "qcow2", Tags: []string{"gc-patch"},
			Properties: map[string]string{"os_distro": "ubuntu", "gc_remove_me": "x"},
		})
		community := images.ImageVisibilityCommunity
		updated, err := images.Update(t.Context(), a, img.ID, images.UpdateOpts{
			images.ReplaceImageName{NewName: "gc-patched"},
			images.UpdateImageProperty{Op: images.AddOp, Name: "os_version", Value: "24.04"},
			images.UpdateImageProperty{Op: images.ReplaceOp, Name: "os_distro", Value: "debian"},
			images.UpdateImageProperty{Op: images.RemoveOp, Name: "gc_remove_me"},
			images.ReplaceImageTags{NewTags: []string{"gc-patch", "patched"}},
			images.ReplaceImageMinDisk{NewMinDisk: 10},
			images.ReplaceImageMinRam{NewMinRam: 512},
			images.UpdateVisibility{Visibility: community},
			images.ReplaceImageHidden{NewHidden: true},
			images.ReplaceImageProtected{NewProtected: true},
		}).Extract()
		if err != nil {
			t.Fatalf("PATCH: %v", err)
		}
		want := gcWant{
			Name: "gc-patched", Status: images.ImageStatusQueued, Visibility: community, Owner: alpha.ID,
			Tags: []string{"gc-patch", "patched"}, ContainerFormat: "bare", DiskFormat: "qcow2",
			MinDisk: 10, MinRAM: 512, Hidden: true, Protected: true,
			Properties: map[string]any{"os_distro": "debian", "os_version": "24.04"},
		}
		checkImage(t, "PATCH's answer", updated, want)
		checkImage(t, "image after PATCH", gcGet(t, a, img.ID), want)
		if _, ok := updated.Properties["gc_remove_me"]; ok {
			t.Errorf("removed property gc_remove_me is still there: %v", updated.Properties)
		}
		if updated.UpdatedAt.Before(img.UpdatedAt) {
			t.Errorf("updated_at went from %v back to %v", img.UpdatedAt, updated.UpdatedAt)
		}
		gcSameIDs(t, "hidden image in the default list", gcList(t, a, images.ListOpts{Tags: []string{"gc-patch"}}),
			nil, nil)
		gcSameIDs(t, "hidden image with os_hidden=true",
			gcList(t, a, images.ListOpts{Hidden: true, Tags: []string{"gc-patch"}}), []string{img.ID}, nil)

		err = images.Delete(t.Context(), a, img.ID).ExtractErr()
		gcWantStatus(t, err, http.StatusForbidden, "delete a protected image")
		_, err = images.Update(t.Context(), a, img.ID, images.UpdateOpts{images.ReplaceImageChecksum{Checksum: "0123"}}).Extract()
		gcWantStatus(t, err, http.StatusForbidden, "PATCH replace the read-only checksum")
		_, err = images.Update(t.Context(), a, img.ID, images.UpdateOpts{
			images.UpdateImageProperty{Op: images.AddOp, Name: "status", Value: "active"}}).Extract()
		gcWantStatus(t, err, http.StatusForbidden, "PATCH add the read-only status")
		_, err = images.Update(t.Context(), a, img.ID, images.UpdateOpts{
			images.UpdateImageProperty{Op: images.RemoveOp, Name: "gc_never_set"}}).Extract()
		gcWantStatus(t, err, http.StatusConflict, "PATCH remove a property the image lacks")
		_, err = images.Update(t.Context(), a, img.ID, images.UpdateOpts{
			images.UpdateVisibility{Visibility: images.ImageVisibilityPublic}}).Extract()
		gcWantStatus(t, err, http.StatusForbidden, "PATCH visibility public as a member")
		if got := gcGet(t, a, img.ID); got.Name != "gc-patched" || got.Visibility != community {
			t.Errorf("refused PATCHes changed the image: name %q visibility %q", got.Name, got.Visibility)
		}

		_, err = images.Update(t.Context(), a, img.ID, images.UpdateOpts{
			images.ReplaceImageProtected{NewProtected: false}}).Extract()
		if err != nil {
			t.Fatalf("PATCH protected false: %v", err)
		}
		if err := images.Delete(t.Context(), a, img.ID).ExtractErr(); err != nil {
			t.Errorf("delete once unprotected: %v", err)
		}
	})

	t.Run("Tags", func(t *testing.T) {
		img := gcCreate(t, a, images.CreateOpts{Name: "gc-tags", Tags: []string{"one"}})
		ctx := t.Context()
		for range 2 { // adding a tag twice is not an error
			if err := gcNoContent(ctx, a, http.MethodPut, "images", img.ID, "tags", "two"); err != nil {
				t.Fatalf("PUT tag two: %v", err)
			}
		}
		if got := gcSorted(gcGet(t, a, img.ID).Tags); !slices.Equal(got, []string{"one", "two"}) {
			t.Errorf("tags after PUT %v, want [one two]", got)
		}
		gcSameIDs(t, "list by the added tag", gcList(t, a, images.ListOpts{Tags: []string{"one", "two"}}),
			[]string{img.ID}, nil)
		if err := gcNoContent(ctx, a, http.MethodDelete, "images", img.ID, "tags", "one"); err != nil {
			t.Fatalf("DELETE tag one: %v", err)
		}
		if got := gcGet(t, a, img.ID).Tags; !slices.Equal(got, []string{"two"}) {
			t.Errorf("tags after DELETE %v, want [two]", got)
		}
		gcWantStatus(t, gcNoContent(ctx, a, http.MethodDelete, "images", img.ID, "tags", "nope"),
			http.StatusNotFound, "DELETE an absent tag")
		gcWantStatus(t, gcNoContent(ctx, a, http.MethodPut, "images", "0d5b8c3e-6f0e-4d7c-9b5e-2d1c0e9f8a77", "tags", "x"),
			http.StatusNotFound, "PUT a tag on an unknown image")
		if err := images.Delete(ctx, a, img.ID).ExtractErr(); err != nil {
			t.Errorf("delete: %v", err)
		}
	})

	t.Run("DeactivateReactivate", func(t *testing.T) {
		ctx := t.Context()
		img := gcCreate(t, a, images.CreateOpts{Name: "gc-deactivate", ContainerFormat: "bare", DiskFormat: "raw"})
		gcWantStatus(t, gcAction(ctx, a, img.ID, "deactivate"), http.StatusForbidden, "deactivate a queued image")
		data := gcData(70_001, 3)
		gcUpload(t, a, img.ID, data)

		if err := gcAction(ctx, a, img.ID, "deactivate"); err != nil {
			t.Fatalf("deactivate: %v", err)
		}
		if got := gcGet(t, a, img.ID); got.Status != images.ImageStatusDeactivated {
			t.Errorf("status after deactivate %q, want deactivated", got.Status)
		}
		gcSameIDs(t, "list status=deactivated",
			gcList(t, a, images.ListOpts{Status: images.ImageStatusDeactivated}), []string{img.ID}, nil)
		_, _, err := gcDownload(t, a, img.ID)
		gcWantStatus(t, err, http.StatusForbidden, "download a deactivated image as a member")
		if err := gcAction(ctx, a, img.ID, "deactivate"); err != nil {
			t.Errorf("deactivate a deactivated image (Glance: 204): %v", err)
		}

		if err := gcAction(ctx, a, img.ID, "reactivate"); err != nil {
			t.Fatalf("reactivate: %v", err)
		}
		if got := gcGet(t, a, img.ID); got.Status != images.ImageStatusActive {
			t.Errorf("status after reactivate %q, want active", got.Status)
		}
		if down, _, err := gcDownload(t, a, img.ID); err != nil || !bytes.Equal(down, data) {
			t.Errorf("download after reactivate: %d bytes, %v; want the %d uploaded", len(down), err, len(data))
		}
		gcWantStatus(t, gcAction(ctx, a, "0d5b8c3e-6f0e-4d7c-9b5e-2d1c0e9f8a77", "deactivate"),
			http.StatusNotFound, "deactivate an unknown image")
		if err := images.Delete(ctx, a, img.ID).ExtractErr(); err != nil {
			t.Errorf("delete: %v", err)
		}
	})

	t.Run("Share", func(t *testing.T) {
		ctx := t.Context()
		shared := images.ImageVisibilityShared
		img := gcCreate(t, a, images.CreateOpts{
			Name: "gc-shared", ContainerFormat: "bare", DiskFormat: "raw", Visibility: &shared, Tags: []string{"gc-share"},
		})
		id := img.ID
		data := gcData(64<<10, 7)
		gcUpload(t, a, id, data)
		inList := func(opts images.ListOpts) bool {
			t.Helper()
			ids := gcList(t, b, opts)
			n := 0
			for _, got := range ids {
				if got == id {
					n++
				}
			}
			if n > 1 {
				t.Errorf("the shared image is %d times in beta's list %+v", n, opts)
			}
			return n == 1
		}

		// Before it is shared, beta neither sees nor lists it.
		_, err := images.Get(ctx, b, id).Extract()
		gcWantStatus(t, err, http.StatusNotFound, "beta gets alpha's shared image before it is a member")
		if inList(images.ListOpts{}) || inList(images.ListOpts{MemberStatus: images.ImageMemberStatusAll}) {
			t.Errorf("beta lists alpha's image before it is a member")
		}

		m, err := members.Create(ctx, a, id, beta.ID).Extract()
		if err != nil {
			t.Fatalf("add beta as a member: %v", err)
		}
		if m.ImageID != id || m.MemberID != beta.ID || m.Status != "pending" || m.Schema != "/v2/schemas/member" {
			t.Errorf("new member %+v, want image %s, member %s, pending, /v2/schemas/member", m, id, beta.ID)
		}
		_, err = members.Create(ctx, a, id, beta.ID).Extract()
		gcWantStatus(t, err, http.StatusConflict, "add beta a second time")

		// Pending: usable, but out of beta's default list.
		if got := gcGet(t, b, id); got.Owner != alpha.ID || got.Name != "gc-shared" {
			t.Errorf("beta gets owner %q name %q, want %q gc-shared", got.Owner, got.Name, alpha.ID)
		}
		if inList(images.ListOpts{}) {
			t.Errorf("beta's default list holds the image while its membership is pending")
		}
		if !inList(images.ListOpts{MemberStatus: images.ImageMemberStatusPending}) ||
			!inList(images.ListOpts{MemberStatus: images.ImageMemberStatusAll}) {
			t.Errorf("beta's list with member_status pending or all lacks the image")
		}
		if inList(images.ListOpts{MemberStatus: images.ImageMemberStatusAccepted}) {
			t.Errorf("beta's list with member_status accepted holds a pending image")
		}
		checkMembers(t, "beta lists the members", b, id, map[string]string{beta.ID: "pending"})
		checkMembers(t, "alpha lists the members", a, id, map[string]string{beta.ID: "pending"})
		if got, err := members.Get(ctx, b, id, beta.ID).Extract(); err != nil || got.Status != "pending" {
			t.Errorf("beta gets its membership: %+v, %v", got, err)
		}

		// Only the member changes its status; only the owner adds members.
		_, err = members.Update(ctx, a, id, beta.ID, members.UpdateOpts{Status: "accepted"}).Extract()
		gcWantStatus(t, err, http.StatusForbidden, "the owner accepts for the member")
		_, err = members.Create(ctx, b, id, "7b3fd9e8-5f5e-4b6e-9d62-4a4f4b2f5a10").Extract()
		gcWantStatus(t, err, http.StatusForbidden, "the member adds a member")
		_, err = members.Update(ctx, b, id, beta.ID, members.UpdateOpts{Status: "bogus"}).Extract()
		gcWantStatus(t, err, http.StatusBadRequest, "the member sets status bogus")

		m, err = members.Update(ctx, b, id, beta.ID, members.UpdateOpts{Status: "accepted"}).Extract()
		if err != nil {
			t.Fatalf("beta accepts: %v", err)
		}
		if m.Status != "accepted" || m.MemberID != beta.ID || m.ImageID != id {
			t.Errorf("accepted member %+v", m)
		}
		if !inList(images.ListOpts{}) {
			t.Errorf("beta's default list lacks the image it accepted")
		}
		gcSameIDs(t, "beta lists by the shared image's tag", gcList(t, b, images.ListOpts{Tags: []string{"gc-share"}}),
			[]string{id}, nil)
		gcSameIDs(t, "beta lists visibility=shared", gcList(t, b, images.ListOpts{Visibility: shared, Owner: alpha.ID}),
			[]string{id}, nil)
		if down, _, err := gcDownload(t, b, id); err != nil || !bytes.Equal(down, data) {
			t.Errorf("beta downloads: %d bytes, %v; want the %d uploaded", len(down), err, len(data))
		}
		checkMembers(t, "alpha lists the accepted member", a, id, map[string]string{beta.ID: "accepted"})

		// A member may use the image, not change or delete it.
		_, err = images.Update(ctx, b, id, images.UpdateOpts{images.ReplaceImageName{NewName: "mine"}}).Extract()
		gcWantStatus(t, err, http.StatusForbidden, "the member renames the image")
		gcWantStatus(t, images.Delete(ctx, b, id).ExtractErr(), http.StatusForbidden, "the member deletes the image")

		if _, err := members.Update(ctx, b, id, beta.ID, members.UpdateOpts{Status: "rejected"}).Extract(); err != nil {
			t.Fatalf("beta rejects: %v", err)
		}
		if inList(images.ListOpts{}) || !inList(images.ListOpts{MemberStatus: images.ImageMemberStatusRejected}) {
			t.Errorf("a rejected image is in beta's default list, or missing from member_status=rejected")
		}

		if err := members.Delete(ctx, a, id, beta.ID).ExtractErr(); err != nil {
			t.Fatalf("alpha removes beta: %v", err)
		}
		_, err = images.Get(ctx, b, id).Extract()
		gcWantStatus(t, err, http.StatusNotFound, "beta gets the image once removed as a member")
		if inList(images.ListOpts{MemberStatus: images.ImageMemberStatusAll}) {
			t.Errorf("beta lists the image once removed as a member")
		}
		checkMembers(t, "alpha lists no members", a, id, map[string]string{})

		private := images.ImageVisibilityPrivate
		priv := gcCreate(t, a, images.CreateOpts{Name: "gc-private-share", Visibility: &private})
		_, err = members.Create(ctx, a, priv.ID, beta.ID).Extract()
		gcWantStatus(t, err, http.StatusForbidden, "add a member to a private image")

		for _, x := range []string{id, priv.ID} {
			if err := images.Delete(ctx, a, x).ExtractErr(); err != nil {
				t.Errorf("delete: %v", err)
			}
		}
	})

	t.Run("Isolation", func(t *testing.T) {
		ctx := t.Context()
		private := images.ImageVisibilityPrivate
		img := gcCreate(t, a, images.CreateOpts{
			Name: "gc-isolated", ContainerFormat: "bare", DiskFormat: "raw", Visibility: &private,
		})
		id := img.ID
		gcUpload(t, a, id, gcData(1000, 5))
		_, err := images.Get(ctx, b, id).Extract()
		gcWantStatus(t, err, http.StatusNotFound, "beta gets alpha's private image")
		_, _, err = gcDownload(t, b, id)
		gcWantStatus(t, err, http.StatusNotFound, "beta downloads alpha's private image")
		_, err = images.Update(ctx, b, id, images.UpdateOpts{images.ReplaceImageName{NewName: "x"}}).Extract()
		gcWantStatus(t, err, http.StatusNotFound, "beta PATCHes alpha's private image")
		gcWantStatus(t, images.Delete(ctx, b, id).ExtractErr(), http.StatusNotFound, "beta deletes alpha's private image")
		gcWantStatus(t, gcNoContent(ctx, b, http.MethodPut, "images", id, "tags", "x"),
			http.StatusNotFound, "beta tags alpha's private image")
		gcWantStatus(t, gcNoContent(ctx, b, http.MethodDelete, "images", id, "tags", "x"),
			http.StatusNotFound, "beta untags alpha's private image")
		gcWantStatus(t, gcAction(ctx, b, id, "deactivate"), http.StatusNotFound, "beta deactivates alpha's private image")
		_, err = members.List(b, id).AllPages(ctx)
		gcWantStatus(t, err, http.StatusNotFound, "beta lists the members of alpha's private image")
		_, err = members.Create(ctx, b, id, beta.ID).Extract()
		gcWantStatus(t, err, http.StatusNotFound, "beta adds itself to alpha's private image")
		for _, opts := range []images.ListOpts{{}, {ID: id}, {MemberStatus: images.ImageMemberStatusAll}, {Owner: alpha.ID}} {
			if slices.Contains(gcList(t, b, opts), id) {
				t.Errorf("beta's list %+v holds alpha's private image", opts)
			}
		}
		if got := gcGet(t, a, id); got.Name != "gc-isolated" || got.Status != images.ImageStatusActive {
			t.Errorf("beta's attempts changed alpha's image: %q %q", got.Name, got.Status)
		}
		if err := images.Delete(ctx, a, id).ExtractErr(); err != nil {
			t.Errorf("delete: %v", err)
		}
	})

	t.Run("GlanceDirectImport", func(t *testing.T) {
		ctx := t.Context()
		info, err := imageimport.Get(ctx, a).Extract()
		if err != nil {
			t.Fatalf("GET /v2/info/import: %v", err)
		}
		if !slices.Contains(info.ImportMethods.Value, string(imageimport.GlanceDirectMethod)) {
			t.Errorf("import methods %q lack glance-direct", info.ImportMethods.Value)
		}
		img := gcCreate(t, a, images.CreateOpts{Name: "gc-import", ContainerFormat: "bare", DiskFormat: "raw"})
		data := gcData(512<<10+3, 11)
		if err := imagedata.Stage(ctx, a, img.ID, bytes.NewReader(data)).ExtractErr(); err != nil {
			t.Fatalf("stage: %v", err)
		}
		if got := gcGet(t, a, img.ID); got.Status != images.ImageStatusUploading {
			t.Errorf("status after stage %q, want uploading", got.Status)
		}
		err = imageimport.Create(ctx, a, img.ID, imageimport.CreateOpts{Name: imageimport.GlanceDirectMethod}).ExtractErr()
		if err != nil {
			t.Fatalf("import glance-direct: %v", err)
		}
		got := gcWaitActive(t, a, img.ID)
		if got.SizeBytes != int64(len(data)) || got.Checksum != gcMD5(data) {
			t.Errorf("imported image has size %d checksum %s, want %d %s", got.SizeBytes, got.Checksum, len(data), gcMD5(data))
		}
		if down, _, err := gcDownload(t, a, img.ID); err != nil || !bytes.Equal(down, data) {
			t.Errorf("download the imported image: %d bytes, %v; want the %d staged", len(down), err, len(data))
		}
		if err := images.Delete(ctx, a, img.ID).ExtractErr(); err != nil {
			t.Errorf("delete: %v", err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		ctx := t.Context()
		img := gcCreate(t, a, images.CreateOpts{Name: "gc-delete", ContainerFormat: "bare", DiskFormat: "raw"})
		gcUpload(t, a, img.ID, gcData(4096, 13))
		if err := images.Delete(ctx, a, img.ID).ExtractErr(); err != nil {
			t.Fatalf("delete: %v", err)
		}
		_, err := images.Get(ctx, a, img.ID).Extract()
		gcWantStatus(t, err, http.StatusNotFound, "get a deleted image")
		_, _, err = gcDownload(t, a, img.ID)
		gcWantStatus(t, err, http.StatusNotFound, "download a deleted image")
		gcWantStatus(t, images.Delete(ctx, a, img.ID).ExtractErr(), http.StatusNotFound, "delete a deleted image")
		if ids := gcList(t, a, images.ListOpts{ID: img.ID}); len(ids) != 0 {
			t.Errorf("a list by the deleted image's id gives %v", ids)
		}
	})

	t.Run("RevokedTokenV3", func(t *testing.T) {
		ctx := t.Context()
		img := gcCreate(t, a, images.CreateOpts{Name: "gc-revoke"})
		p := alphaByIDP
		c := gcImageClient(t, p)
		gcGet(t, c, img.ID)
		tok := p.Token()
		idc, err := openstack.NewIdentityV3(p, gophercloud.EndpointOpts{})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := tokens3.Validate(ctx, idc, tok); !ok || err != nil {
			t.Errorf("validate a fresh token: %v, %v", ok, err)
		}
		// The token revokes itself, as "openstack token revoke" does.
		if err := tokens3.Revoke(ctx, idc, tok).Err; err != nil {
			t.Fatalf("revoke: %v", err)
		}
		mainIdentity, err := openstack.NewIdentityV3(alphaP, gophercloud.EndpointOpts{})
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := tokens3.Validate(ctx, mainIdentity, tok); ok || err != nil {
			t.Errorf("validate a revoked token: %v, %v; want false, nil", ok, err)
		}
		_, err = images.Get(ctx, c, img.ID).Extract()
		gcWantStatus(t, err, http.StatusUnauthorized, "get an image with a revoked token")
		// Other tokens of the same user keep working.
		gcGet(t, a, img.ID)
		if err := images.Delete(ctx, a, img.ID).ExtractErr(); err != nil {
			t.Errorf("delete: %v", err)
		}
	})
}

// TestGophercloudNHNProfile checks the nhn profile's own rules as
// gophercloud meets them, with identity v2.0 as NHN Cloud's Terraform
// provider authenticates.
func TestGophercloudNHNProfile(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir(), map[string]string{"CLOUDIMAGE_ADMIN_PASSWORD": testAdminPassword})
	// Terraform's NHN Cloud guide gives identity v2.0 and the tenant ID.
	session := gcSessions(t, s, gcSessionSpec{Project: "nhn-team", User: "carol", Ways: []gcAuthWay{gcV2ByID}})[0]
	team, p2 := session.gcProject, session.Providers[0]
	if res, ok := p2.GetAuthResult().(tokens2.CreateResult); !ok {
		t.Errorf("the v2.0 authentication result is a %T", p2.GetAuthResult())
	} else if tok, err := res.ExtractToken(); err != nil || tok.Tenant.Name != team.Name || tok.Tenant.ID != team.ID {
		t.Errorf("v2.0 token scoped by tenant ID: %+v, %v; want tenant %s %q", tok, err, team.ID, team.Name)
	}
	c := gcImageClient(t, p2)
	ctx := t.Context()
	linux := map[string]string{"os_type": "linux"}

	_, err := images.Create(ctx, c, images.CreateOpts{Name: "no-os-type", ContainerFormat: "bare", DiskFormat: "raw"}).Extract()
	gcWantStatus(t, err, http.StatusBadRequest, "create without os_type")
	_, err = images.Create(ctx, c, images.CreateOpts{Name: "bad-os-type", Properties: map[string]string{"os_type": "plan9"}}).Extract()
	gcWantStatus(t, err, http.StatusBadRequest, "create with os_type plan9")
	for _, v := range []images.ImageVisibility{images.ImageVisibilityCommunity, images.ImageVisibilityPublic} {
		_, err = images.Create(ctx, c, images.CreateOpts{Name: "vis", Visibility: &v, Properties: linux}).Extract()
		gcWantStatus(t, err, http.StatusForbidden, "create with visibility "+string(v))
	}
	_, err = images.Create(ctx, c, images.CreateOpts{Name: "reserved", Tags: []string{"_AVAILABLE_"}, Properties: linux}).Extract()
	gcWantStatus(t, err, http.StatusBadRequest, "create with the reserved tag _AVAILABLE_")

	private := images.ImageVisibilityPrivate
	img := gcCreate(t, c, images.CreateOpts{
		Name: "nhn-linux", ContainerFormat: "bare", DiskFormat: "raw", Visibility: &private, Properties: linux,
	})
	if img.Properties["os_type"] != "linux" || img.Visibility != private || img.Owner != team.ID {
		t.Errorf("created os_type %v visibility %q owner %q", img.Properties["os_type"], img.Visibility, img.Owner)
	}
	gcWantStatus(t, gcNoContent(ctx, c, http.MethodPut, "images", img.ID, "tags", "_AVAILABLE_"),
		http.StatusBadRequest, "PUT the reserved tag _AVAILABLE_")
	_, err = images.Update(ctx, c, img.ID, images.UpdateOpts{images.ReplaceImageTags{NewTags: []string{"_AVAILABLE_"}}}).Extract()
	gcWantStatus(t, err, http.StatusBadRequest, "PATCH tags to the reserved _AVAILABLE_")
	_, err = images.Update(ctx, c, img.ID, images.UpdateOpts{images.UpdateVisibility{Visibility: images.ImageVisibilityCommunity}}).Extract()
	gcWantStatus(t, err, http.StatusForbidden, "PATCH visibility community")

	// Download only once the image allows it.
	data := gcData(200_003, 17)
	gcUpload(t, c, img.ID, data)
	_, _, err = gcDownload(t, c, img.ID)
	gcWantStatus(t, err, http.StatusForbidden, "download without nhncloud_allow_download")
	_, err = images.Update(ctx, c, img.ID, images.UpdateOpts{
		images.UpdateImageProperty{Op: images.AddOp, Name: "nhncloud_allow_download", Value: "true"}}).Extract()
	if err != nil {
		t.Fatalf("PATCH nhncloud_allow_download: %v", err)
	}
	if down, _, err := gcDownload(t, c, img.ID); err != nil || !bytes.Equal(down, data) {
		t.Errorf("download with nhncloud_allow_download=true: %d bytes, %v; want the %d uploaded", len(down), err, len(data))
	}

	// Paging works the same in this profile.
	var created []string
	for i := range 4 {
		img := gcCreate(t, c, images.CreateOpts{
			Name: "nhn-page-" + string(rune('a'+i)), Tags: []string{"nhn-pages"}, Properties: linux,
		})
		created = append(created, img.ID)
	}
	pages := gcListPages(t, c, images.ListOpts{Limit: 3, Tags: []string{"nhn-pages"}})
	if len(pages) != 2 {
		t.Errorf("4 images in pages of 3 took %d pages, want 2", len(pages))
	}
	gcSameIDs(t, "AllPages of limit 3", gcAllPages(t, c, images.ListOpts{Limit: 3, Tags: []string{"nhn-pages"}}),
		gcReversed(created), nil)
	if err := images.Delete(ctx, c, img.ID).ExtractErr(); err != nil {
		t.Errorf("delete: %v", err)
	}
}

// gcWant is what an image should be; Properties holds the extra keys to
// check, a nil value meaning JSON null.
type gcWant struct {
	Name            string
	Status          images.ImageStatus
	Visibility      images.ImageVisibility
	Owner           string
	Tags            []string
	ContainerFormat string
	DiskFormat      string
	MinDisk, MinRAM int
	Size            int64
	Checksum        string
	Hidden          bool
	Protected       bool
	Properties      map[string]any
}

// checkImage compares img with want.
func checkImage(t *testing.T, what string, img *images.Image, want gcWant) {
	t.Helper()
	got := gcWant{
		Name: img.Name, Status: img.Status, Visibility: img.Visibility, Owner: img.Owner, Tags: gcSorted(img.Tags),
		ContainerFormat: img.ContainerFormat, DiskFormat: img.DiskFormat,
		MinDisk: img.MinDiskGigabytes, MinRAM: img.MinRAMMegabytes, Size: img.SizeBytes, Checksum: img.Checksum,
		Hidden: img.Hidden, Protected: img.Protected,
	}
	props := want.Properties
	want.Tags, want.Properties = gcSorted(want.Tags), nil
	if !gcEqualWant(got, want) {
		t.Errorf("%s is\n%+v\nwant\n%+v", what, got, want)
	}
	for k, v := range props {
		gv, ok := img.Properties[k]
		if !ok || gv != v {
			t.Errorf("%s: property %s is %#v (present %v), want %#v", what, k, gv, ok, v)
		}
	}
}

func gcEqualWant(x, y gcWant) bool {
	tx, ty := x.Tags, y.Tags
	x.Tags, y.Tags = nil, nil
	return slices.Equal(tx, ty) && x.Name == y.Name && x.Status == y.Status && x.Visibility == y.Visibility &&
		x.Owner == y.Owner && x.ContainerFormat == y.ContainerFormat && x.DiskFormat == y.DiskFormat &&
		x.MinDisk == y.MinDisk && x.MinRAM == y.MinRAM && x.Size == y.Size && x.Checksum == y.Checksum &&
		x.Hidden == y.Hidden && x.Protected == y.Protected
}

// gcSorted returns a sorted copy of tags, never nil: Glance's tags are a
// set.
func gcSorted(tags []string) []string {
	out := append([]string{}, tags...)
	slices.Sort(out)
	return out
}

// checkV3Token checks a v3 token of p's user scoped to p.
func checkV3Token(t *testing.T, res tokens3.CreateResult, p gcProject) {
	t.Helper()
	proj, err := res.ExtractProject()
	if err != nil || proj == nil {
		t.Fatalf("the token's project: %v, %v", proj, err)
	}
	if proj.ID != p.ID || proj.Name != p.Name || proj.Domain.Name != "Default" {
		t.Errorf("the token's project is %+v, want %s %s in domain Default", proj, p.ID, p.Name)
	}
	if user, err := res.ExtractUser(); err != nil || user.Name != p.User {
		t.Errorf("the token's user is %+v, %v; want %s", user, err, p.User)
	}
	roles, err := res.ExtractRoles()
	if err != nil || !slices.ContainsFunc(roles, func(r tokens3.Role) bool { return r.Name == "member" }) {
		t.Errorf("the token's roles are %+v, %v; want member among them", roles, err)
	}
	if tok, err := res.ExtractToken(); err != nil || tok.ID == "" || !tok.ExpiresAt.After(time.Now()) {
		t.Errorf("the token is %+v, %v; want an ID and an expiry in the future", tok, err)
	}
}

// checkMembers checks the members of image id as c lists them.
func checkMembers(t *testing.T, what string, c *gophercloud.ServiceClient, id string, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	err := members.List(c, id).EachPage(t.Context(), func(_ context.Context, p pagination.Page) (bool, error) {
		ms, err := members.ExtractMembers(p)
		for _, m := range ms {
			if m.ImageID != id {
				t.Errorf("%s: member %+v of another image", what, m)
			}
			got[m.MemberID] = m.Status
		}
		return true, err
	})
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	if len(got) != len(want) {
		t.Errorf("%s: %v, want %v", what, got, want)
		return
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %v, want %v", what, got, want)
		}
	}
}

// gcWaitActive waits until an import made image id active, and fails the
// test if it goes through a status an import does not, or takes too long.
func gcWaitActive(t *testing.T, c *gophercloud.ServiceClient, id string) *images.Image {
	t.Helper()
	deadline := time.Now().Add(waitTimeout / 2)
	var seen []images.ImageStatus
	for {
		img := gcGet(t, c, id)
		if len(seen) == 0 || seen[len(seen)-1] != img.Status {
			seen = append(seen, img.Status)
		}
		switch img.Status {
		case images.ImageStatusActive:
			return img
		case images.ImageStatusUploading, images.ImageStatusImporting:
		default:
			t.Fatalf("import went through statuses %v", seen)
		}
		if time.Now().After(deadline) {
			t.Fatalf("import not active after %s; statuses %v", waitTimeout/2, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
