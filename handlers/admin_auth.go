package handlers

import (
	"github.com/gin-gonic/gin"
)

// registerAdmin adds the export and backup routes, each behind the admin
// guard.
func registerAdmin(r gin.IRoutes, d Deps, admin gin.HandlerFunc) {
	r.GET("/admin/export", admin, handleExport(d.Logger, d.Store, d.Stream.WriteTimeout))
	r.GET("/admin/backup", admin, handleBackup(d.Logger, d.Store, d.Stream.WriteTimeout))
}
