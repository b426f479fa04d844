// Package handlers holds the HTTP API: one routes table, small handler
// makers that take their dependencies as arguments, and one mapping from
// errors to RFC 9457 problem responses.
package handlers

import (
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

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
}

// Routes returns the whole API as one handler.
func Routes(d Deps) http.Handler {
	r := gin.New()
	r.HandleMethodNotAllowed = true
	// Until a proxy is trusted explicitly, X-Forwarded-For is a client
	// claim, not an address.
	_ = r.SetTrustedProxies(nil)
	r.Use(middleware.RequestID(), middleware.AccessLog(d.Logger), middleware.Recover(d.Logger))

	inFlight := &keysInFlight{}
	r.GET("/events", handleEvents(d.Logger, d.Hub, d.Store, d.Stream))
	r.POST("/fact", handlePublish(d.Logger, d.Store, inFlight, d.MaxBody, false))
	r.POST("/facts", handlePublish(d.Logger, d.Store, inFlight, d.MaxBody, true))
	r.GET("/facts", handleList(d.Logger, d.Store))
	r.GET("/facts/:id", handleGet(d.Logger, d.Store))
	r.GET("/status", handleStatus(d.Logger, d.Store, d.Hub, d.Instance))
	r.GET("/healthz", handleHealthz)
	r.GET("/readyz", handleReadyz(d.Logger, d.Store))
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
