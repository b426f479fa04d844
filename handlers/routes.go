// Package handlers holds the HTTP API: one routes table, small handler
// makers that take their dependencies as arguments, and one mapping from
// errors to RFC 9457 problem responses.
package handlers

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"factstream/middleware"
	"factstream/openapi"
	"factstream/web"
)

// Store is everything the routes need from the fact store.
type Store interface {
	FactWriter
	FactLister
	FactReader
	FactDeleter
	Pinger
}

// Hub is everything the routes need from the subscriber hub.
type Hub interface {
	Subscriptions
	Counter
}

// Deps are the routes' dependencies and settings.
type Deps struct {
	Logger  *slog.Logger
	Store   Store
	Hub     Hub
	Stream  StreamOptions
	MaxBody int64
	// ReadTimeout bounds the arrival of a request body (408 beyond);
	// Stream.WriteTimeout bounds the taking of every answer.
	ReadTimeout time.Duration
	Instance    Instance
	// Cluster, when set, counts the streams of every instance sharing the
	// store (for cluster_clients in /status).
	Cluster ClusterCounter
	// Ready, when set, tells /readyz whether the store accepts writes,
	// and learns from every publish.
	Ready Readiness

	// Access says who may call what, and how often.
	Access Access

	// Metrics, when set, counts rejections and times publishes; Gatherer,
	// when set, is served at /metrics.
	Metrics  *middleware.Metrics
	Gatherer prometheus.Gatherer
}

// Access is who may call which endpoints and how often; its zero value
// leaves the API open and the administration endpoints closed.
type Access struct {
	// PublishTokens, when set, are required to publish (Authorization
	// header only) and also grant reading.
	PublishTokens []string
	// SubscribeTokens, when set, are required by the stream and the read
	// endpoints (header, access_token query or cookie).
	SubscribeTokens []string
	// MetricsToken, when set, is required by /metrics (header only).
	MetricsToken string
	// AdminTokens are required by the admin endpoints (header only);
	// while there are none, those endpoints answer 403.
	AdminTokens []string
	// CORSOrigins are the origins browsers may call from; nil sends no
	// CORS headers.
	CORSOrigins []string
	// PublishRate is the publish requests per second allowed per client
	// IP, PublishBurst its bucket (0: twice the rate); 0 turns it off.
	PublishRate  float64
	PublishBurst int
	// TrustedProxies are the IPs and CIDRs whose X-Forwarded-For is
	// believed when telling client addresses apart.
	TrustedProxies []string
}

// Routes returns the whole API as one handler.
func Routes(d Deps) http.Handler {
	r := gin.New()
	r.HandleMethodNotAllowed = true
	// gin's own trailing-slash redirect answers before any middleware
	// runs (no request id, security headers or log line) and believes
	// X-Forwarded-Prefix from anyone; NoRoute below redirects instead.
	r.RedirectTrailingSlash = false
	// Until a proxy is trusted explicitly, X-Forwarded-For is a client
	// claim, not an address.
	if err := r.SetTrustedProxies(d.Access.TrustedProxies); err != nil {
		d.Logger.Error("trusted proxies ignored: X-Forwarded-For will not count", "error", err)
		_ = r.SetTrustedProxies(nil)
	}
	reject := rejecter(d.Logger)
	r.Use(middleware.RequestID(), middleware.AccessLog(d.Logger), middleware.Recover(d.Logger),
		middleware.SecurityHeaders())
	if d.Metrics != nil {
		// Before CORS, so that its refusals are counted too.
		r.Use(d.Metrics.CountRejections())
	}
	// Framing comes before anything that may refuse a request: a refused
	// chunked request must still close its connection.
	r.Use(middleware.Framing(reject))
	// CORS comes before authentication: a preflight carries no token, and
	// a browser can read a 401 only if it has CORS headers.
	r.Use(middleware.CORS(d.Access.CORSOrigins, reject))
	r.Use(middleware.BodyBounds(d.MaxBody, reject), middleware.Deadlines(d.ReadTimeout, d.Stream.WriteTimeout))

	g := newGuards(d, reject)
	inFlight := &keysInFlight{}
	var writer FactWriter = d.Store
	if d.Ready != nil {
		writer = observedWriter{d.Store, d.Ready}
	}
	r.GET("/events", g.read, handleEvents(d.Logger, d.Hub, d.Store, d.Stream))
	r.POST("/fact", g.publishing(handlePublish(d.Logger, writer, inFlight, d.MaxBody, false))...)
	r.POST("/facts", g.publishing(handlePublish(d.Logger, writer, inFlight, d.MaxBody, true))...)
	r.GET("/facts", g.read, handleList(d.Logger, d.Store))
	r.GET("/facts/:id", g.read, handleGet(d.Logger, d.Store))
	r.DELETE("/facts/:id", g.admin, handleDelete(d.Logger, d.Store))
	r.GET("/status", g.read, handleStatus(d.Logger, d.Store, d.Hub, d.Cluster, d.Instance))
	r.GET("/healthz", handleHealthz)
	r.GET("/readyz", handleReadyz(d.Logger, d.Store, d.Ready))
	registerAdmin(r, d, g.admin)
	if d.Gatherer != nil {
		r.GET("/metrics", g.metrics, handleMetrics(d.Logger, d.Gatherer))
	}
	r.GET("/openapi.json", gin.WrapH(openapi.Handler(d.Instance.Version)))
	web.Register(r)

	routes := r.Routes()
	r.NoRoute(func(c *gin.Context) {
		if to, ok := slashTwin(routes, c.Request.Method, c.Request.URL.Path); ok {
			redirect(c, to)
			return
		}
		writeError(c, d.Logger, &apiError{status: http.StatusNotFound, code: "not-found", detail: "no such endpoint"})
	})
	r.NoMethod(func(c *gin.Context) {
		writeError(c, d.Logger, &apiError{status: http.StatusMethodNotAllowed, code: "method-not-allowed",
			detail: c.Request.Method + " is not allowed here"})
	})
	return r
}

// slashTwin returns path with its trailing slash added or removed when
// that names a route of method: /status/ for /status, say.
func slashTwin(routes gin.RoutesInfo, method, path string) (string, bool) {
	if path == "/" || path == "" {
		return "", false
	}
	twin := path + "/"
	if strings.HasSuffix(path, "/") {
		twin = path[:len(path)-1]
	}
	if strings.HasPrefix(twin, "//") { // would read as another host
		return "", false
	}
	for _, rt := range routes {
		if (rt.Method == method || method == http.MethodHead && rt.Method == http.MethodGet) && routeMatches(rt.Path, twin) {
			return twin, true
		}
	}
	return "", false
}

// routeMatches reports whether path fits a gin route pattern, whose
// segments are literals, :name (one non-empty segment) or *name (the rest).
func routeMatches(pattern, path string) bool {
	want, got := strings.Split(pattern, "/"), strings.Split(path, "/")
	for i, seg := range want {
		switch {
		case strings.HasPrefix(seg, "*"):
			return true
		case i >= len(got):
			return false
		case strings.HasPrefix(seg, ":"):
			if got[i] == "" {
				return false
			}
		case seg != got[i]:
			return false
		}
	}
	return len(got) == len(want)
}

// redirect sends the client to path on this server, with the query it
// sent: 301 for reads, 308 otherwise, so that a POST stays a POST with
// its body.
func redirect(c *gin.Context, path string) {
	code := http.StatusPermanentRedirect
	if m := c.Request.Method; m == http.MethodGet || m == http.MethodHead {
		code = http.StatusMovedPermanently
	}
	if q := c.Request.URL.RawQuery; q != "" {
		path += "?" + q
	}
	c.Redirect(code, path)
}
