package httpapi

import (
	"crypto/subtle"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/cloudimage/cloudimage"
)

// clientHost is the address a request comes from, for the failure limits
// of token issuing: the connection's peer, without its port. Headers such
// as X-Forwarded-For are not trusted: any client can send them.
func clientHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// sameSecret compares two strings in constant time, so that how long a
// refusal takes tells nothing of how much of a secret was right.
func sameSecret(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// setRetryAfter tells the client when to try again, if err says.
func setRetryAfter(w http.ResponseWriter, err error) {
	if d := cloudimage.RetryAfter(err); d > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(retryAfterSeconds(d), 10))
	}
}

// retryAfterSeconds is d in whole seconds, rounded up: a client that
// waits that long is not refused again for waiting too little.
func retryAfterSeconds(d time.Duration) int64 {
	return int64(math.Ceil(d.Seconds()))
}
