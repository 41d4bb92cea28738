package httpapi

import (
	"bufio"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/cloudimage/cloudimage"
)

// The NHN Cloud Compute v1.0 face: image list and delete, and the appkey
// token API. Every response is HTTP 200 with the header envelope.

func (s *Server) nhnRoutes(mux *routeMux) {
	mux.Handle("POST /v1.0/appkeys/{appkey}/tokens", s.nhn(s.nhnIssueToken))
	mux.Handle("GET /v1.0/appkeys/{appkey}/tokens", s.nhn(s.nhnShowToken))
	mux.Handle("/v1.0/appkeys/{appkey}/tokens", s.nhn(nhnMethodNotSupported))
	mux.Handle("GET /v1.0/appkeys/{appkey}/images", s.nhn(s.nhnListImages))
	mux.Handle("DELETE /v1.0/appkeys/{appkey}/images", s.nhn(s.nhnDeleteImage))
	mux.Handle("/v1.0/appkeys/{appkey}/images", s.nhn(nhnMethodNotSupported))
}

// nhn adapts a v1.0 handler that returns an error.
func (s *Server) nhn(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeNHNError(w, r, err)
		}
	})
}

func nhnMethodNotSupported(w http.ResponseWriter, r *http.Request) error {
	return &nhnError{code: resultNotSupported, detail: "method " + r.Method + " is not supported here"}
}

// nhnCaller authenticates a v1.0 request: its token must be valid and
// scoped to the project the path's appkey names.
func (s *Server) nhnCaller(r *http.Request) (*cloudimage.Caller, error) {
	t, err := s.identity.Validate(r.Context(), r.Header.Get("X-Auth-Token"))
	if err != nil {
		return nil, err
	}
	if !sameSecret(t.Project.AppKey, r.PathValue("appkey")) {
		return nil, cloudimage.Errorf(cloudimage.EUNAUTHORIZED, "the token is not valid for this appkey")
	}
	return t.Caller(), nil
}

// nhnQuery parses a v1.0 query string; each parameter may appear once.
func nhnQuery(raw string) (url.Values, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, errParam("malformed query string")
	}
	for k, v := range q {
		if len(v) > 1 {
			return nil, errParam("%s given more than once", k)
		}
	}
	return q, nil
}

// parseNHNList parses the list query: limit, a non-negative integer (-1
// when absent), and marker, an image ID.
func parseNHNList(raw string) (opts cloudimage.ListOptions, err error) {
	q, err := nhnQuery(raw)
	if err != nil {
		return opts, err
	}
	opts.Limit = -1
	if q.Has("limit") {
		v := q.Get("limit")
		n, err := strconv.ParseUint(v, 10, 64)
		if errors.Is(err, strconv.ErrRange) {
			n = math.MaxInt32 // more than any catalog holds: no limit
		} else if err != nil {
			return opts, errParam("limit must be a non-negative integer")
		}
		opts.Limit = int(min(n, math.MaxInt32))
	}
	if q.Has("marker") {
		if opts.Marker, err = cloudimage.ParseID(q.Get("marker")); err != nil {
			return opts, errParam("marker must be an image ID (UUID)")
		}
	}
	return opts, nil
}

// nhnImage is the v1.0 image object: exactly the guide's twelve fields.
type nhnImage struct {
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

// nhnTime is the v1.0 time format: UTC, six fraction digits, no zone.
const nhnTime = "2006-01-02T15:04:05.000000"

func toNHNImage(img *cloudimage.Image) nhnImage {
	out := nhnImage{
		CreatedAt:  img.CreatedAt.UTC().Format(nhnTime),
		ID:         img.ID,
		IsPublic:   img.Visibility == cloudimage.VisibilityPublic,
		MinDisk:    img.MinDisk,
		MinRAM:     img.MinRAM,
		Name:       img.Name,
		Properties: img.Properties,
		Protected:  img.Protected,
		Status:     string(img.Status),
		UpdatedAt:  img.UpdatedAt.UTC().Format(nhnTime),
	}
	if img.DiskFormat != "" {
		out.DiskFormat = &img.DiskFormat
	}
	if out.Properties == nil {
		out.Properties = map[string]string{}
	}
	if img.Size != nil {
		out.Size = *img.Size
	}
	return out
}

// nhnListImages answers a v1.0 list, from the page cache when it can.
func (s *Server) nhnListImages(w http.ResponseWriter, r *http.Request) error {
	c, err := s.nhnCaller(r)
	if err != nil {
		return err
	}
	return s.cachedList(w, r, c, func(w http.ResponseWriter) error { return s.nhnRenderList(w, r, c) })
}

// nhnRenderList streams the list: the envelope goes out first and each
// image is encoded as the service yields it, so memory does not grow
// with the list. An error after the first byte cannot become an envelope
// any more; the response is then cut off, so that a client sees a broken
// body rather than a short list that looks whole.
func (s *Server) nhnRenderList(w http.ResponseWriter, r *http.Request, c *cloudimage.Caller) error {
	opts, err := parseNHNList(r.URL.RawQuery)
	if err != nil {
		return err
	}
	images, err := s.images.List(r.Context(), c, opts)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", jsonContentType)
	bw := bufio.NewWriterSize(w, 32<<10)
	bw.WriteString(`{"header":{"isSuccessful":true,"resultCode":0,"resultMessage":"SUCCESS"},"images":[`)
	first := true
	for img, err := range images {
		if err != nil {
			s.logger.Error("list images", "err", err, "request_id", requestID(r.Context()))
			bw.Flush()
			panic(http.ErrAbortHandler)
		}
		if !first {
			bw.WriteByte(',')
		}
		first = false
		b, err := json.Marshal(toNHNImage(img))
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		bw.Write(b)
	}
	bw.WriteString("]}\n")
	// The answer has begun: a client gone by now cannot be told anything.
	_ = bw.Flush()
	return nil
}

// nhnDeleteImage deletes the one image named by the id parameter.
func (s *Server) nhnDeleteImage(w http.ResponseWriter, r *http.Request) error {
	c, err := s.nhnCaller(r)
	if err != nil {
		return err
	}
	q, err := nhnQuery(r.URL.RawQuery)
	if err != nil {
		return err
	} else if !q.Has("id") {
		return errParam("id is required")
	}
	id, err := cloudimage.ParseID(q.Get("id"))
	if err != nil {
		return errParam("id must be an image ID (UUID)")
	}
	if err := s.images.Delete(r.Context(), c, id); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"header": nhnOK})
	return nil
}

// nhnTokenRequest is the body of a v1.0 token request.
type nhnTokenRequest struct {
	Auth *struct {
		Username string `json:"username"`
		Password string `json:"password"`
	} `json:"auth"`
}

// nhnIssueToken issues a token for the project the path's appkey names.
func (s *Server) nhnIssueToken(w http.ResponseWriter, r *http.Request) error {
	var req nhnTokenRequest
	if err := decodeJSON(w, r, &req); err != nil {
		if cloudimage.ErrorCode(err) == cloudimage.ETOOLARGE {
			return err
		}
		return errJSON(err)
	}
	if req.Auth == nil || req.Auth.Username == "" || req.Auth.Password == "" {
		return errParam("auth.username and auth.password are required")
	}
	t, err := s.identity.Issue(r.Context(), cloudimage.Credentials{
		AppKey: r.PathValue("appkey"), Username: req.Auth.Username, Password: req.Auth.Password,
		Client: clientHost(r),
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, nhnTokenBody(t.ID, t.Token))
	return nil
}

// nhnShowToken describes the token named by the id parameter. Like the
// guide's, it needs no X-Auth-Token: knowing the token is the proof.
func (s *Server) nhnShowToken(w http.ResponseWriter, r *http.Request) error {
	q, err := nhnQuery(r.URL.RawQuery)
	if err != nil {
		return err
	} else if q.Get("id") == "" {
		return errParam("id is required")
	}
	t, err := s.identity.Validate(r.Context(), q.Get("id"))
	if err != nil {
		return err
	}
	if !sameSecret(t.Project.AppKey, r.PathValue("appkey")) {
		return cloudimage.Errorf(cloudimage.EUNAUTHORIZED, "the token is not valid for this appkey")
	}
	writeJSON(w, http.StatusOK, nhnTokenBody(q.Get("id"), t))
	return nil
}

// keystoneExpires is the expiry format of Keystone v2 and the v1.0 API.
const keystoneExpires = "2006-01-02T15:04:05Z"

// nhnTokenResponse is the body of both v1.0 token calls.
type nhnTokenResponse struct {
	Header nhnHeader `json:"header"`
	Access struct {
		Token struct {
			Expires  string `json:"expires"`
			ID       string `json:"id"`
			IssuedAt string `json:"issued_at"`
		} `json:"token"`
		User struct {
			ID    string            `json:"id"`
			Roles []nhnRoleResponse `json:"roles"`
		} `json:"user"`
	} `json:"access"`
}

type nhnRoleResponse struct {
	Name string `json:"name"`
}

func nhnTokenBody(id string, t *cloudimage.Token) *nhnTokenResponse {
	resp := &nhnTokenResponse{Header: nhnOK}
	resp.Access.Token.ID = id
	resp.Access.Token.IssuedAt = t.IssuedAt.UTC().Format(nhnTime)
	resp.Access.Token.Expires = t.ExpiresAt.UTC().Truncate(time.Second).Format(keystoneExpires)
	resp.Access.User.ID = t.User.ID
	resp.Access.User.Roles = make([]nhnRoleResponse, len(t.Roles))
	for i, r := range t.Roles {
		resp.Access.User.Roles[i].Name = string(r)
	}
	return resp
}
