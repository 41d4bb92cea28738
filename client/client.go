// Package client speaks cloudimage's HTTP APIs: the NHN Cloud v1.0 image
// and token APIs, Keystone v2.0 tokens and the image v2 API. The CLI and
// the end-to-end tests use it, so they exercise what real clients see.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/cloudimage/cloudimage"
)

// Client is a connection to one cloudimage server. Set Token directly, or
// the credentials and call IssueToken. With AppKey set, tokens come from
// the v1.0 API and images are listed and deleted through it; with only
// TenantID, tokens come from Keystone v2.0.
type Client struct {
	URL      string // the server's root URL
	HTTP     *http.Client
	Token    string
	AppKey   string
	TenantID string
	Username string
	Password string
}

// New returns a client for the server at rootURL.
func New(rootURL string) *Client {
	return &Client{URL: strings.TrimRight(rootURL, "/"), HTTP: http.DefaultClient}
}

// Error is an error response of the server. ResultCode is the NHN v1.0
// result code; for v2 and identity responses it is the code the v1.0
// facade would give (30000 plus the HTTP status). Unwrap yields the
// domain error, so cloudimage.ErrorCode works on it.
type Error struct {
	HTTPStatus int
	ResultCode int
	Message    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("error %d: %s", e.ResultCode, e.Message)
}

// Unwrap returns the domain error the response stands for.
func (e *Error) Unwrap() error {
	return &cloudimage.Error{Code: codeOf(e), Message: e.Message}
}

// codeOf maps a response back to a domain code.
func codeOf(e *Error) string {
	switch e.ResultCode {
	case -3:
		return cloudimage.EUNAUTHORIZED
	case -4, -8, -7:
		return cloudimage.EINVALID
	case -2, -1, -6:
		return cloudimage.EINTERNAL
	case -5:
		return cloudimage.ENOTFOUND
	}
	status := e.HTTPStatus
	if e.ResultCode > 30000 && e.ResultCode < 31000 {
		status = e.ResultCode - 30000
	}
	switch status {
	case http.StatusBadRequest, http.StatusUnsupportedMediaType:
		return cloudimage.EINVALID
	case http.StatusUnauthorized:
		return cloudimage.EUNAUTHORIZED
	case http.StatusForbidden:
		return cloudimage.EFORBIDDEN
	case http.StatusNotFound:
		return cloudimage.ENOTFOUND
	case http.StatusConflict:
		return cloudimage.ECONFLICT
	case http.StatusRequestEntityTooLarge:
		return cloudimage.ETOOLARGE
	case http.StatusTooManyRequests:
		return cloudimage.ETOOMANY
	case http.StatusServiceUnavailable:
		return cloudimage.EUNAVAILABLE
	}
	return cloudimage.EINTERNAL
}

// nhnHeader is the v1.0 envelope.
type nhnHeader struct {
	IsSuccessful  bool   `json:"isSuccessful"`
	ResultCode    int    `json:"resultCode"`
	ResultMessage string `json:"resultMessage"`
}

// newRequest builds a request to path carrying the client's token.
func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, body)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("X-Auth-Token", c.Token)
	}
	return req, nil
}

// send sends req and returns the response if its status is below 300.
// Any other response is read and returned as an *Error.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return nil, &Error{HTTPStatus: resp.StatusCode, ResultCode: 30000 + resp.StatusCode, Message: errorText(msg)}
}

// errorText pulls the message out of a Glance plain-text or Keystone JSON
// error body.
func errorText(body []byte) string {
	var ks struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &ks) == nil && ks.Error.Message != "" {
		return ks.Error.Message
	}
	// Glance: "<status line>\n\n<message>\n\n".
	parts := strings.SplitN(strings.TrimSpace(string(body)), "\n\n", 2)
	return strings.TrimSpace(parts[len(parts)-1])
}

// doJSON sends a JSON body (if in is not nil) and decodes the response
// into out (if out is not nil).
func (c *Client) doJSON(ctx context.Context, method, path string, in, out any, header http.Header) error {
	var body io.Reader
	if header == nil {
		header = http.Header{}
	}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
		if header.Get("Content-Type") == "" {
			header.Set("Content-Type", "application/json")
		}
	}
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s %s response: %w", method, path, err)
	}
	return nil
}

// doNHN calls a v1.0 endpoint and turns an unsuccessful envelope into an
// *Error. out must have a Header field that receives the envelope.
func (c *Client) doNHN(ctx context.Context, method, path string, in any, out interface{ header() nhnHeader }) error {
	if err := c.doJSON(ctx, method, path, in, out, http.Header{
		"Content-Type": {"application/json;charset=UTF-8"},
	}); err != nil {
		return err
	}
	if h := out.header(); !h.IsSuccessful {
		return &Error{HTTPStatus: http.StatusOK, ResultCode: h.ResultCode, Message: h.ResultMessage}
	}
	return nil
}

func (c *Client) appkeyPath(suffix string) (string, error) {
	if c.AppKey == "" {
		return "", fmt.Errorf("an appkey is required for the NHN v1.0 API (set CLOUDIMAGE_APPKEY)")
	}
	return "/v1.0/appkeys/" + url.PathEscape(c.AppKey) + suffix, nil
}
