package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"factstream/client"
)

// follower runs Subscribe in the background and hands its facts over one
// at a time: while the test does not take them, the subscriber waits with
// the rest of its array in hand, as a slow consumer would.
type follower struct {
	facts      chan client.Fact
	err        chan error
	reconnects atomic.Int64
	next       uint64 // the seq expected next
}

func follow(ctx context.Context, tb testing.TB, base string, after uint64) *follower {
	tb.Helper()
	f := &follower{facts: make(chan client.Fact), err: make(chan error, 1), next: after + 1}
	c, err := client.New(base, client.Options{
		Retry:   client.RetryPolicy{Base: 10 * time.Millisecond, Max: 200 * time.Millisecond},
		OnRetry: func(error, time.Duration) { f.reconnects.Add(1) },
	})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev, err := range c.Subscribe(ctx, after) {
			if err != nil {
				f.err <- err
				return
			}
			if ev.Fact == nil {
				f.err <- fmt.Errorf("unexpected event %+v", ev)
				return
			}
			select {
			case f.facts <- *ev.Fact:
			case <-ctx.Done():
				return
			}
		}
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
	})
	return f
}

// upTo takes facts until seq last, failing on any gap, duplicate or
// disorder.
func (f *follower) upTo(tb testing.TB, last uint64) {
	tb.Helper()
	timeout := time.After(30 * time.Second)
	for f.next <= last {
		select {
		case got := <-f.facts:
			if got.Seq != f.next {
				tb.Fatalf("got seq %d, want %d: a fact was lost, repeated or out of order", got.Seq, f.next)
			}
			f.next++
		case err := <-f.err:
			tb.Fatalf("Subscribe ended at seq %d: %v", f.next-1, err)
		case <-timeout:
			tb.Fatalf("timed out waiting for seq %d (of %d)", f.next, last)
		}
	}
}

func drafts(n int, prefix string) []client.Draft {
	d := make([]client.Draft, n)
	for i := range d {
		d[i] = client.Draft{Info: fmt.Sprintf("%s %d", prefix, i)}
	}
	return d
}

// TestSubscribeYieldsEveryFactOnceAcrossCutsAndARestart follows the stream
// through a proxy that cuts it three times (once during the first events,
// once while a long catch-up waits, once in the middle of a catch-up) and
// through a restart of the server on its bolt file.
func TestSubscribeYieldsEveryFactOnceAcrossCutsAndARestart(t *testing.T) {
	cfg := config()
	cfg.Store = "bolt:" + filepath.Join(t.TempDir(), "facts.db")
	cfg.Retry = 20 * time.Millisecond
	srv := startService(t, cfg)
	px := startProxy(t, srv.Addr)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	pub, err := client.New(srv.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	publish := func(n int) {
		t.Helper()
		for n > 0 {
			batch := min(n, 1000)
			if _, err := pub.PublishBatch(ctx, drafts(batch, "fact")); err != nil {
				t.Fatal(err)
			}
			n -= batch
		}
	}
	cut := func() {
		t.Helper()
		if n := px.Cut(); n == 0 {
			t.Fatal("the proxy had no live connection to cut")
		}
	}

	publish(3)
	f := follow(ctx, t, px.URL(), 0)
	f.upTo(t, 3) // the snapshot

	cut() // 1: right after the snapshot
	publish(2)
	f.upTo(t, 5)

	// 2: away while 2,500 facts arrive, so the resume is a catch-up of
	// several array events.
	px.SetDown(true)
	cut()
	publish(2500)
	px.SetDown(false)
	f.upTo(t, 2505)

	// 3: in the middle of a catch-up: the subscriber holds part of it and
	// waits for the test to take the next fact while the rest is cut off.
	px.SetDown(true)
	cut()
	publish(3000)
	px.SetDown(false)
	f.upTo(t, 2506)
	cut()
	f.upTo(t, 5505)

	srv.Restart(t) // the proxy forwards to the same address
	publish(5)
	f.upTo(t, 5510)

	if n := f.reconnects.Load(); n < 4 {
		t.Fatalf("%d reconnections, want at least 4 (3 cuts and a restart)", n)
	}
	select {
	case extra := <-f.facts:
		t.Fatalf("an extra fact %d after the last one", extra.Seq)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestPublishStoresOnceWhenTheAnswerIsLost loses the first answer after
// the server stored the fact: the retry, with the same Idempotency-Key,
// gets the first fact back instead of storing a second.
func TestPublishStoresOnceWhenTheAnswerIsLost(t *testing.T) {
	srv := startService(t, config())
	px := startProxy(t, srv.Addr)
	var retries []error
	c, err := client.New(px.URL(), client.Options{
		// A connection per request, so that the proxy loses the answer
		// to the publish rather than to a request before it.
		HTTPClient: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
		Retry:      client.RetryPolicy{Base: 10 * time.Millisecond},
		OnRetry:    func(err error, _ time.Duration) { retries = append(retries, err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, publish := range []struct {
		name string
		do   func() ([]client.Fact, error)
	}{
		{"Publish", func() ([]client.Fact, error) {
			f, err := c.Publish(ctx, client.Draft{Info: "stored once"})
			return []client.Fact{f}, err
		}},
		{"PublishBatch", func() ([]client.Fact, error) { return c.PublishBatch(ctx, drafts(3, "batch")) }},
	} {
		t.Run(publish.name, func(t *testing.T) {
			retries = nil
			before, err := c.List(ctx, client.ListOptions{Desc: true, Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			accepted := px.Accepted()
			px.LoseNextAnswer()
			facts, err := publish.do()
			if err != nil {
				t.Fatal(err)
			}
			if len(retries) != 1 || px.Accepted()-accepted != 2 {
				t.Fatalf("%d retries over %d connections, want 1 over 2 (%v)", len(retries), px.Accepted()-accepted, retries)
			}
			page, err := c.List(ctx, client.ListOptions{After: headOf(before), Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Facts) != len(facts) {
				t.Fatalf("%d facts stored, want %d", len(page.Facts), len(facts))
			}
			for i := range facts {
				if page.Facts[i].ID != facts[i].ID {
					t.Fatalf("stored fact %d is %s, the call returned %s", i, page.Facts[i].ID, facts[i].ID)
				}
			}
		})
	}
}

func headOf(p client.Page) uint64 {
	if len(p.Facts) == 0 {
		return 0
	}
	return p.Facts[0].Seq
}

// TestPublishRetriesAcrossARestart publishes while the server is down: the
// call keeps trying and stores the fact once the server is back.
func TestPublishRetriesAcrossARestart(t *testing.T) {
	cfg := config()
	cfg.Store = "bolt:" + filepath.Join(t.TempDir(), "facts.db")
	srv := startService(t, cfg)
	failed := make(chan error, 100)
	c, err := client.New(srv.URL, client.Options{
		Retry: client.RetryPolicy{Attempts: 100, Base: 10 * time.Millisecond, Max: 50 * time.Millisecond},
		OnRetry: func(err error, _ time.Duration) {
			select {
			case failed <- err:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	type result struct {
		f   client.Fact
		err error
	}
	done := make(chan result, 1)
	go func() {
		f, err := c.Publish(context.Background(), client.Draft{Info: "across a restart"})
		done <- result{f, err}
	}()
	select {
	case <-failed: // an attempt met the stopped server
	case <-time.After(10 * time.Second):
		t.Fatal("no attempt failed while the server was down")
	}
	srv.Restart(t)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	page, err := c.List(context.Background(), client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Facts) != 1 || page.Facts[0].ID != r.f.ID {
		t.Fatalf("stored %d facts, want the one published", len(page.Facts))
	}
}

// TestPublishGivesUpAfterItsAttempts ends with the last failure once the
// attempts are spent.
func TestPublishGivesUpAfterItsAttempts(t *testing.T) {
	srv := startService(t, config())
	srv.Stop(t)
	n := 0
	c, err := client.New(srv.URL, client.Options{
		Retry:   client.RetryPolicy{Attempts: 3, Base: time.Millisecond},
		OnRetry: func(error, time.Duration) { n++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Publish(context.Background(), client.Draft{Info: "nobody listens"})
	var problem *client.Error
	if err == nil || errors.As(err, &problem) || n != 2 {
		t.Fatalf("err = %v after %d retries, want a transport error after 2", err, n)
	}
}
