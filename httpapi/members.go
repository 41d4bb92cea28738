package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"unicode/utf8"

	"github.com/cloudimage/cloudimage"
)

// Image members: sharing an image with other projects. The service
// decides who may do what (only the owner adds and removes members, only a
// member answers for itself); this face checks the bodies' shapes and
// writes Glance's member objects.

func (s *Server) memberRoutes(mux *routeMux) {
	mux.Handle("POST /v2/images/{id}/members", s.image(s.addMember))
	mux.Handle("GET /v2/images/{id}/members", s.image(s.listMembers))
	mux.Handle("GET /v2/images/{id}/members/{member}", s.image(s.showMember))
	mux.Handle("PUT /v2/images/{id}/members/{member}", s.image(s.updateMember))
	mux.Handle("DELETE /v2/images/{id}/members/{member}", s.image(s.removeMember))
}

// v2MemberJSON is Glance's member object.
type v2MemberJSON struct {
	CreatedAt string                  `json:"created_at"`
	ImageID   string                  `json:"image_id"`
	MemberID  string                  `json:"member_id"`
	Schema    string                  `json:"schema"`
	Status    cloudimage.MemberStatus `json:"status"`
	UpdatedAt string                  `json:"updated_at"`
}

func v2Member(m *cloudimage.Member) v2MemberJSON {
	return v2MemberJSON{
		CreatedAt: m.CreatedAt.UTC().Format(v2Time),
		ImageID:   m.ImageID,
		MemberID:  m.ProjectID,
		Schema:    "/v2/schemas/member",
		Status:    m.Status,
		UpdatedAt: m.UpdatedAt.UTC().Format(v2Time),
	}
}

// Glance's messages for member bodies of the wrong shape.
const (
	memberForm = `Expected a member in the form: {"member": "image_id"}`
	statusForm = `Expected a status in the form: {"status": "status"}`
)

func (s *Server) addMember(w http.ResponseWriter, r *http.Request, c *cloudimage.Caller) error {
	body, err := readObject(w, r, memberForm)
	if err != nil {
		return err
	}
	project, err := stringField(body, "member", "Member to be added not specified", memberForm)
	if err != nil {
		return err
	}
	if project == "" {
		return cloudimage.Errorf(cloudimage.EINVALID, "Member can't be empty")
	}
	m, err := s.images.AddMember(r.Context(), c, r.PathValue("id"), project)
	if err != nil {
		return err
	}
	// Glance answers a new member with 200, not 201.
	writeJSON(w, http.StatusOK, v2Member(m))
	return nil
}

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request, c *cloudimage.Caller) error {
	ms, err := s.images.Members(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	out := make([]v2MemberJSON, 0, len(ms))
	for _, m := range ms {
		out = append(out, v2Member(m))
	}
	writeJSON(w, http.StatusOK, map[string]any{"members": out, "schema": "/v2/schemas/members"})
	return nil
}

func (s *Server) showMember(w http.ResponseWriter, r *http.Request, c *cloudimage.Caller) error {
	m, err := s.images.Member(r.Context(), c, r.PathValue("id"), r.PathValue("member"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v2Member(m))
	return nil
}

func (s *Server) updateMember(w http.ResponseWriter, r *http.Request, c *cloudimage.Caller) error {
	body, err := readObject(w, r, statusForm)
	if err != nil {
		return err
	}
	st, err := stringField(body, "status", "Status not specified", statusForm)
	if err != nil {
		return err
	}
	// The service checks the value, after the image and the membership:
	// a caller learns nothing from a bad status about an image it cannot see.
	m, err := s.images.UpdateMember(r.Context(), c, r.PathValue("id"), r.PathValue("member"),
		cloudimage.MemberStatus(st))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v2Member(m))
	return nil
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request, c *cloudimage.Caller) error {
	if err := s.images.RemoveMember(r.Context(), c, r.PathValue("id"), r.PathValue("member")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// readObject reads a capped v2 request body that must be a JSON object.
// A missing body and one that is not JSON get Glance's messages; JSON that
// is not an object gets form, which shows the shape expected.
func readObject(w http.ResponseWriter, r *http.Request, form string) (map[string]json.RawMessage, error) {
	body, err := io.ReadAll(limitedBody(w, r))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, cloudimage.Errorf(cloudimage.ETOOLARGE, "request body is larger than %d bytes", maxBodyBytes)
		}
		return nil, cloudimage.Errorf(cloudimage.EINVALID, "Error reading request body.")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, cloudimage.Errorf(cloudimage.EINVALID, "Body expected in request.")
	}
	var v json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	// encoding/json would quietly turn bad bytes into U+FFFD.
	if !utf8.Valid(body) || dec.Decode(&v) != nil || trailingData(dec) {
		return nil, cloudimage.Errorf(cloudimage.EINVALID, "Malformed JSON in request body.")
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(v, &obj) != nil || obj == nil {
		return nil, cloudimage.Errorf(cloudimage.EINVALID, "%s", form)
	}
	return obj, nil
}

// stringField returns the string obj holds at key: missing is the
// message when the key is absent, form when its value is not a string.
func stringField(obj map[string]json.RawMessage, key, missing, form string) (string, error) {
	v, ok := obj[key]
	if !ok {
		return "", cloudimage.Errorf(cloudimage.EINVALID, "%s", missing)
	}
	var s string
	if string(v) == "null" || json.Unmarshal(v, &s) != nil {
		return "", cloudimage.Errorf(cloudimage.EINVALID, "%s", form)
	}
	return s, nil
}
