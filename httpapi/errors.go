package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/cloudimage/cloudimage"
)

// This file is the one place where errors become responses. Domain codes
// map to HTTP statuses here; the NHN v1.0 face turns those statuses into
// 30000+status result codes, and its own request checks into the generic
// negative codes.

// statusOf maps each domain code to its HTTP status.
var statusOf = map[string]int{
	cloudimage.EINVALID:      http.StatusBadRequest,
	cloudimage.EUNAUTHORIZED: http.StatusUnauthorized,
	cloudimage.EFORBIDDEN:    http.StatusForbidden,
	cloudimage.ENOTFOUND:     http.StatusNotFound,
	cloudimage.ECONFLICT:     http.StatusConflict,
	cloudimage.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	cloudimage.ETOOMANY:      http.StatusTooManyRequests,
	cloudimage.EUNAVAILABLE:  http.StatusServiceUnavailable,
	cloudimage.EINTERNAL:     http.StatusInternalServerError,
}

// ErrorStatus returns the HTTP status for err's code.
func ErrorStatus(err error) int {
	if st, ok := statusOf[cloudimage.ErrorCode(err)]; ok {
		return st
	}
	return http.StatusInternalServerError
}

// httpError is an error the HTTP layer itself raises about a request
// (an unsupported media type, say), with its status.
type httpError struct {
	status  int
	message string
}

func (e *httpError) Error() string { return e.message }

func errStatus(status int, format string, args ...any) error {
	return &httpError{status: status, message: fmt.Sprintf(format, args...)}
}

// logInternal logs errors that carry no code: they are the only ones that
// are bugs or failing dependencies rather than a caller's mistake. An
// unavailable dependency is logged as a warning.
func (s *Server) logInternal(r *http.Request, err error) {
	if cloudimage.ErrorCode(err) == cloudimage.EINTERNAL && !errors.As(err, new(*httpError)) &&
		!errors.As(err, new(*nhnError)) {
		s.logger.Error("internal error", "err", err, "route", r.Pattern, "request_id", requestID(r.Context()))
	} else if cloudimage.ErrorCode(err) == cloudimage.EUNAVAILABLE {
		// Not a bug, and the caller is told to retry, but an operator
		// should know which dependency is busy or down: the cause says.
		s.logger.Warn("dependency unavailable", "err", err, "route", r.Pattern,
			"request_id", requestID(r.Context()))
	}
}

// statusAndMessage returns the HTTP status and the message a caller sees
// for err, logging it first if it is internal. An OpenStack 401 also
// tells the client where to authenticate.
func (s *Server) statusAndMessage(w http.ResponseWriter, r *http.Request, err error) (int, string) {
	s.logInternal(r, err)
	status, msg := ErrorStatus(err), cloudimage.ErrorMessage(err)
	var he *httpError
	if errors.As(err, &he) {
		status, msg = he.status, he.message
	}
	if status == http.StatusUnauthorized {
		// Keystone's unversioned root, as keystonemiddleware sends it:
		// clients discover v3 and v2.0 from there.
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Keystone uri=%q", s.publicURL+"/identity"))
	}
	setRetryAfter(w, err)
	return status, msg
}

// writeImageError writes err the way Glance does: a plain-text body with
// the status line and the message.
func (s *Server) writeImageError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := s.statusAndMessage(w, r, err)
	body := fmt.Sprintf("%d %s\n\n%s\n\n", status, http.StatusText(status), msg)
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write([]byte(body))
}

// writeKeystoneError writes err as Keystone does.
func (s *Server) writeKeystoneError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := s.statusAndMessage(w, r, err)
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"code": status, "title": http.StatusText(status), "message": msg,
	}})
}

// NHN v1.0 result codes the facade raises itself (digest §2.2).
const (
	resultSuccess      = 0
	resultUnknown      = -2
	resultPermission   = -3
	resultInvalidParam = -4
	resultNotSupported = -7
	resultJSONParse    = -8
	resultImageBase    = 30000 // plus the HTTP status of an image outcome
)

var resultBase = map[int]string{
	resultUnknown:      "UNKNOWN EXCEPTION",
	resultPermission:   "Permission denied",
	resultInvalidParam: "Invalid parameters",
	resultNotSupported: "Not supported",
	resultJSONParse:    "JSON parsing error",
}

// nhnError is a check of the v1.0 facade itself that failed: a bad
// parameter or body, with its negative result code.
type nhnError struct {
	code   int
	detail string
}

func (e *nhnError) Error() string { return e.detail }

func errParam(format string, args ...any) error {
	return &nhnError{code: resultInvalidParam, detail: fmt.Sprintf(format, args...)}
}

func errJSON(err error) error {
	return &nhnError{code: resultJSONParse, detail: err.Error()}
}

// nhnResult returns the result code and message of err in the v1.0
// envelope: the facade's own checks keep their negative code, and
// authentication failures, too many of them included, are -3. Every other outcome of the image
// service is 30000 plus its HTTP status, with the service's message.
func nhnResult(err error) (int, string) {
	var ne *nhnError
	if errors.As(err, &ne) {
		return ne.code, resultBase[ne.code] + ": " + ne.detail
	}
	switch cloudimage.ErrorCode(err) {
	case cloudimage.EUNAUTHORIZED:
		return resultPermission, resultBase[resultPermission] + ": " + cloudimage.ErrorMessage(err)
	case cloudimage.ETOOMANY:
		// Too many failed token requests: a permission problem of the
		// user or client (the rule), with the wait in words, as
		// v1.0 clients read no headers.
		msg := resultBase[resultPermission] + ": " + cloudimage.ErrorMessage(err)
		if d := cloudimage.RetryAfter(err); d > 0 {
			msg += fmt.Sprintf(" Retry after %d seconds.", retryAfterSeconds(d))
		}
		return resultPermission, msg
	case cloudimage.EINTERNAL:
		return resultUnknown, resultBase[resultUnknown]
	}
	return resultImageBase + ErrorStatus(err), cloudimage.ErrorMessage(err)
}

// nhnHeader is the envelope every v1.0 response carries.
type nhnHeader struct {
	IsSuccessful  bool   `json:"isSuccessful"`
	ResultCode    int    `json:"resultCode"`
	ResultMessage string `json:"resultMessage"`
}

var nhnOK = nhnHeader{IsSuccessful: true, ResultCode: resultSuccess, ResultMessage: "SUCCESS"}

// writeNHNError writes err in the v1.0 envelope, with HTTP status 200 as
// every v1.0 response has.
func (s *Server) writeNHNError(w http.ResponseWriter, r *http.Request, err error) {
	s.writeNHNErrorStatus(w, r, http.StatusOK, err)
}

// writeNHNErrorStatus writes err in the v1.0 envelope with an HTTP status
// other than 200: only an unknown route has one (digest §7 #10).
func (s *Server) writeNHNErrorStatus(w http.ResponseWriter, r *http.Request, status int, err error) {
	s.logInternal(r, err)
	setRetryAfter(w, err)
	code, msg := nhnResult(err)
	writeJSON(w, status, map[string]any{
		"header": nhnHeader{IsSuccessful: false, ResultCode: code, ResultMessage: msg},
	})
}

// writeJSON encodes v into a buffer first, so that an encoding error is
// still a clean 500, then writes it with the status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		http.Error(w, "500 Internal Server Error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// maxBodyBytes caps every request body other than image data.
const maxBodyBytes = 1 << 20

// limitedBody returns r's body capped at maxBodyBytes: the most any
// request body but image data may be.
func limitedBody(w http.ResponseWriter, r *http.Request) io.Reader {
	return http.MaxBytesReader(w, r.Body, maxBodyBytes)
}

// decodeJSON decodes a capped request body into v.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(limitedBody(w, r))
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return cloudimage.Errorf(cloudimage.ETOOLARGE, "request body is larger than %d bytes", maxBodyBytes)
		}
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return cloudimage.Errorf(cloudimage.ETOOLARGE, "request body is larger than %d bytes", maxBodyBytes)
		}
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// trailingData reports whether anything but white space follows the value
// dec has decoded. dec.More is not enough: it is false before a stray '}'
// or ']'.
func trailingData(dec *json.Decoder) bool {
	_, err := dec.Token()
	return err != io.EOF
}
