package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestImageVersions(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/", http.StatusMultipleChoices},
		{"/versions", http.StatusOK},
		{"/v2", http.StatusOK},
		{"/v2/", http.StatusOK},
	} {
		// Version discovery needs no token.
		status, hdr, b := e.call(t, "GET", tc.path, "", "")
		if status != tc.status {
			t.Errorf("GET %s: %d, want %d; body %q", tc.path, status, tc.status, b)
			continue
		}
		if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("GET %s: Content-Type %q", tc.path, ct)
		}
		var body struct {
			Versions []struct {
				ID     string `json:"id"`
				Status string `json:"status"`
				Links  []struct {
					Rel  string `json:"rel"`
					Href string `json:"href"`
				} `json:"links"`
			} `json:"versions"`
		}
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatalf("GET %s: %v; body %q", tc.path, err, b)
		}
		// v2.12 and later add the tasks, cache and location APIs, which
		// cloudimage does not serve.
		if len(body.Versions) != 12 {
			t.Fatalf("GET %s: %d versions, want v2.11 to v2.0", tc.path, len(body.Versions))
		}
		for i, v := range body.Versions {
			want := "SUPPORTED"
			if i == 0 {
				want = "CURRENT"
			}
			if v.ID != fmt.Sprintf("v2.%d", 11-i) || v.Status != want || len(v.Links) != 1 ||
				v.Links[0].Rel != "self" || v.Links[0].Href != e.url+"/v2/" {
				t.Errorf("GET %s: version %d is %+v", tc.path, i, v)
			}
		}
	}
	// The root answers only itself: other paths are not versions.
	for _, path := range []string{"/nothing", "/v3", "/v2/nothing"} {
		if status, _, b := e.call(t, "GET", path, "", ""); status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404; body %q", path, status, b)
		}
	}
	if status, _, _ := e.call(t, "POST", "/", "", ""); status != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", status)
	}
}
