package httpapi_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/cloudimage/cloudimage"
	"github.com/google/uuid"
)

// v2ListIDs lists the images token's project sees through v2, which must
// answer 200, and returns their IDs.
func (e *env) v2ListIDs(t *testing.T, token string) []string {
	t.Helper()
	status, _, b := e.call(t, "GET", "/v2/images?limit=1000", token, "")
	if status != http.StatusOK {
		t.Fatalf("GET /v2/images: %d %s", status, b)
	}
	var page struct {
		Images []struct {
			ID string `json:"id"`
		} `json:"images"`
	}
	if err := json.Unmarshal(b, &page); err != nil {
		t.Fatalf("decode list: %v", err)
	}
	var ids []string
	for _, img := range page.Images {
		ids = append(ids, img.ID)
	}
	return ids
}

// TestDelayedDeleteAPI checks, with delayed delete on, that a deleted
// image vanishes from every face (v2 show, list, data and members, and
// the v1.0 list), and that POST /v2/images/{id}/actions/restore brings it
// back for an admin of its project only, refusing others in the API's
// own error format.
func TestDelayedDeleteAPI(t *testing.T) {
	e := newEnv(t, cloudimage.WithDelayedDelete(time.Hour))
	owner := e.token(t, e.a, cloudimage.RoleMember)
	adminA := e.token(t, e.a, cloudimage.RoleAdmin)
	readerA := e.token(t, e.a, cloudimage.RoleReader)
	memberB := e.token(t, e.b, cloudimage.RoleMember)
	id := activeImage(t, e, owner, "doomed")
	kept := activeImage(t, e, owner, "kept")
	restore := "/v2/images/" + id + "/actions/restore"

	status, _, b := e.call(t, "DELETE", "/v2/images/"+id, owner, "")
	expectNoContent(t, "delete", status, b)
	for _, path := range []string{"/v2/images/" + id, "/v2/images/" + id + "/file", "/v2/images/" + id + "/members"} {
		status, hdr, b := e.call(t, "GET", path, adminA, "")
		expectError(t, "GET "+path+" of a pending_delete image", status, hdr, b, http.StatusNotFound, "")
	}
	if got := e.v2ListIDs(t, owner); slices.Contains(got, id) || !slices.Contains(got, kept) {
		t.Errorf("v2 list after the delete: %v, want %s and not %s", got, kept, id)
	}
	if got := e.listIDs(t, e.a, owner, ""); slices.Contains(got, id) || !slices.Contains(got, kept) {
		t.Errorf("v1.0 list after the delete: %v, want %s and not %s", got, kept, id)
	}

	for _, tc := range []struct {
		name, id, token string
		status          int
		msg             string
	}{
		{"member of the project", id, owner, http.StatusForbidden, "Only an admin"},
		{"reader of the project", id, readerA, http.StatusForbidden, ""},
		{"another project", id, memberB, http.StatusNotFound, ""},
		{"unknown image", uuid.NewString(), adminA, http.StatusNotFound, ""},
		{"image that is not pending_delete", kept, adminA, http.StatusConflict, "not pending_delete"},
		{"no token", id, "", http.StatusUnauthorized, ""},
	} {
		status, hdr, b := e.call(t, "POST", "/v2/images/"+tc.id+"/actions/restore", tc.token, "")
		expectError(t, tc.name, status, hdr, b, tc.status, tc.msg)
	}
	status, hdr, b := e.call(t, "GET", "/v2/images/"+id, adminA, "")
	expectError(t, "GET after refused restores", status, hdr, b, http.StatusNotFound, "")

	status, _, b = e.call(t, "POST", restore, adminA, "")
	expectNoContent(t, "restore by the project's admin", status, b)
	if got := e.getImage(t, owner, id)["status"]; got != "active" {
		t.Errorf("after restore: status %v, want active", got)
	}
	status, _, b = e.call(t, "GET", "/v2/images/"+id+"/file", owner, "")
	if status != http.StatusOK || string(b) != "data of doomed" {
		t.Errorf("download after restore: %d %q", status, b)
	}
	if got := e.listIDs(t, e.a, owner, ""); !slices.Contains(got, id) {
		t.Errorf("v1.0 list after restore lacks %s: %v", id, got)
	}
	status, hdr, b = e.call(t, "POST", restore, adminA, "")
	expectError(t, "restore again", status, hdr, b, http.StatusConflict, "")
}
