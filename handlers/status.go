package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"factstream/readiness"
	"factstream/store"
)

// Pinger reports whether the store can serve requests.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Counter reports the number of streams open on this instance.
type Counter interface {
	Subscribers() int
}

// ClusterCounter reports the streams open on all instances that share the
// store.
type ClusterCounter interface {
	ClusterClients(ctx context.Context) (int, error)
}

// Instance describes this running instance for GET /status.
type Instance struct {
	ID        string
	StoreKind string
	Version   string
	Started   time.Time
}

// statusBody is the body of GET /status.
type statusBody struct {
	Clients        int    `json:"clients"`
	ClusterClients *int   `json:"cluster_clients,omitempty"`
	Facts          uint64 `json:"facts"`
	FirstSeq       uint64 `json:"first_seq"`
	LastSeq        uint64 `json:"last_seq"`
	UptimeSeconds  int64  `json:"uptime_seconds"`
	Instance       string `json:"instance"`
	Store          string `json:"store"`
	Version        string `json:"version"`
}

func handleStatus(log *slog.Logger, facts FactReader, streams Counter, cluster ClusterCounter, in Instance) gin.HandlerFunc {
	return func(c *gin.Context) {
		st, err := facts.Stats(c.Request.Context())
		if err != nil {
			writeError(c, log, err)
			return
		}
		var clusterClients *int
		if cluster != nil {
			n, err := cluster.ClusterClients(c.Request.Context())
			if err != nil {
				writeError(c, log, err)
				return
			}
			clusterClients = &n
		}
		writeValue(c, log, statusBody{
			ClusterClients: clusterClients,
			Clients:        streams.Subscribers(),
			Facts:          st.Count,
			FirstSeq:       st.FirstSeq,
			LastSeq:        st.LastSeq,
			UptimeSeconds:  int64(time.Since(in.Started).Seconds()),
			Instance:       in.ID,
			Store:          in.StoreKind,
			Version:        in.Version,
		})
	}
}

func handleHealthz(c *gin.Context) {
	writeJSON(c, http.StatusOK, []byte(`{"status":"ok"}`))
}

// Readiness knows whether the store accepts writes now.
type Readiness interface {
	// WriteErr is nil while the store accepts writes, else why not.
	WriteErr() error
	// Observe learns from a publish's outcome.
	Observe(err error)
}

func handleReadyz(log *slog.Logger, p Pinger, ready Readiness) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
		defer cancel()
		detail := ""
		err := p.Ping(ctx)
		if err != nil {
			detail = "the fact store is unreachable"
		} else if ready != nil {
			if err = ready.WriteErr(); err != nil {
				detail = "the fact store refuses writes"
				var r *readiness.Refusal
				if errors.As(err, &r) {
					detail += ": " + r.Cause
				}
			}
		}
		if err != nil {
			log.LogAttrs(ctx, slog.LevelWarn, "not ready", slog.String("error", err.Error()))
			writeError(c, log, &apiError{status: http.StatusServiceUnavailable, code: "not-ready",
				detail: detail, retryAfter: time.Second})
			return
		}
		writeJSON(c, http.StatusOK, []byte(`{"status":"ready"}`))
	}
}

// writeValue answers 200 with v encoded as JSON.
func writeValue(c *gin.Context, log *slog.Logger, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(c, log, fmt.Errorf("encoding the response: %w", err))
		return
	}
	writeJSON(c, http.StatusOK, body)
}

// observedWriter tells ready the outcome of every append.
type observedWriter struct {
	FactWriter
	ready Readiness
}

func (w observedWriter) Append(ctx context.Context, req store.AppendRequest) (store.AppendResult, error) {
	res, err := w.FactWriter.Append(ctx, req)
	w.ready.Observe(err)
	return res, err
}
