package app

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The start-up log of a service that already holds facts names where to
// open it, its file, the facts it holds and its version; on loopback it
// warns of nothing.
func TestStartupLogSaysWhereAndWhat(t *testing.T) {
	file := filepath.Join(t.TempDir(), "facts.db")
	run := func(publish int) []map[string]any {
		t.Helper()
		var out bytes.Buffer
		cfg := serviceConfig(t)
		cfg.Store = "bolt:" + file
		cfg.LogFormat = "json"
		cfg.LogOutput = &out
		s, err := New(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(t.Context())
		served := make(chan error, 1)
		go func() { served <- s.Serve(ctx) }()
		for range publish {
			resp, err := http.Post("http://"+s.Addr().String()+"/fact", "application/json", strings.NewReader(`{"info":"x"}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("publish = %d", resp.StatusCode)
			}
		}
		stop()
		if err := <-served; err != nil {
			t.Fatal(err)
		}
		var lines []map[string]any
		for _, l := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
			var rec map[string]any
			if err := json.Unmarshal(l, &rec); err != nil {
				t.Fatalf("log line %q: %v", l, err)
			}
			lines = append(lines, rec)
		}
		return lines
	}
	run(3)
	lines := run(0)
	i := slices.IndexFunc(lines, func(r map[string]any) bool { return r["msg"] == "factstream listening" })
	if i < 0 {
		t.Fatalf("no start-up line in %v", lines)
	}
	got := lines[i]
	_, port, _ := net.SplitHostPort(got["addr"].(string))
	want := map[string]any{
		"url": "http://localhost:" + port + "/", "store": "bolt", "file": file,
		"facts": 3.0, "head_seq": 3.0, "version": version(),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("start-up log %s = %v, want %v", k, got[k], v)
		}
	}
	for _, r := range lines {
		if r["level"] == "WARN" {
			t.Errorf("warning on loopback: %v", r)
		}
	}
}

func TestStartupURLIsTheOneToOpen(t *testing.T) {
	cases := []struct {
		name, configured string
		bound            net.TCPAddr
		tls              bool
		want             string
	}{
		{"AllInterfaces", ":3000", net.TCPAddr{IP: net.IPv6unspecified, Port: 3000}, false, "http://localhost:3000/"},
		{"AllIPv4", "0.0.0.0:3000", net.TCPAddr{IP: net.IPv4zero, Port: 3000}, false, "http://localhost:3000/"},
		{"Loopback", "127.0.0.1:0", net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 41234}, false, "http://localhost:41234/"},
		{"LoopbackV6TLS", "[::1]:8443", net.TCPAddr{IP: net.IPv6loopback, Port: 8443}, true, "https://localhost:8443/"},
		{"OneAddress", "192.168.1.5:3000", net.TCPAddr{IP: net.IPv4(192, 168, 1, 5), Port: 3000}, false, "http://192.168.1.5:3000/"},
		{"OneAddressV6", "[2001:db8::1]:3000", net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 3000}, true, "https://[2001:db8::1]:3000/"},
		{"HostName", "facts.lan:3000", net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 3000}, false, "http://facts.lan:3000/"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := openURL(tc.configured, &tc.bound, tc.tls); got != tc.want {
				t.Fatalf("openURL = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStartupLogNamesTheStoreWithoutSecrets(t *testing.T) {
	abs, err := filepath.Abs("data/facts.db")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, spec, want string }{
		{"BoltRelative", "bolt:data/facts.db", abs},
		{"BoltAbsolute", "bolt:/var/lib/factstream/facts.db", "/var/lib/factstream/facts.db"},
		{"Memory", "memory:", ""},
		{"Redis", "redis://cache:6379/2", "redis://cache:6379/2"},
		{"RedisPassword", "redis://:s3cret@cache:6379/0", "redis://cache:6379/0"},
		{"RedisUserAndPassword", "redis://app:s3cret@cache:6379/0", "redis://app@cache:6379/0"},
		{"RedisTLSPasswordParameter", "rediss://cache:6380/0?password=s3cret&dial_timeout=3s", "rediss://cache:6380/0?dial_timeout=3s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kind := strings.SplitN(tc.spec, ":", 2)[0]
			if kind == "rediss" {
				kind = "redis"
			}
			got := storeLocation(tc.spec, kind)
			if got != tc.want || strings.Contains(got, "s3cret") {
				t.Fatalf("storeLocation(%q) = %q, want %q", tc.spec, got, tc.want)
			}
		})
	}
}

// One line each when anyone may publish, or any page may call the API,
// on an address others can reach.
func TestStartupWarnsWhenOpenToTheNetwork(t *testing.T) {
	all := &net.TCPAddr{IP: net.IPv6unspecified, Port: 3000}
	lan := &net.TCPAddr{IP: net.IPv4(192, 168, 1, 5), Port: 3000}
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 3000}
	cases := []struct {
		name          string
		addr          net.Addr
		tokens, cors  []string
		publish, anyO bool
	}{
		{"Defaults", all, nil, []string{"*"}, true, true},
		{"OneAddress", lan, nil, nil, true, false},
		{"Tokens", all, []string{"tok"}, []string{"https://app.example"}, false, false},
		{"TokensButAnyOrigin", lan, []string{"tok"}, []string{"*"}, false, true},
		{"LoopbackOpen", local, nil, []string{"*"}, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws := exposure(tc.addr, tc.tokens, tc.cors)
			publish := slices.ContainsFunc(ws, func(w string) bool { return strings.Contains(w, "--publish-tokens") })
			anyO := slices.ContainsFunc(ws, func(w string) bool { return strings.Contains(w, "CORS") })
			if publish != tc.publish || anyO != tc.anyO || len(ws) != btoi(tc.publish)+btoi(tc.anyO) {
				t.Fatalf("warnings %q: want publish %v, CORS %v", ws, tc.publish, tc.anyO)
			}
			for _, w := range ws {
				if strings.Contains(w, "\n") {
					t.Fatalf("warning %q is more than one line", w)
				}
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
