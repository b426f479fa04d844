package middleware

import (
	"net/http"
	"net/http/httptest"
	"testing"
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
			w := serve(t, req, RequireToken(NewTokens(tc.tokens), tc.sources, testReject))
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
