package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// floorCommand serves the least a publish can cost through net/http: read
// the body, answer 201 with a fact-sized JSON body, nothing else. S4
// against it shows how much of a factstream publish is net/http's and the
// kernel's, and so what is left to factstream's own work.
func floorCommand(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("loadgen floor", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "loopback address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	srv := &http.Server{Handler: floorHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("floor: %w", err)
	}
	return nil
}

func floorHandler() http.Handler {
	var seq atomic.Uint64
	const body = `{"id":"019aa6c2-4d1e-7b3f-9c2a-5e8d7f6a1b2c","seq":1,"info":"fact sent at 1763750000000000000","source":"https://bench.example/pub/3","created_at":"2026-11-21T19:07:33.325295Z"}`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusOK)
			return
		}
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Location", "/facts/"+strconv.FormatUint(seq.Add(1), 10))
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, body)
	})
}
