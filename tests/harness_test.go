// Package tests holds black-box tests: they start the real service (in
// process through app.Run, or the built binary) and talk to it over
// loopback HTTP with real clients.
package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"factstream/app"
	"factstream/store"
)

// binPath is the factstream binary built once by TestMain for the tests that
// run the real process.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "factstream-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "factstream")
	// Built as the Dockerfile builds it: static, so TestStaticBuild
	// checks the very binary the other process tests run.
	build := exec.Command("go", "build", "-trimpath", "-o", binPath, "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building factstream:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testConfig is the default configuration with an in-memory store on a free
// loopback port and logs kept out of the test output. The tests honour
// FACTSTREAM_STREAM_TAKEOVER as the server does: =false runs them all with
// every stream on its own goroutine.
func testConfig(tb testing.TB) app.Config {
	tb.Helper()
	cfg := app.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Store = "memory:"
	cfg.Instance = "test"
	cfg.LogOutput = io.Discard
	if v := os.Getenv("FACTSTREAM_STREAM_TAKEOVER"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			tb.Fatalf("FACTSTREAM_STREAM_TAKEOVER=%q: want true or false", v)
		}
		cfg.StreamTakeover = on
	}
	return cfg
}

// server is a factstream running in process.
type server struct {
	URL  string
	Addr string

	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// startServer runs app.Run with cfg and waits until it accepts requests.
func startServer(tb testing.TB, cfg app.Config) *server {
	tb.Helper()
	s := launch(tb, cfg, "http")
	waitHealthy(tb, s.URL)
	return s
}

// launch runs app.Run with cfg and returns once it listens; the caller
// checks that it answers, over scheme.
func launch(tb testing.TB, cfg app.Config, scheme string) *server {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan net.Addr, 1)
	cfg.OnListen = func(a net.Addr) { addrs <- a }
	s := &server{cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- app.Run(ctx, cfg) }()
	select {
	case a := <-addrs:
		s.Addr = a.String()
		s.URL = scheme + "://" + s.Addr
	case err := <-s.done:
		cancel()
		tb.Fatalf("server did not start: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		tb.Fatal("server did not start within 10s")
	}
	tb.Cleanup(func() { s.Stop(tb) })
	return s
}

// Stop shuts the server down and waits for Run to return.
func (s *server) Stop(tb testing.TB) {
	tb.Helper()
	s.once.Do(func() {
		s.cancel()
		select {
		case err := <-s.done:
			if err != nil {
				tb.Errorf("server stopped with error: %v", err)
			}
		case <-time.After(15 * time.Second):
			tb.Error("server did not stop within 15s")
		}
	})
}

// waitHealthy polls /healthz until it answers 200.
func waitHealthy(tb testing.TB, base string) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("%s/healthz did not answer 200 within 10s", base)
}

// eventually polls cond until it holds or the timeout passes.
func eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// postFact posts one fact as JSON and returns the stored fact.
func postFact(tb testing.TB, base, info string) store.Fact {
	tb.Helper()
	f, err := tryPostFact(base, info)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// tryPostFact is postFact for goroutines other than the test's, which must
// not stop the test: it returns what went wrong.
func tryPostFact(base, info string) (store.Fact, error) {
	var f store.Fact
	status, body, err := tryPostJSON(base+"/fact", map[string]string{"info": info, "source": "https://example.com/" + info}, &f)
	if err == nil && status != http.StatusCreated {
		err = fmt.Errorf("POST /fact = %d %s", status, body)
	}
	return f, err
}

// postJSON posts v as JSON and decodes a 2xx answer into out.
func postJSON(tb testing.TB, url string, v any, out any) (int, string) {
	tb.Helper()
	status, body, err := tryPostJSON(url, v, out)
	if err != nil {
		tb.Fatal(err)
	}
	return status, body
}

// tryPostJSON is postJSON for goroutines other than the test's.
func tryPostJSON(url string, v any, out any) (int, string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(data))
	if err != nil {
		return 0, "", fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 == 2 && out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return 0, "", fmt.Errorf("decode %s: %w", body, err)
		}
	}
	return resp.StatusCode, string(body), nil
}

// getJSON gets url and decodes its JSON body into out.
func getJSON(tb testing.TB, url string, out any) int {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		tb.Fatalf("decode GET %s: %v", url, err)
	}
	return resp.StatusCode
}

// allFacts pages through GET /facts and returns every stored fact.
func allFacts(tb testing.TB, base string) []store.Fact {
	tb.Helper()
	var out []store.Fact
	after := uint64(0)
	for {
		var page struct {
			Facts     []store.Fact `json:"facts"`
			NextAfter *uint64      `json:"next_after"`
		}
		if code := getJSON(tb, fmt.Sprintf("%s/facts?after=%d&limit=1000", base, after), &page); code != http.StatusOK {
			tb.Fatalf("GET /facts = %d", code)
		}
		if page.NextAfter == nil {
			return out
		}
		out = append(out, page.Facts...)
		after = *page.NextAfter
	}
}

// checkGapless fails unless facts have seqs 1..len(facts) in order.
func checkGapless(tb testing.TB, facts []store.Fact) {
	tb.Helper()
	for i, f := range facts {
		if f.Seq != uint64(i+1) {
			tb.Fatalf("fact #%d has seq %d: the store has a gap or a duplicate", i, f.Seq)
		}
	}
}

// freePort returns a loopback address that was free a moment ago.
func freePort(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func jsonDecode(resp *http.Response, out any) error {
	return json.NewDecoder(resp.Body).Decode(out)
}
