package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// Helpers for the tests that drive the server with gophercloud, the Go
// OpenStack SDK, the way a user's program would.

// gcRegion is the region the servers under test name in their catalogs.
const gcRegion = "RegionOne"

// gcMaxPages bounds every walk through a list, so that a server whose
// next links never end fails the test instead of hanging it.
const gcMaxPages = 50

// gcProject is a project made with "project create" and its one user,
// made with "user create --password".
type gcProject struct {
	ID, Name, User, Password string
}

// gcNewProject creates a project called name with a member user on the
// database under dataDir, through run as an operator would.
func gcNewProject(ctx context.Context, dataDir, name, user string) (gcProject, error) {
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"--data-dir", dataDir, "project", "create", name},
		getenvFrom(nil), nil, &stdout, &stderr); err != nil {
		return gcProject{}, fmt.Errorf("project create %s: %w", name, err)
	}
	m := tenantRE.FindStringSubmatch(stdout.String())
	if m == nil {
		return gcProject{}, fmt.Errorf("project create %s printed no tenant id:\n%s", name, &stdout)
	}
	p := gcProject{ID: m[1], Name: name, User: user, Password: name + "-gophercloud-password"}
	err := run(ctx, []string{"--data-dir", dataDir, "user", "create", "--project", name, "--role", "member",
		"--password", p.Password, user}, getenvFrom(nil), nil, &stdout, &stderr)
	if err != nil {
		return gcProject{}, fmt.Errorf("user create %s in %s: %w", user, name, err)
	}
	return p, nil
}

// gcAuthWay is how a user authenticates: with identity v3 or v2.0,
// scoped to the project by name or by ID.
type gcAuthWay int

const (
	gcV3ByName gcAuthWay = iota
	gcV3ByID
	gcV2ByName
	gcV2ByID
)

// auth returns the AuthOptions p's user gives to authenticate at s the
// given way.
func (p gcProject) auth(s *testServer, way gcAuthWay) gophercloud.AuthOptions {
	opts := gophercloud.AuthOptions{
		IdentityEndpoint: s.URL + "/identity/v3",
		Username:         p.User,
		Password:         p.Password,
		DomainName:       "Default",
		TenantName:       p.Name,
	}
	if way == gcV2ByName || way == gcV2ByID {
		opts.IdentityEndpoint, opts.DomainName = s.URL+"/identity/v2.0", ""
	}
	if way == gcV3ByID || way == gcV2ByID {
		opts.TenantName, opts.TenantID = "", p.ID
	}
	return opts
}

// gcSessionSpec asks for a project, its member user, and that user
// authenticated in each of the Ways.
type gcSessionSpec struct {
	Project, User string
	Ways          []gcAuthWay
}

// gcSession is a project with its user authenticated in it: a provider
// client for each of the ways asked for, in their order.
type gcSession struct {
	gcProject
	Providers []*gophercloud.ProviderClient
}

// gcSessions makes the sessions specs asks for, all at once: every user
// created and every authentication costs a bcrypt hash or comparison,
// which the race detector makes slow.
func gcSessions(t *testing.T, s *testServer, specs ...gcSessionSpec) []gcSession {
	t.Helper()
	out := make([]gcSession, len(specs))
	errs := make([][]error, len(specs))
	var wg sync.WaitGroup
	for i, spec := range specs {
		wg.Go(func() {
			p, err := gcNewProject(t.Context(), s.DataDir, spec.Project, spec.User)
			if err != nil {
				errs[i] = []error{err}
				return
			}
			out[i] = gcSession{gcProject: p, Providers: make([]*gophercloud.ProviderClient, len(spec.Ways))}
			errs[i] = make([]error, len(spec.Ways))
			var auths sync.WaitGroup
			for j, way := range spec.Ways {
				auths.Go(func() {
					out[i].Providers[j], errs[i][j] = gcAuthenticate(t.Context(), p.auth(s, way))
				})
			}
			auths.Wait()
		})
	}
	wg.Wait()
	if err := errors.Join(slices.Concat(errs...)...); err != nil {
		t.Fatal(err)
	}
	return out
}

// gcAuthenticate authenticates with opts as a program does, through
// openstack.AuthenticatedClient, and returns the provider client, whose
// requests then time out.
func gcAuthenticate(ctx context.Context, opts gophercloud.AuthOptions) (*gophercloud.ProviderClient, error) {
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	p, err := openstack.AuthenticatedClient(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("authenticate at %s as %s in %q/%q: %w", opts.IdentityEndpoint, opts.Username,
			opts.TenantName, opts.TenantID, err)
	}
	p.HTTPClient = http.Client{Timeout: waitTimeout}
	return p, nil
}

// gcImageClient returns the image v2 client of p, found in its catalog.
func gcImageClient(t *testing.T, p *gophercloud.ProviderClient) *gophercloud.ServiceClient {
	t.Helper()
	c, err := openstack.NewImageV2(p, gophercloud.EndpointOpts{Region: gcRegion})
	if err != nil {
		t.Fatalf("image v2 endpoint in region %s: %v", gcRegion, err)
	}
	return c
}

// gcWantStatus fails the test unless err is a response with status want.
func gcWantStatus(t *testing.T, err error, want int, what string) {
	t.Helper()
	var ue gophercloud.ErrUnexpectedResponseCode
	switch {
	case err == nil:
		t.Errorf("%s succeeded, want HTTP %d", what, want)
	case !errors.As(err, &ue):
		t.Errorf("%s: %v, want HTTP %d", what, err, want)
	case ue.Actual != want:
		t.Errorf("%s: HTTP %d, want %d (%s %s answered %q)", what, ue.Actual, want, ue.Method, ue.URL, ue.Body)
	}
}

// gcCreate creates an image, failing the test if it cannot.
func gcCreate(t *testing.T, c *gophercloud.ServiceClient, opts images.CreateOpts) *images.Image {
	t.Helper()
	img, err := images.Create(t.Context(), c, opts).Extract()
	if err != nil {
		t.Fatalf("create image %q: %v", opts.Name, err)
	}
	return img
}

// gcUpload uploads data to image id, failing the test if it cannot.
func gcUpload(t *testing.T, c *gophercloud.ServiceClient, id string, data []byte) {
	t.Helper()
	if err := imagedata.Upload(t.Context(), c, id, bytes.NewReader(data)).ExtractErr(); err != nil {
		t.Fatalf("upload %d bytes to %s: %v", len(data), id, err)
	}
}

// gcGet returns image id, failing the test if it cannot.
func gcGet(t *testing.T, c *gophercloud.ServiceClient, id string) *images.Image {
	t.Helper()
	img, err := images.Get(t.Context(), c, id).Extract()
	if err != nil {
		t.Fatalf("get image %s: %v", id, err)
	}
	return img
}

// gcDownload returns the data of image id and the response's headers.
func gcDownload(t *testing.T, c *gophercloud.ServiceClient, id string) ([]byte, http.Header, error) {
	t.Helper()
	r := imagedata.Download(t.Context(), c, id)
	body, err := r.Extract()
	if err != nil {
		return nil, r.Header, err
	}
	defer body.Close()
	data, err := io.ReadAll(body)
	return data, r.Header, err
}

// gcNoContent sends a request without a body that must be answered 204,
// for the calls gophercloud has no function for: image actions and tags.
func gcNoContent(ctx context.Context, c *gophercloud.ServiceClient, method string, path ...string) error {
	url := c.ServiceURL(path...)
	opts := &gophercloud.RequestOpts{OkCodes: []int{http.StatusNoContent}}
	var resp *http.Response
	var err error
	switch method {
	case http.MethodPost:
		resp, err = c.Post(ctx, url, nil, nil, opts)
	case http.MethodPut:
		resp, err = c.Put(ctx, url, nil, nil, opts)
	case http.MethodDelete:
		resp, err = c.Delete(ctx, url, opts)
	default:
		return errors.New("gcNoContent: unsupported method " + method)
	}
	_, _, err = gophercloud.ParseResponse(resp, err)
	return err
}

// gcAction runs POST /v2/images/{id}/actions/{action}.
func gcAction(ctx context.Context, c *gophercloud.ServiceClient, id, action string) error {
	return gcNoContent(ctx, c, http.MethodPost, "images", id, "actions", action)
}

// gcListPages walks the list with opts page by page, and returns the
// images of each page. It fails the test on an error or when the pages
// do not end.
func gcListPages(t *testing.T, c *gophercloud.ServiceClient, opts images.ListOptsBuilder) [][]images.Image {
	t.Helper()
	var pages [][]images.Image
	err := images.List(c, opts).EachPage(t.Context(), func(_ context.Context, p pagination.Page) (bool, error) {
		imgs, err := images.ExtractImages(p)
		if err != nil {
			return false, err
		}
		pages = append(pages, imgs)
		if len(pages) > gcMaxPages {
			return false, errors.New("the pages do not end")
		}
		return true, nil
	})
	if err != nil {
		q, _ := opts.ToImageListQuery()
		t.Fatalf("list images %s (after %d pages): %v", q, len(pages), err)
	}
	return pages
}

// gcList returns the IDs of the images that the list with opts returns
// over all its pages.
func gcList(t *testing.T, c *gophercloud.ServiceClient, opts images.ListOptsBuilder) []string {
	t.Helper()
	var ids []string
	for _, page := range gcListPages(t, c, opts) {
		ids = append(ids, gcIDs(page)...)
	}
	return ids
}

// gcAllPages lists with opts through AllPages, as most programs do, once
// gcListPages has shown the pages end.
func gcAllPages(t *testing.T, c *gophercloud.ServiceClient, opts images.ListOptsBuilder) []string {
	t.Helper()
	gcListPages(t, c, opts)
	all, err := images.List(c, opts).AllPages(t.Context())
	if err != nil {
		t.Fatalf("AllPages: %v", err)
	}
	imgs, err := images.ExtractImages(all)
	if err != nil {
		t.Fatalf("extract the images of AllPages: %v", err)
	}
	return gcIDs(imgs)
}

// gcListError returns the error of the first page of the list with opts.
func gcListError(t *testing.T, c *gophercloud.ServiceClient, opts images.ListOptsBuilder) error {
	t.Helper()
	return images.List(c, opts).EachPage(t.Context(), func(context.Context, pagination.Page) (bool, error) {
		return false, nil
	})
}

// gcSizeOpts is images.ListOpts with size_min and size_max. gophercloud
// v2.16.0 drops ListOpts.SizeMin and SizeMax from the query, as its
// BuildQueryString skips int64 fields, so a program that filters by size
// has to add them itself, as this does.
type gcSizeOpts struct {
	images.ListOpts
	SizeMin, SizeMax int64 // 0: not given
}

// ToImageListQuery implements images.ListOptsBuilder.
func (o gcSizeOpts) ToImageListQuery() (string, error) {
	q, err := o.ListOpts.ToImageListQuery()
	if err != nil {
		return "", err
	}
	u, err := url.Parse(q)
	if err != nil {
		return "", err
	}
	params := u.Query()
	if o.SizeMin != 0 {
		params.Set("size_min", strconv.FormatInt(o.SizeMin, 10))
	}
	if o.SizeMax != 0 {
		params.Set("size_max", strconv.FormatInt(o.SizeMax, 10))
	}
	return "?" + params.Encode(), nil
}

// gcIDs returns the IDs of imgs in order.
func gcIDs(imgs []images.Image) []string {
	ids := make([]string, len(imgs))
	for i, img := range imgs {
		ids[i] = img.ID
	}
	return ids
}

// gcReversed returns a reversed copy of ids.
func gcReversed(ids []string) []string {
	out := slices.Clone(ids)
	slices.Reverse(out)
	return out
}

// gcData returns n bytes that depend only on seed.
func gcData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// gcMD5 and gcSHA512 are the hex digests Glance gives as checksum and
// os_hash_value.
func gcMD5(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

func gcSHA512(b []byte) string {
	sum := sha512.Sum512(b)
	return hex.EncodeToString(sum[:])
}

// gcSameIDs reports a difference between the IDs a list returned and the
// IDs it should have, in order, naming images by their names.
func gcSameIDs(t *testing.T, what string, got, want []string, names map[string]string) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	name := func(ids []string) []string {
		out := make([]string, len(ids))
		for i, id := range ids {
			if n, ok := names[id]; ok {
				out[i] = n
			} else {
				out[i] = id
			}
		}
		return out
	}
	t.Errorf("%s: got %q, want %q", what, name(got), name(want))
}

// gcWaitSecond waits until the wall clock is a whole second past every
// time in ts, so that what is created next has a later time at the
// second precision of the v2 API.
func gcWaitSecond(ts ...time.Time) {
	var latest time.Time
	for _, t := range ts {
		if t.After(latest) {
			latest = t
		}
	}
	time.Sleep(time.Until(latest.Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
}
