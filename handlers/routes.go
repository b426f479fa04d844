// Package handlers holds the HTTP API: one routes table, small handler
// makers that take their dependencies as arguments, and one mapping from
// errors to RFC 9457 problem responses.
package handlers

import (
	"log/slog"
	"net/http"

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
	Logger   *slog.Logger
	Store    Store
	Hub      Hub
	Stream   StreamOptions
	MaxBody  int64
	Instance Instance
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
	// CORS comes before authentication: a preflight carries no token, and
	// a browser can read a 401 only if it has CORS headers.
	r.Use(middleware.CORS(d.Access.CORSOrigins, reject))
	r.Use(middleware.BodyBounds(d.MaxBody, reject))

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

	r.NoRoute(func(c *gin.Context) {
		writeError(c, d.Logger, &apiError{status: http.StatusNotFound, code: "not-found", detail: "no such endpoint"})
	})
	r.NoMethod(func(c *gin.Context) {
		writeError(c, d.Logger, &apiError{status: http.StatusMethodNotAllowed, code: "method-not-allowed",
			detail: c.Request.Method + " is not allowed here"})
	})
	return r
}
