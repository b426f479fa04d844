package client_test

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"factstream/client"
)

func newClient(tb testing.TB, base string, o client.Options) *client.Client {
	tb.Helper()
	if o.Retry.Base == 0 {
		o.Retry.Base = 10 * time.Millisecond
	}
	c, err := client.New(base, o)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestErrorsCarryTheProblem(t *testing.T) {
	cfg := config()
	cfg.PublishTokens = []string{"publish-token-0123456789"}
	srv := startService(t, cfg)
	retried := 0
	o := client.Options{Token: "publish-token-0123456789", OnRetry: func(error, time.Duration) { retried++ }}
	c := newClient(t, srv.URL, o)
	o.Token = ""
	anonymous := newClient(t, srv.URL, o)
	ctx := context.Background()
	tests := []struct {
		name   string
		call   func() error
		status int
		code   string
		fields []string
	}{
		{"EmptyInfo", func() error { _, err := c.Publish(ctx, client.Draft{Info: " "}); return err },
			400, "invalid-fact", []string{"info"}},
		{"BadSource", func() error {
			_, err := c.Publish(ctx, client.Draft{Info: "x", Source: "javascript:alert(1)"})
			return err
		}, 400, "invalid-fact", []string{"source"}},
		{"BadFactInABatch", func() error {
			_, err := c.PublishBatch(ctx, []client.Draft{{Info: "fine"}, {Info: ""}})
			return err
		}, 400, "invalid-fact", []string{"[1].info"}},
		{"EmptyBatch", func() error { _, err := c.PublishBatch(ctx, nil); return err }, 400, "", nil},
		{"NoToken", func() error { _, err := anonymous.Publish(ctx, client.Draft{Info: "x"}); return err },
			401, "", nil},
		{"UnknownID", func() error { _, err := c.Get(ctx, "0192f0c4-6a2e-7c1a-9d5e-3b8c2f1e4a77"); return err },
			404, "not-found", nil},
		{"IDWithASlash", func() error { _, err := c.Get(ctx, "../status"); return err }, 404, "", nil},
		{"BadLimit", func() error { _, err := c.List(ctx, client.ListOptions{Limit: 5000}); return err },
			400, "", []string{"limit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			retried = 0
			err := tt.call()
			var problem *client.Error
			if !errors.As(err, &problem) {
				t.Fatalf("err = %v, want an *Error", err)
			}
			if problem.Status != tt.status || (tt.code != "" && problem.Code() != tt.code) {
				t.Fatalf("problem %d %q (%v), want %d %q", problem.Status, problem.Code(), err, tt.status, tt.code)
			}
			if problem.Detail == "" || problem.Title == "" {
				t.Errorf("problem without title or detail: %+v", problem)
			}
			var fields []string
			for _, f := range problem.Errors {
				fields = append(fields, f.Field)
			}
			if tt.fields != nil && strings.Join(fields, ",") != strings.Join(tt.fields, ",") {
				t.Errorf("fields %v, want %v", fields, tt.fields)
			}
			if retried != 0 {
				t.Errorf("retried %d times: a %d does not get better", retried, tt.status)
			}
		})
	}
	page, err := c.List(ctx, client.ListOptions{})
	if err != nil || len(page.Facts) != 0 {
		t.Fatalf("after only rejected requests: %d facts stored, %v", len(page.Facts), err)
	}
}

func TestListAndGet(t *testing.T) {
	srv := startService(t, config())
	c := newClient(t, srv.URL, client.Options{})
	ctx := context.Background()
	facts, err := c.PublishBatch(ctx, drafts(5, "listed"))
	if err != nil {
		t.Fatal(err)
	}
	seqs := func(p client.Page) []uint64 {
		var out []uint64
		for _, f := range p.Facts {
			out = append(out, f.Seq)
		}
		return out
	}
	tests := []struct {
		name       string
		o          client.ListOptions
		want       []uint64
		nextAfter  uint64
		nextBefore uint64
	}{
		{"FirstPage", client.ListOptions{Limit: 2}, []uint64{1, 2}, 2, 0},
		{"After", client.ListOptions{After: 3}, []uint64{4, 5}, 5, 0},
		{"PastTheEnd", client.ListOptions{After: 5}, nil, 0, 0},
		{"NewestFirst", client.ListOptions{Desc: true, Limit: 2}, []uint64{5, 4}, 0, 4},
		{"Before", client.ListOptions{Desc: true, Before: 3}, []uint64{2, 1}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := c.List(ctx, tt.o)
			if err != nil {
				t.Fatal(err)
			}
			if got := seqs(p); len(got) != len(tt.want) || (len(got) > 0 && (got[0] != tt.want[0] || got[len(got)-1] != tt.want[len(tt.want)-1])) {
				t.Fatalf("seqs %v, want %v", got, tt.want)
			}
			if p.NextAfter != tt.nextAfter || p.NextBefore != tt.nextBefore {
				t.Fatalf("next after %d before %d, want %d and %d", p.NextAfter, p.NextBefore, tt.nextAfter, tt.nextBefore)
			}
		})
	}
	got, err := c.Get(ctx, facts[2].ID)
	if err != nil {
		t.Fatal(err)
	}
	if got != facts[2] {
		t.Fatalf("Get = %+v, want %+v", got, facts[2])
	}
}

// TestPublishWaitsOutTheRateLimit publishes twice against a limit of one
// per second: the second call waits as Retry-After says and succeeds.
func TestPublishWaitsOutTheRateLimit(t *testing.T) {
	cfg := config()
	cfg.PublishRate, cfg.PublishBurst = 1, 1
	srv := startService(t, cfg)
	var retries []error
	c := newClient(t, srv.URL, client.Options{OnRetry: func(err error, wait time.Duration) {
		retries = append(retries, err)
		if wait < time.Second {
			t.Errorf("waited %v, less than Retry-After", wait)
		}
	}})
	for _, info := range []string{"first", "second"} {
		if _, err := c.Publish(context.Background(), client.Draft{Info: info}); err != nil {
			t.Fatal(err)
		}
	}
	if len(retries) == 0 {
		t.Fatal("the second publish met no rate limit")
	}
	var problem *client.Error
	if !errors.As(retries[0], &problem) || problem.Status != http.StatusTooManyRequests || problem.RetryAfter < time.Second {
		t.Fatalf("first retry after %v, want a 429 with Retry-After", retries[0])
	}
}

func TestSubscribeWithTokens(t *testing.T) {
	cfg := config()
	cfg.SubscribeTokens = []string{"subscribe-token-0123456789"}
	srv := startService(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	wrong := newClient(t, srv.URL, client.Options{Token: "wrong-token-0123456789"})
	n := 0
	for _, err := range wrong.Subscribe(ctx, 0) {
		n++
		var problem *client.Error
		if !errors.As(err, &problem) || problem.Status != http.StatusUnauthorized {
			t.Fatalf("err = %v, want a 401 *Error", err)
		}
	}
	if n != 1 {
		t.Fatalf("%d values yielded, want the one error", n)
	}

	if _, err := newClient(t, srv.URL, client.Options{}).Publish(ctx, client.Draft{Info: "secret"}); err != nil {
		t.Fatal(err)
	}
	right := newClient(t, srv.URL, client.Options{Token: "subscribe-token-0123456789"})
	if ev, err := first(right.Subscribe(ctx, 0)); err != nil || ev.Fact == nil || ev.Fact.Info != "secret" {
		t.Fatalf("event %+v, %v; want the fact", ev, err)
	}
}

// first returns the first value of seq, or the context's error when it
// ends empty.
func first(seq iter.Seq2[client.Event, error]) (client.Event, error) {
	for ev, err := range seq {
		return ev, err
	}
	return client.Event{}, errors.New("the sequence ended without a value")
}

func TestSubscribeEndsAtAnEventBeyondItsBound(t *testing.T) {
	srv := startService(t, config())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := newClient(t, srv.URL, client.Options{MaxEventSize: 1024})
	if _, err := c.Publish(ctx, client.Draft{Info: strings.Repeat("long ", 400)}); err != nil {
		t.Fatal(err)
	}
	if ev, err := first(c.Subscribe(ctx, 0)); !errors.Is(err, client.ErrEventTooLarge) {
		t.Fatalf("event %+v, %v; want ErrEventTooLarge", ev, err)
	}
}

// TestSubscribeReconnectsAQuietStream: a stream that sends nothing, not
// even keepalives, for IdleTimeout is taken for dead and replaced.
func TestSubscribeReconnectsAQuietStream(t *testing.T) {
	cfg := config()
	cfg.Heartbeat = time.Hour
	cfg.Retry = 10 * time.Millisecond
	srv := startService(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	idle := make(chan error, 10)
	c := newClient(t, srv.URL, client.Options{IdleTimeout: 100 * time.Millisecond, OnRetry: func(err error, _ time.Duration) {
		select {
		case idle <- err:
		default:
		}
	}})
	reconnected := make(chan error, 1)
	go func() {
		select {
		case err := <-idle:
			reconnected <- err
		case <-ctx.Done():
			reconnected <- ctx.Err()
			return
		}
		newClient(t, srv.URL, client.Options{}).Publish(ctx, client.Draft{Info: "after the quiet"})
	}()
	if ev, err := first(c.Subscribe(ctx, 0)); err != nil || ev.Fact == nil || ev.Fact.Seq != 1 {
		t.Fatalf("event %+v, %v; want fact 1", ev, err)
	}
	if err := <-reconnected; !strings.Contains(err.Error(), "idle timeout") {
		t.Fatalf("reconnected after %v, want the idle timeout", err)
	}
}

// TestSubscribeStartsOverOnAReplacedStore restarts the server on a new,
// empty store: the subscriber's position means nothing there, so it says
// so and follows the new store from its first fact.
func TestSubscribeStartsOverOnAReplacedStore(t *testing.T) {
	cfg := config()
	cfg.Store = "bolt:" + filepath.Join(t.TempDir(), "old.db")
	cfg.Retry = 10 * time.Millisecond
	srv := startService(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := newClient(t, srv.URL, client.Options{})
	if _, err := c.PublishBatch(ctx, drafts(3, "old")); err != nil {
		t.Fatal(err)
	}
	var got []string
	for ev, err := range c.Subscribe(ctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case ev.Fact != nil:
			got = append(got, ev.Fact.Info)
		case ev.Reset != nil:
			got = append(got, "reset")
		}
		if len(got) == 3 {
			srv.Stop(t)
			srv.cfg.Store = "bolt:" + filepath.Join(t.TempDir(), "new.db")
			srv.Restart(t)
			if _, err := c.Publish(ctx, client.Draft{Info: "new 0"}); err != nil {
				t.Fatal(err)
			}
		}
		if len(got) == 5 {
			break
		}
	}
	if want := "old 0,old 1,old 2,reset,new 0"; strings.Join(got, ",") != want {
		t.Fatalf("yielded %s, want %s", strings.Join(got, ","), want)
	}
}
