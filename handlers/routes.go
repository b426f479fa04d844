// Package handlers holds the HTTP API: one routes table, small handler
// makers that take their dependencies as arguments, and one mapping from
// errors to RFC 9457 problem responses.
package handlers

import (
	"log/slog"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"factstream/middleware"
	"factstream/web"
)

// Store is everything the routes need from the fact store.
type Store interface {
	FactWriter
	FactLister
	FactReader
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

	// Access control and limits; zero values leave the API open.

	// PublishTokens, when set, are required to publish (Authorization
	// header only) and also grant reading.
	PublishTokens []string
	// SubscribeTokens, when set, are required by the stream and the read
	// endpoints (header, access_token query or cookie).
	SubscribeTokens []string
	// MetricsToken, when set, is required by /metrics (header only).
	MetricsToken string
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

	// Metrics, when set, counts rejections and times publishes; Gatherer,
	// when set, is served at /metrics.
	Metrics  *middleware.Metrics
	Gatherer prometheus.Gatherer
}

// Routes returns the whole API as one handler.
func Routes(d Deps) http.Handler {
	r := gin.New()
	r.HandleMethodNotAllowed = true
	// Until a proxy is trusted explicitly, X-Forwarded-For is a client
	// claim, not an address.
	if err := r.SetTrustedProxies(d.TrustedProxies); err != nil {
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
	r.Use(middleware.CORS(d.CORSOrigins, reject))

	// Refusals come before the handlers, so a refused request stores
	// nothing and never touches a stream. The rate limit comes first: it
	// is per address, and also slows down anyone guessing tokens.
	read := middleware.RequireToken(middleware.NewTokens(d.SubscribeTokens, publishersIfReadIsProtected(d)),
		middleware.FromHeader|middleware.FromQuery|middleware.FromCookie, reject)
	publish := []gin.HandlerFunc{
		middleware.NewRateLimit(d.PublishRate, d.PublishBurst, reject).Handler(),
		middleware.RequireToken(middleware.NewTokens(d.PublishTokens), middleware.FromHeader, reject),
	}
	if d.Metrics != nil {
		publish = append(publish, d.Metrics.TimePublish())
	}
	// Clipped so that each route's append copies instead of sharing.
	publish = slices.Clip(publish)

	inFlight := &keysInFlight{}
	r.GET("/events", read, handleEvents(d.Logger, d.Hub, d.Store, d.Stream))
	r.POST("/fact", append(publish, handlePublish(d.Logger, d.Store, inFlight, d.MaxBody, false))...)
	r.POST("/facts", append(publish, handlePublish(d.Logger, d.Store, inFlight, d.MaxBody, true))...)
	r.GET("/facts", read, handleList(d.Logger, d.Store))
	r.GET("/facts/:id", read, handleGet(d.Logger, d.Store))
	r.GET("/status", read, handleStatus(d.Logger, d.Store, d.Hub, d.Instance))
	r.GET("/healthz", handleHealthz)
	r.GET("/readyz", handleReadyz(d.Logger, d.Store))
	if d.Gatherer != nil {
		r.GET("/metrics",
			middleware.RequireToken(middleware.NewTokens(nonEmpty(d.MetricsToken)), middleware.FromHeader, reject),
			gin.WrapH(promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{
				ErrorLog: slog.NewLogLogger(d.Logger.Handler(), slog.LevelWarn),
				// A failing collector drops its metrics, not the scrape.
				ErrorHandling: promhttp.ContinueOnError,
			})))
	}
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

// publishersIfReadIsProtected lets publish tokens read too, once reading
// needs a token at all: whoever may write may also read, and the dashboard
// holds a single token for both.
func publishersIfReadIsProtected(d Deps) []string {
	if len(d.SubscribeTokens) == 0 {
		return nil
	}
	return d.PublishTokens
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
