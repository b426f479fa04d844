package handlers

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"factstream/middleware"
)

// exportPage is how many facts an export reads from the store at a time:
// an export never holds more than one page, whatever the store holds.
const exportPage = 500

// Backuper is a store that can copy itself as one consistent file.
type Backuper interface {
	// BackupTo writes a consistent copy of the store to w. It calls size
	// with the copy's length before writing any of it.
	BackupTo(w io.Writer, size func(int64)) (int64, error)
}

// handleExport streams every fact kept, after the query's after and up to
// the head at the moment of the request, as NDJSON in seq order. It reads
// the store a page at a time and gives the client write timeout to take
// each page, so a client that stops reading is cut and holds nothing.
func handleExport(log *slog.Logger, facts FactReader, writeTimeout time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		var after uint64
		if v, ok := c.Request.URL.Query()["after"]; ok {
			n, err := parseSeq(v[0])
			if err != nil || v[0] == "" {
				writeError(c, log, fieldError("after", fmt.Sprintf("after must be a decimal integer >= 0, got %q", truncate(v[0], 20))))
				return
			}
			after = n
		}
		ctx := c.Request.Context()
		st, err := facts.Stats(ctx)
		if err != nil {
			writeError(c, log, err)
			return
		}
		head := st.LastSeq
		rc := http.NewResponseController(c.Writer)
		buf := make([]byte, 0, 64<<10)
		started := false
		for after < head {
			list, err := facts.Range(ctx, after, head, exportPage)
			if err != nil {
				if !started {
					writeError(c, log, err)
					return
				}
				log.LogAttrs(ctx, slog.LevelError, "export cut short: the store failed",
					slog.String("request_id", middleware.RequestIDOf(c)), slog.Uint64("after", after), slog.String("error", err.Error()))
				// Ending the response without its last chunk tells the
				// client the export is incomplete.
				panic(http.ErrAbortHandler)
			}
			if len(list) == 0 {
				break
			}
			if !started {
				startExport(c)
				started = true
			}
			buf = buf[:0]
			for _, f := range list {
				buf = append(f.AppendJSON(buf), '\n')
			}
			if err := writeWithin(rc, c.Writer, buf, writeTimeout); err != nil {
				return // the client is gone or too slow; the connection is cut
			}
			after = list[len(list)-1].Seq
		}
		if !started {
			startExport(c)
			c.Status(http.StatusOK)
			c.Writer.WriteHeaderNow()
		}
	}
}

func startExport(c *gin.Context) {
	c.Header("Content-Type", "application/x-ndjson")
	c.Header("Cache-Control", "no-store")
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="factstream-%s.ndjson"`, time.Now().UTC().Format("20060102-150405")))
}

// writeWithin writes b and flushes it, cutting the client if it does not
// take it within timeout.
func writeWithin(rc *http.ResponseController, w io.Writer, b []byte, timeout time.Duration) error {
	if err := rc.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	return rc.Flush()
}

// handleBackup sends a consistent copy of the store's file, taken in one
// read transaction while publishing goes on. Only a store that is one file
// (bolt) can; the others answer 501 and point at the export.
func handleBackup(log *slog.Logger, st any, writeTimeout time.Duration) gin.HandlerFunc {
	b, ok := st.(Backuper)
	if !ok {
		return func(c *gin.Context) {
			writeError(c, log, &apiError{status: http.StatusNotImplemented, code: "backup-unsupported",
				detail: "this store is not one file: back it up with GET /admin/export and restore it with factstream import"})
		}
	}
	return func(c *gin.Context) {
		rc := http.NewResponseController(c.Writer)
		w := &deadlineWriter{rc: rc, w: c.Writer, timeout: writeTimeout}
		_, err := b.BackupTo(w, func(size int64) {
			c.Header("Content-Type", "application/octet-stream")
			c.Header("Cache-Control", "no-store")
			c.Header("Content-Length", fmt.Sprint(size))
			c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="factstream-%s.db"`, time.Now().UTC().Format("20060102-150405")))
			c.Status(http.StatusOK)
		})
		switch {
		case err == nil:
		case !c.Writer.Written():
			c.Writer.Header().Del("Content-Length")
			c.Writer.Header().Del("Content-Disposition")
			writeError(c, log, err)
		case w.failed:
			// The client is gone or too slow; the connection is cut.
		default:
			log.LogAttrs(c.Request.Context(), slog.LevelError, "backup cut short: the store failed",
				slog.String("request_id", middleware.RequestIDOf(c)), slog.String("error", err.Error()))
			panic(http.ErrAbortHandler)
		}
	}
}

// deadlineWriter gives the client timeout to take each write, so that a
// long copy goes on while the client keeps reading and stops when it does
// not.
type deadlineWriter struct {
	rc      *http.ResponseController
	w       io.Writer
	timeout time.Duration
	failed  bool // a write to the client failed
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if err := d.rc.SetWriteDeadline(time.Now().Add(d.timeout)); err != nil {
		d.failed = true
		return 0, err
	}
	n, err := d.w.Write(p)
	if err != nil {
		d.failed = true
	}
	return n, err
}
