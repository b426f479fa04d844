// Package web serves the embedded dashboard: one HTML page, one script, one
// stylesheet and an icon, compiled into the binary so that the service needs
// no files on disk and the page works without any outside network.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// AssetPrefix is the URL path under which the page's script, stylesheet and
// icon are served. Routes mount Handler at "/" and at AssetPrefix+"*".
const AssetPrefix = "/assets/"

// ContentSecurityPolicy is sent with the page. Fact text comes from anyone
// who can post, so even if a rendering bug ever let markup through, the
// browser still refuses inline script, inline style attributes and every
// foreign origin; connect-src 'self' keeps EventSource and fetch on this
// service.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; " +
	"style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

//go:embed index.html app.js style.css favicon.svg
var files embed.FS

// asset is one file ready to serve: its bytes, content type and strong ETag.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// assetTypes lists the served assets with explicit content types, so the
// answer does not depend on the host's mime tables (some map .js to
// application/x-javascript).
var assetTypes = map[string]string{
	"app.js":      "text/javascript; charset=utf-8",
	"style.css":   "text/css; charset=utf-8",
	"favicon.svg": "image/svg+xml",
}

// Handler returns the handler for the dashboard page at "/" and its assets
// under AssetPrefix. Any other path gets 404, any method but GET and HEAD
// gets 405.
//
// Assets are referenced from the page with a "?v=<content hash>" query, so
// a versioned request may be cached for a year (a new build changes the
// URL), while the page itself and unversioned requests revalidate with
// their ETag every time and usually get a 304.
func Handler() http.Handler {
	s := &site{assets: make(map[string]asset, len(assetTypes))}
	page := mustRead("index.html")
	for name, ctype := range assetTypes {
		a := newAsset(mustRead(name), ctype)
		s.assets[name] = a
		page = bytes.ReplaceAll(page,
			[]byte(`"`+AssetPrefix+name+`"`),
			[]byte(`"`+AssetPrefix+name+"?v="+version(a.etag)+`"`))
	}
	s.index = newAsset(page, "text/html; charset=utf-8")
	return s
}

// site is the dashboard, ready to serve from memory.
type site struct {
	index  asset
	assets map[string]asset
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	if r.URL.Path == "/" {
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-cache")
		serve(w, r, s.index)
		return
	}
	name, under := strings.CutPrefix(r.URL.Path, AssetPrefix)
	a, ok := s.assets[name]
	if !under || !ok {
		http.NotFound(w, r)
		return
	}
	if v := r.URL.Query().Get("v"); v != "" && v == version(a.etag) {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	serve(w, r, a)
}

// serve lets net/http answer conditional and range requests: with the ETag
// already set, ServeContent replies 304 to a matching If-None-Match.
func serve(w http.ResponseWriter, r *http.Request, a asset) {
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

func newAsset(body []byte, contentType string) asset {
	sum := sha256.Sum256(body)
	return asset{body: body, contentType: contentType, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
}

// version is the ETag without its quotes, for use in a URL.
func version(etag string) string { return strings.Trim(etag, `"`) }

// mustRead panics because a missing embedded file is a build mistake that
// the embed directive already rules out; there is nothing to recover at run
// time.
func mustRead(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil {
		panic("web: embedded " + name + ": " + err.Error())
	}
	return b
}

// Register mounts the dashboard on a gin router: GET and HEAD for the page
// and for every asset path.
func Register(r gin.IRoutes) {
	h := gin.WrapH(Handler())
	for _, path := range []string{"/", AssetPrefix + "*file"} {
		r.GET(path, h)
		r.HEAD(path, h)
	}
}
