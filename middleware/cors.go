package middleware

import (
	"net/http"
	"slices"
	"time"

	"github.com/gin-contrib/cors"
	"github.com/gin-gonic/gin"
)

// CORS lets the browser pages of origins call the API: it answers
// preflights and adds the CORS response headers. origins is either ["*"],
// any origin but without credentials (the Fetch standard forbids the pair,
// and allowing every site to send cookies would defeat them), or a list of
// origins, which may send credentials. Requests from other origins get 403
// before any handler runs. No origins means no CORS headers at all.
func CORS(origins []string, reject Reject) gin.HandlerFunc {
	if len(origins) == 0 {
		return func(c *gin.Context) { c.Next() }
	}
	cfg := cors.Config{
		AllowMethods: []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodOptions},
		// What the API reads from a client beyond the CORS-safelisted set.
		AllowHeaders: []string{"Authorization", "Content-Type", "Last-Event-ID", "Idempotency-Key", RequestIDHeader},
		// What a page needs to read back: where a fact lives, whether a
		// response was replayed, when to retry, and the id to report.
		ExposeHeaders: []string{"Location", "Idempotent-Replayed", "Retry-After", RequestIDHeader},
		// Browsers cap the cache at 2 h (Chromium) anyway.
		MaxAge: 2 * time.Hour,
	}
	allowAll := slices.Contains(origins, "*")
	if allowAll {
		cfg.AllowAllOrigins = true
	} else {
		cfg.AllowOrigins = origins
		cfg.AllowCredentials = true
	}
	handle := cors.New(cfg)
	return func(c *gin.Context) {
		// gin-contrib/cors refuses an unknown origin with an empty 403;
		// answer it first, as a problem like every other refusal.
		if origin := c.GetHeader("Origin"); !allowAll && origin != "" && !sameHost(c.Request, origin) && !slices.Contains(origins, origin) {
			reject(c, Rejection{Status: http.StatusForbidden, Code: "origin-not-allowed",
				Detail: "requests from origin " + truncate(origin, 100) + " are not allowed"})
			return
		}
		handle(c)
	}
}

// sameHost reports whether origin is the request's own host, which is not
// a cross-origin request (browsers send Origin on same-origin posts too).
func sameHost(r *http.Request, origin string) bool {
	return origin == "http://"+r.Host || origin == "https://"+r.Host
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
