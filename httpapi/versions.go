package httpapi

import (
	"fmt"
	"net/http"
)

// Version discovery of the image API, as Glance answers it: the root is a
// 300 Multiple Choices, /versions the same list with 200. Keystone's
// discovery (openstacksdk) also reads a catalog URL that ends in /v2, so
// /v2 and /v2/ answer the list too.

// imageAPIMinor is the newest v2 minor version served. Glance 25 serves
// v2.15, but v2.12 adds the tasks of an image (GET /v2/images/{id}/tasks),
// v2.13–v2.15 the cache API and v2.16 the location API, none of which
// cloudimage has: clients such as Tempest use them when they are listed.
const imageAPIMinor = 11

func (s *Server) versionRoutes(mux *routeMux) {
	mux.HandleFunc("GET /{$}", s.imageVersions(http.StatusMultipleChoices))
	mux.HandleFunc("GET /versions", s.imageVersions(http.StatusOK))
	mux.HandleFunc("GET /v2", s.imageVersions(http.StatusOK))
	mux.HandleFunc("GET /v2/{$}", s.imageVersions(http.StatusOK))
}

// imageVersion is one entry of the version list.
type imageVersion struct {
	ID     string             `json:"id"`
	Status string             `json:"status"`
	Links  []imageVersionLink `json:"links"`
}

type imageVersionLink struct {
	Rel  string `json:"rel"`
	Href string `json:"href"`
}

// imageVersionList lists the current version, then every older v2
// minor version, newest first, each linking to /v2/ under base.
func imageVersionList(base string) []imageVersion {
	out := make([]imageVersion, 0, imageAPIMinor+1)
	for minor := imageAPIMinor; minor >= 0; minor-- {
		status := "SUPPORTED"
		if minor == imageAPIMinor {
			status = "CURRENT"
		}
		out = append(out, imageVersion{
			ID: fmt.Sprintf("v2.%d", minor), Status: status,
			Links: []imageVersionLink{{Rel: "self", Href: base + "/v2/"}},
		})
	}
	return out
}

// imageVersions answers the version list with status.
func (s *Server) imageVersions(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, status, map[string]any{"versions": imageVersionList(s.publicURL)})
	}
}
