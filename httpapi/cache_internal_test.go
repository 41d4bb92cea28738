package httpapi

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cloudimage/cloudimage"
)

// TestPageKey checks that a page's key has the same small size however
// long its query, and that the fields it is made of cannot run into each
// other: moving a byte from one to the next gives another key.
func TestPageKey(t *testing.T) {
	c := &cloudimage.Caller{UserID: "u", ProjectID: "p", Roles: []cloudimage.Role{cloudimage.RoleMember}}
	short := pageKey(httptest.NewRequest("GET", "/v2/images?limit=1", nil), c)
	long := pageKey(httptest.NewRequest("GET", "/v2/images?limit=1&pad="+strings.Repeat("x", 1<<16), nil), c)
	if len(short) != len(long) || len(long) > 64 {
		t.Errorf("keys of %d and %d bytes for a short and a 64 KiB query, want one small size", len(short), len(long))
	}
	keys := map[string]string{}
	for name, k := range map[string]string{
		"query":           pageKey(httptest.NewRequest("GET", "/v2/images?a", nil), c),
		"user ab":         pageKey(httptest.NewRequest("GET", "/v2/images?a", nil), &cloudimage.Caller{UserID: "ab", ProjectID: "c"}),
		"user a":          pageKey(httptest.NewRequest("GET", "/v2/images?a", nil), &cloudimage.Caller{UserID: "a", ProjectID: "bc"}),
		"no roles":        pageKey(httptest.NewRequest("GET", "/v2/images?a", nil), &cloudimage.Caller{UserID: "u", ProjectID: "p"}),
		"another project": pageKey(httptest.NewRequest("GET", "/v2/images?a", nil), &cloudimage.Caller{UserID: "u", ProjectID: "q", Roles: c.Roles}),
	} {
		if other, ok := keys[k]; ok {
			t.Errorf("%s and %s have the same key", name, other)
		}
		keys[k] = name
	}
}
