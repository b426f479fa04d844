package handlers

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"factstream/middleware"
)

// adminGuard lets through only requests with one of tokens in the
// Authorization header. Without tokens administration is off: every
// request gets 403 admin-disabled, so that an instance nobody configured
// for it never exposes a copy of its data.
func adminGuard(tokens []string, reject middleware.Reject) gin.HandlerFunc {
	t := middleware.NewTokens(tokens)
	if t.Empty() {
		return func(c *gin.Context) {
			reject(c, middleware.Rejection{Status: http.StatusForbidden, Code: "admin-disabled",
				Detail: "administration is turned off: set admin_tokens to use it"})
		}
	}
	return middleware.RequireToken(t, middleware.FromHeader, reject)
}

// registerAdmin adds the administration routes, each behind the admin
// guard.
func registerAdmin(r gin.IRoutes, d Deps, reject middleware.Reject) {
	admin := adminGuard(d.AdminTokens, reject)
	r.GET("/admin/export", admin, handleExport(d.Logger, d.Store, d.Stream.WriteTimeout))
	r.GET("/admin/backup", admin, handleBackup(d.Logger, d.Store, d.Stream.WriteTimeout))
}
