package app

import (
	"context"
	"log/slog"
	"time"

	"factstream/store"
)

// presenceWithdrawTimeout bounds the last report (zero clients) at shutdown.
const presenceWithdrawTimeout = time.Second

// startPresence reports this instance's stream count to a shared store
// every interval, so that every instance can show cluster_clients. It
// returns a stop function that ends the loop, withdraws the count and waits;
// call it before closing the store.
func startPresence(log *slog.Logger, p store.Presence, instance string, clients func() int, interval time.Duration) (stop func()) {
	if interval <= 0 {
		interval = store.PresenceInterval
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		reportPresence(ctx, log, p, instance, clients, interval)
	}()
	return func() {
		cancel()
		<-done
		wctx, wcancel := context.WithTimeout(context.Background(), presenceWithdrawTimeout)
		defer wcancel()
		// Best effort: if it fails, the count expires after store.PresenceTTL.
		_ = p.ReportClients(wctx, instance, 0)
	}
}

// reportPresence reports at once and then every interval until ctx ends.
// Failures (Redis away) are logged when they start and when they end, not
// on every tick.
func reportPresence(ctx context.Context, log *slog.Logger, p store.Presence, instance string, clients func() int, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	failing := false
	for {
		err := p.ReportClients(ctx, instance, clients())
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil && !failing:
			log.Warn("cannot report this instance's clients; cluster_clients will miss them", "error", err)
		case err == nil && failing:
			log.Info("reporting this instance's clients again")
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
