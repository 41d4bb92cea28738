package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// reference is a minimal HTTP server that answers every request with the
// bytes the real server gave for one page, from memory: the ceiling the
// first page is compared with.
type reference struct {
	url   string
	close func()
}

// startReference fetches url once and serves its response on 127.0.0.1.
func startReference(ctx context.Context, d *driver, url string) (*reference, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Auth-Token", d.token)
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	} else if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reference: GET %s: %s", url, resp.Status)
	}
	ctype := resp.Header.Get("Content-Type")
	length := strconv.Itoa(len(body))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Type", ctype)
			h.Set("Content-Length", length)
			w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	return &reference{
		url: "http://" + ln.Addr().String(),
		close: func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
			if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
				panic(err)
			}
		},
	}, nil
}
