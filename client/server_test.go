package client_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"factstream/app"
)

// service is a factstream running in this process through app.Run.
type service struct {
	URL  string
	Addr string
	cfg  app.Config
	stop func() error
}

// runService starts app.Run with cfg and returns once /healthz answers.
func runService(cfg app.Config) (*service, error) {
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan net.Addr, 1)
	cfg.OnListen = func(a net.Addr) { addrs <- a }
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, cfg) }()
	// Once: a restarted service's copy and the original share it.
	s := &service{cfg: cfg, stop: sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			return fmt.Errorf("the service did not stop within 15s")
		}
	})}
	select {
	case a := <-addrs:
		s.Addr = a.String()
		s.URL = "http://" + s.Addr
	case err := <-done:
		cancel()
		return nil, fmt.Errorf("the service did not start: %v", err)
	case <-time.After(10 * time.Second):
		s.stop()
		return nil, fmt.Errorf("the service did not start within 10s")
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get(s.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("/healthz: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// config is the default configuration with an in-memory store on a free
// loopback port, its logs discarded.
func config() app.Config {
	cfg := app.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Store = "memory:"
	cfg.Instance = "test"
	cfg.LogOutput = io.Discard
	return cfg
}

// exampleService runs a service for an example; stop ends it.
func exampleService() (url string, stop func()) {
	s, err := runService(config())
	if err != nil {
		panic(err)
	}
	return s.URL, func() { s.stop() }
}

// startService runs a service for a test, stopped at its end.
func startService(tb testing.TB, cfg app.Config) *service {
	tb.Helper()
	s, err := runService(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Stop(tb) })
	return s
}

// Stop shuts the service down and waits for app.Run to return; later
// calls only repeat the outcome.
func (s *service) Stop(tb testing.TB) {
	tb.Helper()
	if err := s.stop(); err != nil {
		tb.Errorf("service: %v", err)
	}
}

// Restart stops the service and starts it again on the same address and
// store, as a deploy or a crash-and-restart would.
func (s *service) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop(tb)
	cfg := s.cfg
	cfg.Addr = s.Addr
	*s = *startService(tb, cfg)
}
