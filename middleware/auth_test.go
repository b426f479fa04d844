package middleware

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

func TestTokensMatchOnlyWholeTokens(t *testing.T) {
	tokens := NewTokens([]string{"alpha-1"}, []string{"beta-2"})
	for _, tc := range []struct {
		token string
		want  bool
	}{
		{"alpha-1", true},
		{"beta-2", true},
		{"alpha-", false},
		{"alpha-12", false},
		{"ALPHA-1", false},
		{"", false},
	} {
		if got := tokens.Match(tc.token); got != tc.want {
			t.Errorf("Match(%q) = %v, want %v", tc.token, got, tc.want)
		}
	}
	if !NewTokens(nil).Empty() || tokens.Empty() {
		t.Fatal("Empty is wrong")
	}
}

func TestRequireToken(t *testing.T) {
	all := FromHeader | FromQuery | FromCookie
	for _, tc := range []struct {
		name      string
		sources   TokenSource
		tokens    []string
		prepare   func(r *http.Request)
		want      int
		wantError bool // challenge with error="invalid_token"
	}{
		{"NoTokensConfiguredLetsAllThrough", all, nil, func(r *http.Request) {}, 200, false},
		{"Missing", all, []string{"s3cret"}, func(r *http.Request) {}, 401, false},
		{"Header", all, []string{"s3cret"}, func(r *http.Request) { r.Header.Set("Authorization", "Bearer s3cret") }, 200, false},
		{"HeaderSchemeIsCaseInsensitive", all, []string{"s3cret"}, func(r *http.Request) { r.Header.Set("Authorization", "bearer s3cret") }, 200, false},
		{"HeaderWrong", all, []string{"s3cret"}, func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, 401, true},
		{"HeaderOtherScheme", all, []string{"s3cret"}, func(r *http.Request) { r.Header.Set("Authorization", "Basic czNjcmV0") }, 401, true},
		{"HeaderEmptyBearer", all, []string{"s3cret"}, func(r *http.Request) { r.Header.Set("Authorization", "Bearer") }, 401, true},
		{"Query", all, []string{"s3cret"}, func(r *http.Request) { r.URL.RawQuery = "access_token=s3cret" }, 200, false},
		{"QueryWrong", all, []string{"s3cret"}, func(r *http.Request) { r.URL.RawQuery = "access_token=nope" }, 401, true},
		{"Cookie", all, []string{"s3cret"}, func(r *http.Request) { r.AddCookie(&http.Cookie{Name: TokenCookie, Value: "s3cret"}) }, 200, false},
		{"CookieWrong", all, []string{"s3cret"}, func(r *http.Request) { r.AddCookie(&http.Cookie{Name: TokenCookie, Value: "nope"}) }, 401, true},
		{"HeaderWinsOverQuery", all, []string{"s3cret"}, func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer nope")
			r.URL.RawQuery = "access_token=s3cret"
		}, 401, true},
		{"QueryRefusedWhereHeaderOnly", FromHeader, []string{"s3cret"}, func(r *http.Request) { r.URL.RawQuery = "access_token=s3cret" }, 401, false},
		{"CookieRefusedWhereHeaderOnly", FromHeader, []string{"s3cret"}, func(r *http.Request) { r.AddCookie(&http.Cookie{Name: TokenCookie, Value: "s3cret"}) }, 401, false},
		{"AnyOfSeveralTokens", all, []string{"one", "two"}, func(r *http.Request) { r.Header.Set("Authorization", "Bearer two") }, 200, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/x", nil)
			tc.prepare(req)
			w := serve(t, req, RequireToken(NewTokens(tc.tokens), tc.sources, nil, testReject))
			if got := w.Code; got != tc.want {
				t.Fatalf("status = %d, want %d", got, tc.want)
			}
			challenge := w.Header().Get("WWW-Authenticate")
			switch {
			case tc.want == 200 && challenge != "":
				t.Fatalf("WWW-Authenticate = %q on success", challenge)
			case tc.want == 401 && tc.wantError && challenge != `Bearer realm="factstream", error="invalid_token"`:
				t.Fatalf("WWW-Authenticate = %q, want the invalid_token challenge", challenge)
			case tc.want == 401 && !tc.wantError && challenge != `Bearer realm="factstream"`:
				t.Fatalf("WWW-Authenticate = %q, want the plain challenge", challenge)
			}
		})
	}
}

// Wrong tokens, on any endpoint, draw from one bucket per client: past it
// every request with a token from that client is refused, a right one too
// (the answer must not confirm a guess), until the bucket refills.
func TestWrongTokensAreSlowedPerClient(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	failures := NewAuthFailures(0) // publishing not rate limited: 1 a second
	failures.limit.now = clock.now
	tokens := NewTokens([]string{"right-token-0123456789"})
	read := RequireToken(tokens, FromHeader|FromQuery, failures, testReject)
	admin := RequireToken(tokens, FromHeader, failures, testReject)
	try := func(mw gin.HandlerFunc, remote, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		req.RemoteAddr = remote
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return serve(t, req, mw)
	}
	for i := range authFailureBurst {
		mw := read
		if i%2 == 1 {
			mw = admin // one bucket for every endpoint
		}
		if got := try(mw, "192.0.2.1:1000", "guess-"+strconv.Itoa(i)).Code; got != http.StatusUnauthorized {
			t.Fatalf("wrong token %d = %d, want 401", i+1, got)
		}
	}
	for _, token := range []string{"another-guess", "right-token-0123456789"} {
		w := try(read, "192.0.2.1:1001", token)
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
			t.Fatalf("token %q past the bucket = %d Retry-After %q, want 429 and 1", token, w.Code, w.Header().Get("Retry-After"))
		}
	}
	if got := try(read, "192.0.2.1:1002", "").Code; got != http.StatusUnauthorized {
		t.Fatalf("no token = %d, want 401 (asking for a token is not guessing)", got)
	}
	if got := try(read, "192.0.2.2:1000", "right-token-0123456789").Code; got != http.StatusOK {
		t.Fatalf("another client = %d, want 200", got)
	}
	for range 3 * authFailureBurst {
		if got := try(read, "192.0.2.2:1000", "right-token-0123456789").Code; got != http.StatusOK {
			t.Fatalf("right tokens must not use up the bucket: %d", got)
		}
	}
	clock.advance(time.Second)
	if got := try(read, "192.0.2.1:1003", "right-token-0123456789").Code; got != http.StatusOK {
		t.Fatalf("after waiting as told = %d, want 200", got)
	}
	if got := try(read, "192.0.2.1:1003", "guess-again").Code; got != http.StatusUnauthorized {
		t.Fatalf("one more guess after a second = %d, want 401", got)
	}
	if got := try(read, "192.0.2.1:1003", "guess-too-soon").Code; got != http.StatusTooManyRequests {
		t.Fatalf("a second guess within that second = %d, want 429", got)
	}
}
