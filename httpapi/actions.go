package httpapi

import (
	"encoding/json"
	"mime"
	"net/http"
	"slices"
	"time"

	"github.com/cloudimage/cloudimage"
)

// Tags, deactivate/reactivate, restore, and the interoperable import
// (stage, import, info).

func (s *Server) actionRoutes(mux *routeMux) {
	mux.Handle("PUT /v2/images/{id}/tags/{tag}", s.image(s.addTag))
	mux.Handle("DELETE /v2/images/{id}/tags/{tag}", s.image(s.removeTag))
	mux.Handle("POST /v2/images/{id}/actions/deactivate", s.image(s.deactivateImage))
	mux.Handle("POST /v2/images/{id}/actions/reactivate", s.image(s.reactivateImage))
	mux.Handle("POST /v2/images/{id}/actions/restore", s.image(s.restoreImage))
	mux.Handle("PUT /v2/images/{id}/stage", s.image(s.stageImage))
	mux.Handle("POST /v2/images/{id}/import", s.image(s.importImage))
	mux.Handle("GET /v2/info/import", s.image(s.importInfo))
	mux.Handle("GET /v2/info/stores", s.image(s.storesInfo))
}

// noContent adapts a service call that returns only an error to a handler
// that answers 204 when it succeeds.
func noContent(w http.ResponseWriter, err error) error {
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) addTag(w http.ResponseWriter, r *http.Request, c *cloudimage.Caller) error {
	return noContent(w, s.images.AddTag(r.Context(), c, r.PathValue("id"), r.PathValue("tag")))
}

func (s *Server) removeTag(w http.ResponseWriter, r *http.Request, c *cloudimage.Caller) error {
	return noContent(w, s.images.RemoveTag(r.Context(), c, r.PathValue("id"), r.PathValue("tag")))
}

func (s *Server) deactivateImage(w http.ResponseWriter, r *http.Request, c *cloudimage.Caller) error {
	return noContent(w, s.images.Deactivate(r.Context(), c, r.PathValue("id")))
}

func (s *Server) reactivateImage(w http.ResponseWriter, r *http.Request, c *cloudimage.Caller) error {
	return noContent(w, s.images.Reactivate(r.Context(), c, r.PathValue("id")))
}

// restoreImage brings back a pending_delete image, for an admin of its
// project; it is this server's own action, as Glance has none.
func (s *Server) restoreImage(w http.ResponseWriter, r *http.Request, c *cloudimage.Caller) error {
	return noContent(w, s.images.Restore(r.Context(), c, r.PathValue("id")))
}

// requireOctetStream refuses image data that does not come as
// application/octet-stream, as Glance does, with 415.
func requireOctetStream(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/octet-stream" {
		return errStatus(http.StatusUnsupportedMediaType,
			"The media type %q is not supported for this request; use application/octet-stream.", ct)
	}
	return nil
}

// stageImage streams the request body into the image's staging area, the
// first step of a glance-direct import; like an upload it is never held in
// memory whole.
func (s *Server) stageImage(w http.ResponseWriter, r *http.Request, c *cloudimage.Caller) error {
	if err := requireOctetStream(r); err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	defer rc.SetReadDeadline(time.Time{}) // the connection may serve more requests
	body := &idleReader{r: r.Body, rc: rc}
	_, err := s.images.Stage(r.Context(), c, r.PathValue("id"), body)
	return noContent(w, err)
}

// importImage starts an import; it runs after the answer, 202, is sent.
func (s *Server) importImage(w http.ResponseWriter, r *http.Request, c *cloudimage.Caller) error {
	body, err := readObject(w, r, `Expected an import request in the form: {"method": {"name": "glance-direct"}}`)
	if err != nil {
		return err
	}
	req, err := s.parseImport(body)
	if err != nil {
		return err
	}
	if err := s.images.Import(r.Context(), c, r.PathValue("id"), req); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// parseImport checks an import body as Glance does before it looks at the
// image: a method with a name this server offers, and the store options,
// which with a single store have nothing to choose but must be well typed.
func (s *Server) parseImport(body map[string]json.RawMessage) (cloudimage.ImportRequest, error) {
	var req cloudimage.ImportRequest
	raw, ok := body["method"]
	if !ok {
		return req, cloudimage.Errorf(cloudimage.EINVALID, "Import request requires a 'method' field.")
	}
	var method map[string]json.RawMessage
	if json.Unmarshal(raw, &method) != nil || method == nil {
		return req, cloudimage.Errorf(cloudimage.EINVALID, "Import request requires a 'method' field.")
	}
	name, err := stringField(method, "name", "Import request requires a 'name' field.",
		"Import request requires a 'name' field.")
	if err != nil {
		return req, err
	}
	if !slices.Contains(s.images.ImportMethods(), name) {
		return req, cloudimage.Errorf(cloudimage.EINVALID, "Unknown import method name '%s'.", name)
	}
	req.Method = name
	if v, ok := method["uri"]; ok && string(v) != "null" {
		if json.Unmarshal(v, &req.URI) != nil {
			return req, cloudimage.Errorf(cloudimage.EINVALID, "Import method %s requires 'uri' to be a string.", name)
		}
	}
	for _, key := range []string{"all_stores_must_succeed", "all_stores"} {
		var b bool
		if v, ok := body[key]; ok && (string(v) == "null" || json.Unmarshal(v, &b) != nil) {
			return req, cloudimage.Errorf(cloudimage.EINVALID, "'%s' must be boolean value only", key)
		} else if ok && key == "all_stores_must_succeed" && !b {
			// With one store, the import succeeds everywhere or nowhere.
			return req, cloudimage.Errorf(cloudimage.EINVALID,
				"All_stores_must_succeed can only be set with enabled_backends")
		}
	}
	return req, nil
}

// importInfo lists the import methods this server offers.
func (s *Server) importInfo(w http.ResponseWriter, r *http.Request, c *cloudimage.Caller) error {
	methods := s.images.ImportMethods()
	if methods == nil {
		methods = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"import-methods": map[string]any{
		"description": "Import methods available.",
		"type":        "array",
		"value":       methods,
	}})
	return nil
}

// storesInfo answers as a Glance without multiple stores does: there are
// none to list.
func (s *Server) storesInfo(w http.ResponseWriter, r *http.Request, c *cloudimage.Caller) error {
	return errStatus(http.StatusNotFound, "Multi backend is not supported at this site.")
}
