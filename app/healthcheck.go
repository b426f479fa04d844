package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthcheckTimeout bounds the whole check, below the container health
// check's own timeout.
const healthcheckTimeout = 2 * time.Second

// Healthcheck is the "healthcheck" subcommand: it reads the same settings
// as the service (so FACTSTREAM_ADDR in a container applies), asks
// GET /healthz on that address and returns 0 when it answers 200, 1
// otherwise. The runtime image has no curl or shell, so the container's
// HEALTHCHECK runs the binary itself.
func Healthcheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := Parse(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "factstream healthcheck: %v\n", err)
		return 1
	}
	url, err := healthURL(cfg.Addr)
	if err != nil {
		fmt.Fprintf(stderr, "factstream healthcheck: %v\n", err)
		return 1
	}
	if err := checkHealth(ctx, url); err != nil {
		fmt.Fprintf(stderr, "factstream healthcheck: %v\n", err)
		return 1
	}
	return 0
}

// healthURL turns a listen address into a URL this host can reach: an
// unspecified host (":3000", "0.0.0.0:3000", "[::]:3000") means loopback.
func healthURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}

func checkHealth(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
