package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"factstream/middleware"
	"factstream/store"
)

// FactWriter is what publishing needs from the store.
type FactWriter interface {
	Append(ctx context.Context, req store.AppendRequest) (store.AppendResult, error)
}

// FactLister is what the read endpoints need from the store.
type FactLister interface {
	Range(ctx context.Context, after, upTo uint64, limit int) ([]store.Fact, error)
	Before(ctx context.Context, before uint64, limit int) ([]store.Fact, error)
	Get(ctx context.Context, id string) (store.Fact, error)
}

// FactDeleter is what deleting needs from the store.
type FactDeleter interface {
	Delete(ctx context.Context, id string) (store.Fact, error)
}

// keysInFlight tracks idempotency keys whose first request is still being
// processed, so a concurrent retry gets 409 instead of racing it.
type keysInFlight struct {
	mu   sync.Mutex
	keys map[string]struct{}
}

func (k *keysInFlight) acquire(key string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, busy := k.keys[key]; busy {
		return false
	}
	if k.keys == nil {
		k.keys = make(map[string]struct{})
	}
	k.keys[key] = struct{}{}
	return true
}

func (k *keysInFlight) release(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.keys, key)
}

func handlePublish(log *slog.Logger, facts FactWriter, inFlight *keysInFlight, maxBody int64, allowBatch bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		key, err := idempotencyKey(c.Request.Header)
		if err != nil {
			writeError(c, log, err)
			return
		}
		fr, err := readFactRequest(c, maxBody, allowBatch)
		if err != nil {
			writeError(c, log, err)
			return
		}
		req := store.AppendRequest{Drafts: fr.drafts, Batch: fr.batch}
		if key != "" {
			if !inFlight.acquire(key) {
				writeError(c, log, &apiError{status: http.StatusConflict, code: "idempotency-key-in-flight",
					detail: "a request with this Idempotency-Key is still being processed", retryAfter: time.Second})
				return
			}
			defer inFlight.release(key)
			req.Idem = &store.Idempotency{Key: key, Hash: fr.hash()}
		}
		// A commit must not be abandoned halfway because the client left:
		// the store decides, and the outcome is logged either way.
		res, err := facts.Append(context.WithoutCancel(c.Request.Context()), req)
		if err != nil {
			writeError(c, log, err)
			return
		}
		if res.Replayed {
			c.Header("Idempotent-Replayed", "true")
		}
		if res.Batch {
			writeJSON(c, http.StatusCreated, store.AppendJSONArray(nil, res.Facts))
			return
		}
		f := res.Facts[0]
		c.Header("Location", "/facts/"+f.ID)
		// Room for the members' names, the id and the time besides info
		// and source: the encoder grows it only for escaped characters.
		writeJSON(c, http.StatusCreated, f.AppendJSON(make([]byte, 0, len(f.Info)+len(f.Source)+160)))
	}
}

func handleList(log *slog.Logger, facts FactLister) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, err := parsePage(c.Request)
		if err != nil {
			writeError(c, log, err)
			return
		}
		ctx := c.Request.Context()
		var list []store.Fact
		if p.desc {
			list, err = facts.Before(ctx, p.before, p.limit)
		} else {
			list, err = facts.Range(ctx, p.after, 0, p.limit)
		}
		if err != nil {
			writeError(c, log, err)
			return
		}
		// The cursor member is always present, null on an empty page.
		body := store.AppendJSONArray(append(make([]byte, 0, 4096), `{"facts":`...), list)
		if p.desc {
			body = append(body, `,"next_before":`...)
		} else {
			body = append(body, `,"next_after":`...)
		}
		if len(list) > 0 {
			body = strconv.AppendUint(body, list[len(list)-1].Seq, 10)
		} else {
			body = append(body, "null"...)
		}
		writeJSON(c, http.StatusOK, append(body, '}'))
	}
}

func handleGet(log *slog.Logger, facts FactLister) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.Param("id")
		if len(id) > 64 {
			writeError(c, log, store.ErrNotFound)
			return
		}
		f, err := facts.Get(c.Request.Context(), id)
		if err != nil {
			writeError(c, log, err)
			return
		}
		writeJSON(c, http.StatusOK, f.AppendJSON(nil))
	}
}

// handleDelete removes a fact for good. The store tells every stream, on
// every instance; an id that is not a fact id, like an unknown one, is
// 404.
func handleDelete(log *slog.Logger, facts FactDeleter) gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.Param("id")
		if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
			writeError(c, log, store.ErrNotFound)
			return
		}
		// Like a publish, a deletion is not abandoned halfway because the
		// client left.
		f, err := facts.Delete(context.WithoutCancel(c.Request.Context()), id)
		if err != nil {
			writeError(c, log, err)
			return
		}
		log.LogAttrs(c.Request.Context(), slog.LevelInfo, "fact deleted",
			slog.String("request_id", middleware.RequestIDOf(c)), slog.String("id", f.ID), slog.Uint64("seq", f.Seq))
		c.Status(http.StatusNoContent)
	}
}

// writeJSON answers with an already encoded JSON body. The newline it
// adds keeps a shell prompt off the end of the body under curl.
func writeJSON(c *gin.Context, status int, body []byte) {
	c.Data(status, "application/json; charset=utf-8", append(body, '\n'))
}
