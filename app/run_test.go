package app

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

func serviceConfig(t *testing.T) Config {
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Store = "bolt:" + filepath.Join(t.TempDir(), "facts.db")
	cfg.Instance = "test"
	cfg.LogOutput = io.Discard
	return cfg
}

// New binds the address before Serve runs, so a caller knows where the
// service will answer; Serve answers there until its context ends.
func TestNewBindsThenServeAnswers(t *testing.T) {
	s, err := New(t.Context(), serviceConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	resp, err := http.Get("http://" + s.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz = %d", resp.StatusCode)
	}
	stop()
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v, want nil after its context ended", err)
	}
}

// A New that fails releases what it opened: the bolt file it held is free
// for the next one at once (bbolt locks its file while it is open).
func TestFailedNewReleasesTheStore(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := serviceConfig(t)
	cfg.Addr = busy.Addr().String()
	if _, err := New(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("New on a busy address = %v, want a listen error", err)
	}
	cfg.Addr = "127.0.0.1:0"
	s, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New on the same store after a failed one: %v", err)
	}
	s.Close()
	s.Close() // a second Close does nothing
}
