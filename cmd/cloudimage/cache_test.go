package main

import (
	"strings"
	"testing"

	"github.com/cloudimage/cloudimage/client"
)

// TestCacheConfig checks serve's cache settings: the defaults are on and
// logged, CLOUDIMAGE_PAGE_CACHE is obeyed, --token-cache wins over
// CLOUDIMAGE_TOKEN_CACHE, and bad values are refused.
func TestCacheConfig(t *testing.T) {
	t.Parallel()
	env := map[string]string{"CLOUDIMAGE_ADMIN_PASSWORD": testAdminPassword}
	s := startServer(t, t.TempDir(), env)
	s.Stop(t)
	if log := s.Stderr.String(); !strings.Contains(log, "page_cache=16777216 token_cache=10000") {
		t.Errorf("config log lacks the default caches page_cache=16777216 token_cache=10000:\n%s", log)
	}

	env["CLOUDIMAGE_PAGE_CACHE"] = "0"
	env["CLOUDIMAGE_TOKEN_CACHE"] = "x"
	s = startServer(t, t.TempDir(), env, "--token-cache", "5")
	c := s.adminClient(t)
	if _, err := c.ListImages(t.Context(), client.ListOptions{}); err != nil {
		t.Errorf("list without a page cache: %v", err)
	}
	s.Stop(t)
	if log := s.Stderr.String(); !strings.Contains(log, "page_cache=0 token_cache=5") {
		t.Errorf("config log lacks page_cache=0 token_cache=5:\n%s", log)
	}

	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--page-cache", "-1"}, "cache sizes must not be negative"},
		{nil, []string{"--token-cache", "-1"}, "cache sizes must not be negative"},
		{map[string]string{"CLOUDIMAGE_PAGE_CACHE": "lots"}, nil, "CLOUDIMAGE_PAGE_CACHE: not an integer"},
	} {
		args := append([]string{"serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"}, c.args...)
		if _, err := cli(t, c.env, args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("serve %v with %v: %v, want %q", c.args, c.env, err, c.want)
		}
	}
}
