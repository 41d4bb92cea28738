package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// ListedImage is an image as the NHN v1.0 list shows it.
type ListedImage struct {
	CreatedAt  string            `json:"createdAt"`
	DiskFormat *string           `json:"diskFormat"`
	ID         string            `json:"id"`
	IsPublic   bool              `json:"isPublic"`
	MinDisk    int               `json:"minDisk"`
	MinRAM     int               `json:"minRam"`
	Name       string            `json:"name"`
	Properties map[string]string `json:"properties"`
	Protected  bool              `json:"protected"`
	Size       int64             `json:"size"`
	Status     string            `json:"status"`
	UpdatedAt  string            `json:"updatedAt"`
}

// Image is an image as the v2 API shows it.
type Image struct {
	ID              string   `json:"id"`
	Name            string   `json:"name"`
	Status          string   `json:"status"`
	Visibility      string   `json:"visibility"`
	Protected       bool     `json:"protected"`
	Hidden          bool     `json:"os_hidden"`
	DiskFormat      *string  `json:"disk_format"`
	ContainerFormat *string  `json:"container_format"`
	MinDisk         int      `json:"min_disk"`
	MinRAM          int      `json:"min_ram"`
	Size            *int64   `json:"size"`
	VirtualSize     *int64   `json:"virtual_size"`
	Checksum        *string  `json:"checksum"`
	HashAlgo        *string  `json:"os_hash_algo"`
	HashValue       *string  `json:"os_hash_value"`
	Owner           string   `json:"owner"`
	Tags            []string `json:"tags"`
	CreatedAt       string   `json:"created_at"`
	UpdatedAt       string   `json:"updated_at"`

	// Properties are the extra properties, which v2 puts beside the
	// core attributes.
	Properties map[string]string `json:"properties"`
}

// coreAttributes are the v2 image keys that are not extra properties.
var coreAttributes = map[string]bool{
	"id": true, "name": true, "status": true, "visibility": true, "protected": true,
	"os_hidden": true, "disk_format": true, "container_format": true, "min_disk": true,
	"min_ram": true, "size": true, "virtual_size": true, "checksum": true, "os_hash_algo": true,
	"os_hash_value": true, "owner": true, "tags": true, "created_at": true, "updated_at": true,
	"self": true, "file": true, "schema": true, "locations": true, "direct_url": true,
}

// UnmarshalJSON reads a v2 image, gathering every string-valued key that
// is not a core attribute into Properties.
func (img *Image) UnmarshalJSON(b []byte) error {
	type plain Image
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, (*plain)(img)); err != nil {
		return err
	}
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	img.Properties = map[string]string{}
	for k, v := range all {
		var s string
		if !coreAttributes[k] && json.Unmarshal(v, &s) == nil {
			img.Properties[k] = s
		}
	}
	return nil
}

// ListOptions page the v1.0 list. A nil Limit lists every image.
type ListOptions struct {
	Limit  *int
	Marker string
}

type nhnListResponse struct {
	Header nhnHeader     `json:"header"`
	Images []ListedImage `json:"images"`
}

func (r *nhnListResponse) header() nhnHeader { return r.Header }

type nhnResponse struct {
	Header nhnHeader `json:"header"`
}

func (r *nhnResponse) header() nhnHeader { return r.Header }

// ListImages lists images through the v1.0 API.
func (c *Client) ListImages(ctx context.Context, opts ListOptions) ([]ListedImage, error) {
	q := url.Values{}
	if opts.Limit != nil {
		q.Set("limit", strconv.Itoa(*opts.Limit))
	}
	if opts.Marker != "" {
		q.Set("marker", opts.Marker)
	}
	suffix := "/images"
	if len(q) > 0 {
		suffix += "?" + q.Encode()
	}
	path, err := c.appkeyPath(suffix)
	if err != nil {
		return nil, err
	}
	var resp nhnListResponse
	if err := c.doNHN(ctx, "GET", path, nil, &resp); err != nil {
		return nil, err
	}
	return resp.Images, nil
}

// CreateImage creates an empty image through the v2 API. The map holds
// the v2 attributes and extra properties to set.
func (c *Client) CreateImage(ctx context.Context, attrs map[string]any) (*Image, error) {
	var img Image
	if err := c.doJSON(ctx, "POST", "/v2/images", attrs, &img, nil); err != nil {
		return nil, err
	}
	return &img, nil
}

// GetImage returns an image through the v2 API.
func (c *Client) GetImage(ctx context.Context, id string) (*Image, error) {
	var img Image
	if err := c.doJSON(ctx, "GET", "/v2/images/"+url.PathEscape(id), nil, &img, nil); err != nil {
		return nil, err
	}
	return &img, nil
}

// UploadImage streams r as the image's data. A size of -1 sends the body
// chunked.
func (c *Client) UploadImage(ctx context.Context, id string, r io.Reader, size int64) error {
	req, err := c.newRequest(ctx, "PUT", "/v2/images/"+url.PathEscape(id)+"/file", r)
	if err != nil {
		return err
	}
	req.ContentLength = size
	if size == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// DownloadImage returns the image's data; the caller closes it. An image
// without data yields an empty reader.
func (c *Client) DownloadImage(ctx context.Context, id string) (io.ReadCloser, error) {
	req, err := c.newRequest(ctx, "GET", "/v2/images/"+url.PathEscape(id)+"/file", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(req)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// DeleteImage deletes an image, through the v1.0 API when AppKey is set
// and through v2 otherwise.
func (c *Client) DeleteImage(ctx context.Context, id string) error {
	if c.AppKey == "" {
		return c.doJSON(ctx, "DELETE", "/v2/images/"+url.PathEscape(id), nil, nil, nil)
	}
	path, _ := c.appkeyPath("/images?id=" + url.QueryEscape(id))
	return c.doNHN(ctx, "DELETE", path, nil, &nhnResponse{})
}

// RestoreImage brings back a pending_delete image through the v2 API; the
// caller must be an admin of the image's project.
func (c *Client) RestoreImage(ctx context.Context, id string) error {
	return c.doJSON(ctx, "POST", "/v2/images/"+url.PathEscape(id)+"/actions/restore", nil, nil, nil)
}
