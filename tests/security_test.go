package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"factstream/store"
)

// exchange is one request's answer, body read.
type exchange struct {
	status int
	header http.Header
	body   string
}

// problemType returns the type member of a problem+json body, or "".
func (e exchange) problemType() string {
	if !strings.HasPrefix(e.header.Get("Content-Type"), "application/problem+json") {
		return ""
	}
	var p struct {
		Type string `json:"type"`
	}
	json.Unmarshal([]byte(e.body), &p)
	return p.Type
}

// do sends one request with client (nil: the default client). A stream's
// body is not read to its end: for /events only the status and headers
// count, and the connection is dropped.
func do(tb testing.TB, client *http.Client, method, url string, header http.Header, body string) exchange {
	tb.Helper()
	if client == nil {
		client = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		tb.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	ex := exchange{status: resp.StatusCode, header: resp.Header}
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		ex.body = string(b)
	}
	return ex
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

func jsonHeader(h http.Header) http.Header {
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", "application/json")
	return h
}

// factCount returns the store's fact count from /status.
func factCount(tb testing.TB, base string, header http.Header) uint64 {
	tb.Helper()
	ex := do(tb, nil, http.MethodGet, base+"/status", header, "")
	var st struct {
		Facts   uint64 `json:"facts"`
		Clients int    `json:"clients"`
	}
	if ex.status != http.StatusOK || json.Unmarshal([]byte(ex.body), &st) != nil {
		tb.Fatalf("GET /status = %d %s", ex.status, ex.body)
	}
	return st.Facts
}

// nextFact returns the next fact the stream delivers, skipping the retry
// line and empty snapshots.
func nextFact(tb testing.TB, s *sseStream) store.Fact {
	tb.Helper()
	for {
		ev, err := s.Next(5 * time.Second)
		if err != nil {
			tb.Fatalf("waiting for a fact: %v", err)
		}
		if ev.Data == "" {
			continue // the retry line
		}
		if facts := factsOf(tb, ev); len(facts) > 0 {
			return facts[0]
		}
	}
}

func TestPublishNeedsAPublishToken(t *testing.T) {
	cfg := testConfig(t)
	cfg.PublishTokens = []string{"pub-one", "pub-two"}
	srv := startServer(t, cfg)
	stream := openStream(t, srv.URL+"/events", nil) // reading stays open
	for ev := (sseEvent{}); ev.Data != "[]"; {
		var err error
		if ev, err = stream.Next(5 * time.Second); err != nil || (ev.Data != "" && ev.Data != "[]") {
			t.Fatalf("snapshot = %+v, %v", ev, err)
		}
	}

	bodies := map[string]string{"/fact": `{"info":"one"}`, "/facts": `[{"info":"one"},{"info":"two"}]`}
	created := 0
	for _, path := range []string{"/fact", "/facts"} {
		for _, tc := range []struct {
			name     string
			header   http.Header
			want     int
			wantType string
		}{
			{"NoToken", nil, http.StatusUnauthorized, "urn:factstream:problem:token-required"},
			{"WrongToken", bearer("pub-three"), http.StatusUnauthorized, "urn:factstream:problem:token-invalid"},
			{"TokenInQueryIsNotEnough", nil, http.StatusUnauthorized, "urn:factstream:problem:token-required"},
			{"TokenInCookieIsNotEnough", http.Header{"Cookie": {"factstream_token=pub-one"}}, http.StatusUnauthorized, "urn:factstream:problem:token-required"},
			{"RightToken", bearer("pub-two"), http.StatusCreated, ""},
		} {
			t.Run(strings.TrimPrefix(path, "/")+"/"+tc.name, func(t *testing.T) {
				url := srv.URL + path
				if tc.name == "TokenInQueryIsNotEnough" {
					url += "?access_token=pub-one"
				}
				ex := do(t, nil, http.MethodPost, url, jsonHeader(tc.header), bodies[path])
				if ex.status != tc.want {
					t.Fatalf("status = %d %s, want %d", ex.status, ex.body, tc.want)
				}
				if tc.want == http.StatusCreated {
					created++
					return
				}
				if got := ex.problemType(); got != tc.wantType {
					t.Fatalf("problem type = %q (%s), want %q", got, ex.body, tc.wantType)
				}
				if got := ex.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm="factstream"`) {
					t.Fatalf("WWW-Authenticate = %q", got)
				}
			})
		}
	}
	// Refused requests stored nothing and sent nothing: the stream's first
	// fact is the first accepted one, and the store holds the accepted ones.
	if got := nextFact(t, stream); got.Seq != 1 || got.Info != "one" {
		t.Fatalf("first streamed fact = %+v, want seq 1 'one'", got)
	}
	if got, want := factCount(t, srv.URL, nil), uint64(3); got != want || created != 2 {
		t.Fatalf("facts = %d after %d accepted posts, want %d", got, created, want)
	}
}

// publishAs posts one fact with a bearer token and returns it.
func publishAs(tb testing.TB, base, token, info string) store.Fact {
	tb.Helper()
	ex := do(tb, nil, http.MethodPost, base+"/fact", jsonHeader(bearer(token)), fmt.Sprintf(`{"info":%q}`, info))
	var f store.Fact
	if ex.status != http.StatusCreated || json.Unmarshal([]byte(ex.body), &f) != nil {
		tb.Fatalf("POST /fact = %d %s", ex.status, ex.body)
	}
	return f
}

func TestReadingNeedsASubscribeToken(t *testing.T) {
	cfg := testConfig(t)
	cfg.SubscribeTokens = []string{"sub-token"}
	cfg.PublishTokens = []string{"pub-token"}
	// Each path is tried from an address of its own (X-Forwarded-For from
	// a trusted proxy): one address trying every wrong token on every
	// path would be slowed down as a guesser.
	cfg.TrustedProxies = []string{"127.0.0.1"}
	srv := startServer(t, cfg)
	f := publishAs(t, srv.URL, "pub-token", "guarded")

	ways := []struct {
		name   string
		query  string
		header http.Header
		want   int
	}{
		{"NoToken", "", nil, http.StatusUnauthorized},
		{"Header", "", bearer("sub-token"), http.StatusOK},
		{"HeaderWrong", "", bearer("sub-tokens"), http.StatusUnauthorized},
		{"Query", "access_token=sub-token", nil, http.StatusOK},
		{"QueryWrong", "access_token=sub", nil, http.StatusUnauthorized},
		{"Cookie", "", http.Header{"Cookie": {"factstream_token=sub-token"}}, http.StatusOK},
		{"CookieWrong", "", http.Header{"Cookie": {"factstream_token=nope"}}, http.StatusUnauthorized},
		{"PublishTokenReadsToo", "", bearer("pub-token"), http.StatusOK},
	}
	for i, path := range []string{"/events", "/facts", "/facts/" + f.ID, "/status"} {
		for _, w := range ways {
			t.Run(strings.ReplaceAll(path[1:], "/", "-")+"/"+w.name, func(t *testing.T) {
				url := srv.URL + path
				if w.query != "" {
					url += "?" + w.query
				}
				header := w.header.Clone()
				if header == nil {
					header = http.Header{}
				}
				header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1))
				ex := do(t, nil, http.MethodGet, url, header, "")
				if ex.status != w.want {
					t.Fatalf("GET %s = %d %s, want %d", path, ex.status, ex.body, w.want)
				}
				if w.want == http.StatusUnauthorized && ex.problemType() == "" {
					t.Fatalf("401 is not problem+json: %s %s", ex.header.Get("Content-Type"), ex.body)
				}
			})
		}
	}
	// A stream opened with the query token receives the facts.
	s := openStream(t, srv.URL+"/events?access_token=sub-token&lastEventId="+strconv.FormatUint(f.Seq, 10), nil)
	next := publishAs(t, srv.URL, "pub-token", "after")
	if got := nextFact(t, s); got.ID != next.ID {
		t.Fatalf("streamed %+v, want %+v", got, next)
	}

	for _, open := range []string{"/healthz", "/readyz", "/metrics", "/"} {
		if ex := do(t, nil, http.MethodGet, srv.URL+open, nil, ""); ex.status == http.StatusUnauthorized {
			t.Errorf("GET %s = 401, want it open without a token", open)
		}
	}
}

func TestMetricsTokenProtectsMetrics(t *testing.T) {
	cfg := testConfig(t)
	cfg.MetricsToken = "scrape-me"
	cfg.SubscribeTokens = []string{"sub-token"}
	srv := startServer(t, cfg)
	for _, tc := range []struct {
		name   string
		header http.Header
		want   int
	}{
		{"NoToken", nil, http.StatusUnauthorized},
		{"SubscribeTokenIsNotEnough", bearer("sub-token"), http.StatusUnauthorized},
		{"CookieIsNotEnough", http.Header{"Cookie": {"factstream_token=scrape-me"}}, http.StatusUnauthorized},
		{"MetricsToken", bearer("scrape-me"), http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if ex := do(t, nil, http.MethodGet, srv.URL+"/metrics", tc.header, ""); ex.status != tc.want {
				t.Fatalf("GET /metrics = %d, want %d", ex.status, tc.want)
			}
		})
	}
}

func TestTokensNeverReachTheLog(t *testing.T) {
	logs := &lockedBuffer{}
	cfg := testConfig(t)
	cfg.LogOutput = logs
	cfg.LogFormat = "json"
	cfg.LogLevel = -4 // debug: everything that is ever logged
	cfg.SubscribeTokens = []string{"sub-SECRET-1"}
	cfg.PublishTokens = []string{"pub-SECRET-2"}
	srv := startServer(t, cfg)
	publishAs(t, srv.URL, "pub-SECRET-2", "logged")
	do(t, nil, http.MethodPost, srv.URL+"/fact", jsonHeader(bearer("wrong-SECRET-3")), `{"info":"x"}`)
	do(t, nil, http.MethodGet, srv.URL+"/events?access_token=sub-SECRET-1", nil, "")
	do(t, nil, http.MethodGet, srv.URL+"/facts?access_token=wrong-SECRET-4", nil, "")
	do(t, nil, http.MethodGet, srv.URL+"/status", http.Header{"Cookie": {"factstream_token=sub-SECRET-1"}}, "")
	srv.Stop(t) // every access line is written once its request ends
	out := logs.String()
	if strings.Count(out, `"msg":"request"`) < 5 {
		t.Fatalf("expected five access log lines, got:\n%s", out)
	}
	if strings.Contains(out, "SECRET") || strings.Contains(out, "access_token") {
		t.Fatalf("a token reached the log:\n%s", out)
	}
}

func TestCORSPreflight(t *testing.T) {
	cfg := testConfig(t)
	cfg.CORSOrigins = []string{"https://app.example"}
	cfg.PublishTokens = []string{"pub-token"}
	srv := startServer(t, cfg)
	preflight := func(origin, method, headers string) exchange {
		return do(t, nil, http.MethodOptions, srv.URL+"/fact", http.Header{
			"Origin":                         {origin},
			"Access-Control-Request-Method":  {method},
			"Access-Control-Request-Headers": {headers},
		}, "")
	}
	ok := preflight("https://app.example", "POST", "authorization,content-type,idempotency-key")
	if ok.status != http.StatusNoContent || ok.header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("preflight from the configured origin = %d, Allow-Origin %q", ok.status, ok.header.Get("Access-Control-Allow-Origin"))
	}
	if h := strings.ToLower(ok.header.Get("Access-Control-Allow-Headers")); !strings.Contains(h, "authorization") || !strings.Contains(h, "idempotency-key") || !strings.Contains(h, "last-event-id") {
		t.Fatalf("Access-Control-Allow-Headers = %q", h)
	}
	refused := preflight("https://evil.example", "POST", "authorization")
	if refused.status != http.StatusForbidden || refused.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin = %d, Allow-Origin %q", refused.status, refused.header.Get("Access-Control-Allow-Origin"))
	}
	if got := refused.problemType(); got != "urn:factstream:problem:origin-not-allowed" {
		t.Fatalf("refusal type = %q", got)
	}
	// A 401 carries the CORS headers, so the page can read why.
	denied := do(t, nil, http.MethodPost, srv.URL+"/fact", jsonHeader(http.Header{"Origin": {"https://app.example"}}), `{"info":"x"}`)
	if denied.status != http.StatusUnauthorized || denied.header.Get("Access-Control-Allow-Origin") != "https://app.example" {
		t.Fatalf("cross-origin 401 = %d, Allow-Origin %q", denied.status, denied.header.Get("Access-Control-Allow-Origin"))
	}
	// A cross-site form post from elsewhere is refused before it is read.
	forged := do(t, nil, http.MethodPost, srv.URL+"/fact", http.Header{"Origin": {"https://evil.example"},
		"Content-Type": {"application/x-www-form-urlencoded"}, "Authorization": {"Bearer pub-token"}}, "info=forged")
	if forged.status != http.StatusForbidden || factCount(t, srv.URL, nil) != 0 {
		t.Fatalf("post from another origin = %d, facts stored %d", forged.status, factCount(t, srv.URL, nil))
	}
}

func TestCORSStarAllowsAnyOriginWithoutCredentials(t *testing.T) {
	srv := startServer(t, testConfig(t)) // cors-origins defaults to *
	ex := do(t, nil, http.MethodOptions, srv.URL+"/events", http.Header{
		"Origin":                         {"https://anywhere.example"},
		"Access-Control-Request-Method":  {"GET"},
		"Access-Control-Request-Headers": {"last-event-id"},
	}, "")
	if ex.status != http.StatusNoContent || ex.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("preflight = %d, Allow-Origin %q", ex.status, ex.header.Get("Access-Control-Allow-Origin"))
	}
	if ex.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatal("* must never come with Access-Control-Allow-Credentials")
	}
}

// clientFrom returns an HTTP client whose connections come from the
// loopback address ip (any of 127.0.0.0/8 reaches the server on Linux), so
// a test can be several clients.
func clientFrom(ip string) *http.Client {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
}

func TestRateLimitPerClient(t *testing.T) {
	cfg := testConfig(t)
	// So slow that no token comes back during the test: no timing at play.
	cfg.PublishRate = 0.001
	cfg.PublishBurst = 2
	srv := startServer(t, cfg)
	a, b := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")
	post := func(c *http.Client, header http.Header) exchange {
		return do(t, c, http.MethodPost, srv.URL+"/fact", jsonHeader(header), `{"info":"limited"}`)
	}
	for i := range 2 {
		if ex := post(a, nil); ex.status != http.StatusCreated {
			t.Fatalf("post %d within the burst = %d %s", i, ex.status, ex.body)
		}
	}
	limited := post(a, nil)
	if limited.status != http.StatusTooManyRequests || limited.problemType() != "urn:factstream:problem:rate-limited" {
		t.Fatalf("past the rate = %d %s", limited.status, limited.body)
	}
	if n, err := strconv.Atoi(limited.header.Get("Retry-After")); err != nil || n < 1 {
		t.Fatalf("Retry-After = %q, want whole seconds >= 1", limited.header.Get("Retry-After"))
	}
	// A forged X-Forwarded-For does not buy a fresh bucket from an
	// untrusted peer.
	if ex := post(a, http.Header{"X-Forwarded-For": {"203.0.113.9"}}); ex.status != http.StatusTooManyRequests {
		t.Fatalf("with a forged X-Forwarded-For = %d, want 429", ex.status)
	}
	if ex := post(b, nil); ex.status != http.StatusCreated {
		t.Fatalf("another client = %d %s, want 201", ex.status, ex.body)
	}
	if got := factCount(t, srv.URL, nil); got != 3 {
		t.Fatalf("facts = %d, want 3: a limited request must store nothing", got)
	}
	// Reading is not limited.
	for range 5 {
		if ex := do(t, a, http.MethodGet, srv.URL+"/facts", nil, ""); ex.status != http.StatusOK {
			t.Fatalf("GET /facts from the limited client = %d", ex.status)
		}
	}
}

func TestTrustedProxyForwardsClientAddresses(t *testing.T) {
	cfg := testConfig(t)
	cfg.PublishRate = 0.001
	cfg.PublishBurst = 1
	cfg.TrustedProxies = []string{"127.0.0.1"}
	srv := startServer(t, cfg)
	proxy := clientFrom("127.0.0.1")
	post := func(forwarded string) int {
		return do(t, proxy, http.MethodPost, srv.URL+"/fact",
			jsonHeader(http.Header{"X-Forwarded-For": {forwarded}}), `{"info":"via proxy"}`).status
	}
	if got := post("203.0.113.1"); got != http.StatusCreated {
		t.Fatalf("first client = %d", got)
	}
	if got := post("203.0.113.1"); got != http.StatusTooManyRequests {
		t.Fatalf("first client again = %d, want 429", got)
	}
	if got := post("203.0.113.2"); got != http.StatusCreated {
		t.Fatalf("second client behind the same proxy = %d, want 201", got)
	}
	// The proxy appends the peer it saw; what the client wrote before it
	// is not believed.
	if got := post("198.51.100.7, 203.0.113.1"); got != http.StatusTooManyRequests {
		t.Fatalf("client prepending a forged address = %d, want 429", got)
	}
}

func TestMaxBody(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxBody = 1024
	srv := startServer(t, cfg)
	big := `{"info":"` + strings.Repeat("x", 2000) + `"}`
	if ex := do(t, nil, http.MethodPost, srv.URL+"/fact", jsonHeader(nil), big); ex.status != http.StatusRequestEntityTooLarge ||
		ex.problemType() != "urn:factstream:problem:body-too-large" {
		t.Fatalf("large body = %d %s", ex.status, ex.body)
	}
	// Without Content-Length the limit holds while reading.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/facts", io.MultiReader(strings.NewReader(big)))
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("large chunked body = %d", resp.StatusCode)
	}
	if ex := do(t, nil, http.MethodPost, srv.URL+"/fact", jsonHeader(nil), `{"info":"small"}`); ex.status != http.StatusCreated {
		t.Fatalf("small body = %d %s", ex.status, ex.body)
	}
	if got := factCount(t, srv.URL, nil); got != 1 {
		t.Fatalf("facts = %d, want 1", got)
	}
}

func TestMaxClients(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxClients = 2
	srv := startServer(t, cfg)
	first := openStream(t, srv.URL+"/events", nil)
	openStream(t, srv.URL+"/events", nil)
	full := do(t, nil, http.MethodGet, srv.URL+"/events", nil, "")
	if full.status != http.StatusServiceUnavailable || full.problemType() != "urn:factstream:problem:too-many-streams" {
		t.Fatalf("stream past max-clients = %d %s", full.status, full.body)
	}
	if n, err := strconv.Atoi(full.header.Get("Retry-After")); err != nil || n < 1 {
		t.Fatalf("Retry-After = %q", full.header.Get("Retry-After"))
	}
	first.Close()
	eventually(t, 5*time.Second, "a stream slot to be freed", func() bool {
		s, err := dialStream(srv.URL+"/events", nil)
		if err != nil {
			return false
		}
		defer s.Close()
		return s.Resp.StatusCode == http.StatusOK
	})
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	cfg := testConfig(t)
	cfg.PublishTokens = []string{"pub-token"}
	srv := startServer(t, cfg)
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/healthz"},
		{http.MethodGet, "/events"},
		{http.MethodGet, "/facts/unknown"},
		{http.MethodGet, "/no-such-path"},
		{http.MethodPost, "/fact"},
		{http.MethodGet, "/metrics"},
		{http.MethodGet, "/"},
		{http.MethodGet, "/assets/app.js"},
	} {
		ex := do(t, nil, tc.method, srv.URL+tc.path, nil, "")
		if ex.header.Get("X-Content-Type-Options") != "nosniff" || ex.header.Get("Referrer-Policy") == "" {
			t.Errorf("%s %s (%d): X-Content-Type-Options %q, Referrer-Policy %q", tc.method, tc.path, ex.status,
				ex.header.Get("X-Content-Type-Options"), ex.header.Get("Referrer-Policy"))
		}
	}
}
