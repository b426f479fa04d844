package handlers

import (
	"log/slog"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"factstream/middleware"
)

// guards are the checks that run before a handler, per kind of route. They
// refuse a request before its handler runs, so a refused request stores
// nothing and never touches a stream.
type guards struct {
	read    gin.HandlerFunc   // stream and read endpoints
	publish []gin.HandlerFunc // publish endpoints, in order
	metrics gin.HandlerFunc   // /metrics
	admin   gin.HandlerFunc   // admin endpoints: deleting facts
}

func newGuards(d Deps, reject middleware.Reject) guards {
	a := d.Access
	readers := middleware.NewTokens(a.SubscribeTokens)
	if !readers.Empty() {
		// Whoever may write may also read, and the dashboard holds a
		// single token for both.
		readers = middleware.NewTokens(a.SubscribeTokens, a.PublishTokens)
	}
	// Wrong tokens anywhere draw from one bucket per client, so guessing
	// is as slow on the read endpoints as on the publish ones.
	failures := middleware.NewAuthFailures(a.PublishRate)
	g := guards{
		read: middleware.RequireToken(readers, middleware.FromHeader|middleware.FromQuery|middleware.FromCookie, failures, reject),
		// The rate limit comes first: it is per address, so it also slows
		// down anyone guessing tokens. Publishing takes the header only: a
		// cookie would ride along with a forged cross-site form post.
		publish: []gin.HandlerFunc{
			middleware.NewRateLimit(a.PublishRate, a.PublishBurst, reject).Handler(),
			middleware.RequireToken(middleware.NewTokens(a.PublishTokens), middleware.FromHeader, failures, reject),
		},
		metrics: middleware.RequireToken(middleware.NewTokens(nonEmpty(a.MetricsToken)), middleware.FromHeader, failures, reject),
		admin:   adminGuard(a.AdminTokens, failures, reject),
	}
	if d.Metrics != nil {
		// Last, so that only the handler's own work is timed.
		g.publish = append(g.publish, d.Metrics.TimePublish())
	}
	return g
}

// adminGuard requires one of tokens in the Authorization header. Without
// tokens nobody may administer: an open delete endpoint is never what an
// operator who set nothing meant.
func adminGuard(tokens []string, failures *middleware.AuthFailures, reject middleware.Reject) gin.HandlerFunc {
	if len(tokens) == 0 {
		return func(c *gin.Context) {
			reject(c, middleware.Rejection{Status: http.StatusForbidden, Code: "admin-disabled",
				Detail: "administration is off on this server: set admin_tokens to turn it on"})
		}
	}
	return middleware.RequireToken(middleware.NewTokens(tokens), middleware.FromHeader, failures, reject)
}

// publishing returns the publish guards followed by h, in a slice of its
// own.
func (g guards) publishing(h gin.HandlerFunc) []gin.HandlerFunc {
	return append(slices.Clone(g.publish), h)
}

func handleMetrics(log *slog.Logger, reg prometheus.Gatherer) gin.HandlerFunc {
	return gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// A failing collector drops its own metrics, not the whole scrape.
		ErrorHandling: promhttp.ContinueOnError,
	}))
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
