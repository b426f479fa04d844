package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"factstream/web"
)

func get(tb testing.TB, h http.Handler, method, target string, header map[string]string) *http.Response {
	tb.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(tb testing.TB, res *http.Response) string {
	tb.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("read body: %v", err)
	}
	return string(b)
}

func TestServesPageAndAssets(t *testing.T) {
	h := web.Handler()
	page := get(t, h, http.MethodGet, "/", nil)
	html := body(t, page)
	if got, want := page.StatusCode, http.StatusOK; got != want {
		t.Fatalf("GET / status=%d, want %d", got, want)
	}
	if got := page.Header.Get("Content-Type"); got != "text/html; charset=utf-8" {
		t.Errorf("GET / Content-Type=%q", got)
	}
	csp := page.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "connect-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP %q allows inline or eval", csp)
	}
	if regexp.MustCompile(`<script>|\sstyle=|\son[a-z]+=`).MatchString(html) {
		t.Errorf("page has inline script or style, which the CSP would block")
	}

	types := map[string]string{
		"app.js":      "text/javascript; charset=utf-8",
		"style.css":   "text/css; charset=utf-8",
		"favicon.svg": "image/svg+xml",
	}
	for name, ctype := range types {
		t.Run(name, func(t *testing.T) {
			m := regexp.MustCompile(`"(/assets/` + regexp.QuoteMeta(name) + `\?v=[0-9a-f]+)"`).FindStringSubmatch(html)
			if m == nil {
				t.Fatalf("page does not reference a versioned %s", name)
			}
			res := get(t, h, http.MethodGet, m[1], nil)
			if got, want := res.StatusCode, http.StatusOK; got != want {
				t.Fatalf("GET %s status=%d, want %d", m[1], got, want)
			}
			if got := res.Header.Get("Content-Type"); got != ctype {
				t.Errorf("Content-Type=%q, want %q", got, ctype)
			}
			if got := res.Header.Get("Cache-Control"); !strings.Contains(got, "immutable") {
				t.Errorf("versioned asset Cache-Control=%q, want immutable", got)
			}
			if body(t, res) == "" {
				t.Errorf("empty body")
			}
			plain := get(t, h, http.MethodGet, "/assets/"+name, nil)
			if got := plain.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("unversioned asset Cache-Control=%q, want no-cache", got)
			}
		})
	}
}

func TestConditionalGet(t *testing.T) {
	h := web.Handler()
	for _, path := range []string{"/", "/assets/app.js", "/assets/style.css"} {
		t.Run(path, func(t *testing.T) {
			first := get(t, h, http.MethodGet, path, nil)
			etag := first.Header.Get("ETag")
			if !regexp.MustCompile(`^"[0-9a-f]{16}"$`).MatchString(etag) {
				t.Fatalf("ETag=%q, want a strong hash tag", etag)
			}
			again := get(t, h, http.MethodGet, path, map[string]string{"If-None-Match": etag})
			if got, want := again.StatusCode, http.StatusNotModified; got != want {
				t.Fatalf("status=%d, want %d", got, want)
			}
			if b := body(t, again); b != "" {
				t.Errorf("304 has a body of %d bytes", len(b))
			}
			stale := get(t, h, http.MethodGet, path, map[string]string{"If-None-Match": `"0000"`})
			if got, want := stale.StatusCode, http.StatusOK; got != want {
				t.Fatalf("stale tag: status=%d, want %d", got, want)
			}
		})
	}
}

func TestRejects(t *testing.T) {
	h := web.Handler()
	cases := []struct {
		name, method, path string
		want               int
	}{
		{"UnknownAsset", http.MethodGet, "/assets/nope.js", http.StatusNotFound},
		{"EmbeddedButNotServed", http.MethodGet, "/assets/index.html", http.StatusNotFound},
		{"OtherPath", http.MethodGet, "/app.js", http.StatusNotFound},
		{"Post", http.MethodPost, "/", http.StatusMethodNotAllowed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := get(t, h, c.method, c.path, nil).StatusCode; got != c.want {
				t.Fatalf("%s %s status=%d, want %d", c.method, c.path, got, c.want)
			}
		})
	}
	head := get(t, h, http.MethodHead, "/", nil)
	if got, want := head.StatusCode, http.StatusOK; got != want {
		t.Fatalf("HEAD / status=%d, want %d", got, want)
	}
}

func TestRegisterOnGin(t *testing.T) {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	web.Register(r)
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/"}, {http.MethodHead, "/"},
		{http.MethodGet, "/assets/app.js"}, {http.MethodHead, "/assets/style.css"},
	} {
		if got, want := get(t, r, c.method, c.path, nil).StatusCode, http.StatusOK; got != want {
			t.Errorf("%s %s status=%d, want %d", c.method, c.path, got, want)
		}
	}
}
