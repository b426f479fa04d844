package middleware

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func preflight(origin, method, headers string) *http.Request {
	req := httptest.NewRequest(http.MethodOptions, "http://api.test/x", nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", method)
	if headers != "" {
		req.Header.Set("Access-Control-Request-Headers", headers)
	}
	return req
}

func TestCORS(t *testing.T) {
	listed := []string{"https://app.example"}
	for _, tc := range []struct {
		name        string
		origins     []string
		req         *http.Request
		want        int
		allowOrigin string
		credentials bool
	}{
		{"PreflightFromListedOrigin", listed, preflight("https://app.example", "GET", "last-event-id,authorization"), http.StatusNoContent, "https://app.example", true},
		{"PreflightFromOtherOrigin", listed, preflight("https://evil.example", "POST", "authorization"), http.StatusForbidden, "", false},
		{"PreflightWithStar", []string{"*"}, preflight("https://any.example", "POST", "idempotency-key,content-type"), http.StatusNoContent, "*", false},
		{"SimpleRequestFromListedOrigin", listed, withOrigin(httptest.NewRequest(http.MethodGet, "http://api.test/x", nil), "https://app.example"), http.StatusOK, "https://app.example", true},
		{"SimpleRequestFromOtherOrigin", listed, withOrigin(httptest.NewRequest(http.MethodPost, "http://api.test/x", nil), "https://evil.example"), http.StatusForbidden, "", false},
		{"SameOriginIsNotCrossOrigin", listed, withOrigin(httptest.NewRequest(http.MethodPost, "http://api.test/x", nil), "http://api.test"), http.StatusOK, "", false},
		{"NoOriginNoHeaders", listed, httptest.NewRequest(http.MethodGet, "http://api.test/x", nil), http.StatusOK, "", false},
		{"NoOriginsConfigured", nil, withOrigin(httptest.NewRequest(http.MethodGet, "http://api.test/x", nil), "https://any.example"), http.StatusOK, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(t, tc.req, CORS(tc.origins, testReject))
			if got := w.Code; got != tc.want {
				t.Fatalf("status = %d, want %d", got, tc.want)
			}
			if got := w.Header().Get("Access-Control-Allow-Origin"); got != tc.allowOrigin {
				t.Fatalf("Access-Control-Allow-Origin = %q, want %q", got, tc.allowOrigin)
			}
			if got := w.Header().Get("Access-Control-Allow-Credentials") == "true"; got != tc.credentials {
				t.Fatalf("credentials allowed = %v, want %v", got, tc.credentials)
			}
		})
	}
}

func TestCORSPreflightNamesTheAPIHeaders(t *testing.T) {
	w := serve(t, preflight("https://any.example", "POST", "authorization"), CORS([]string{"*"}, testReject))
	allowed := strings.ToLower(w.Header().Get("Access-Control-Allow-Headers"))
	for _, h := range []string{"last-event-id", "idempotency-key", "authorization", "content-type"} {
		if !strings.Contains(allowed, h) {
			t.Errorf("Access-Control-Allow-Headers = %q, lacks %s", allowed, h)
		}
	}
	if methods := w.Header().Get("Access-Control-Allow-Methods"); !strings.Contains(methods, "POST") {
		t.Errorf("Access-Control-Allow-Methods = %q, lacks POST", methods)
	}
	simple := serve(t, withOrigin(httptest.NewRequest(http.MethodGet, "/x", nil), "https://any.example"), CORS([]string{"*"}, testReject))
	exposed := strings.ToLower(simple.Header().Get("Access-Control-Expose-Headers"))
	for _, h := range []string{"location", "idempotent-replayed", "retry-after", "x-request-id"} {
		if !strings.Contains(exposed, h) {
			t.Errorf("Access-Control-Expose-Headers = %q, lacks %s", exposed, h)
		}
	}
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	for _, req := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "/x", nil),
		httptest.NewRequest(http.MethodGet, "/missing", nil),
	} {
		w := serve(t, req, SecurityHeaders())
		if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options = %q", req.URL.Path, got)
		}
		if got := w.Header().Get("Referrer-Policy"); got != "no-referrer" {
			t.Errorf("%s: Referrer-Policy = %q", req.URL.Path, got)
		}
	}
}

func withOrigin(r *http.Request, origin string) *http.Request {
	r.Header.Set("Origin", origin)
	return r
}
