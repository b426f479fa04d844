package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"factstream/handlers"
	"factstream/store"
)

func TestPublishShapes(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		name, path, ct, body string
		wantN                int
		wantLocation         bool
	}{
		{"JSONObject", "/fact", jsonCT, `{"info":"  Shark teeth  ","source":"https://en.wikipedia.org/wiki/Shark"}`, 1, true},
		{"JSONObjectWithCharset", "/fact", "application/json; charset=UTF-8", `{"info":"ok"}`, 1, true},
		{"NullSource", "/fact", jsonCT, `{"info":"ok","source":null}`, 1, true},
		{"Form", "/fact", "application/x-www-form-urlencoded", `info=From+a+form&source=https%3A%2F%2Fexample.com%2F`, 1, true},
		{"ObjectToPlural", "/facts", jsonCT, `{"info":"one"}`, 1, true},
		{"Batch", "/facts", jsonCT, `[{"info":"a"},{"info":"b","source":"http://example.com"},{"info":"c"}]`, 3, false},
		{"Unicode", "/fact", jsonCT, `{"info":"Haie 🦈 \ud83e\udd88 tab\there"}`, 1, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.count(t)
			r := e.do(t, "POST", tc.path, tc.ct, tc.body, nil)
			if r.status != http.StatusCreated {
				t.Fatalf("status = %d %s", r.status, r.body)
			}
			var facts []store.Fact
			if tc.wantLocation {
				var f store.Fact
				if err := json.Unmarshal([]byte(r.body), &f); err != nil {
					t.Fatalf("body %s: %v", r.body, err)
				}
				if got, want := r.header.Get("Location"), "/facts/"+f.ID; got != want {
					t.Fatalf("Location = %q, want %q", got, want)
				}
				facts = []store.Fact{f}
			} else {
				if err := json.Unmarshal([]byte(r.body), &facts); err != nil {
					t.Fatalf("body %s: %v", r.body, err)
				}
				if loc := r.header.Get("Location"); loc != "" {
					t.Fatalf("a batch answered with Location %q", loc)
				}
			}
			if len(facts) != tc.wantN || e.count(t) != before+uint64(tc.wantN) {
				t.Fatalf("stored %d facts, answered %d, want %d", e.count(t)-before, len(facts), tc.wantN)
			}
			for _, f := range facts {
				if f.Info != strings.TrimSpace(f.Info) || f.Info == "" {
					t.Fatalf("info %q is not trimmed", f.Info)
				}
			}
		})
	}
}

func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t, nil)
	key := map[string]string{"Idempotency-Key": "order-42"}
	first := e.do(t, "POST", "/fact", jsonCT, `{"info":"once"}`, key)
	again := e.do(t, "POST", "/fact", jsonCT, `{"info":"once"}`, key)
	if first.status != 201 || again.status != 201 || again.body != first.body {
		t.Fatalf("replay = %d %s, want the first response %d %s", again.status, again.body, first.status, first.body)
	}
	if again.header.Get("Idempotent-Replayed") != "true" || first.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("Idempotent-Replayed: first %q, replay %q", first.header.Get("Idempotent-Replayed"), again.header.Get("Idempotent-Replayed"))
	}
	if again.header.Get("Location") != first.header.Get("Location") {
		t.Fatal("replay has another Location")
	}
	other := e.do(t, "POST", "/fact", jsonCT, `{"info":"something else"}`, key)
	if other.status != http.StatusUnprocessableEntity {
		t.Fatalf("same key, other body = %d, want 422", other.status)
	}
	decodeProblem(t, other)
	// An error is not remembered: a corrected retry with the same key works.
	bad := map[string]string{"Idempotency-Key": "fix-me"}
	if r := e.do(t, "POST", "/fact", jsonCT, `{"info":""}`, bad); r.status != 400 {
		t.Fatalf("bad body = %d", r.status)
	}
	if r := e.do(t, "POST", "/fact", jsonCT, `{"info":"fixed"}`, bad); r.status != 201 {
		t.Fatalf("corrected retry = %d %s", r.status, r.body)
	}
	batchKey := map[string]string{"Idempotency-Key": "batch-1"}
	b1 := e.do(t, "POST", "/facts", jsonCT, `[{"info":"x"},{"info":"y"}]`, batchKey)
	b2 := e.do(t, "POST", "/facts", jsonCT, `[{"info":"x"},{"info":"y"}]`, batchKey)
	if b1.body != b2.body || b2.header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("batch replay = %s, want %s", b2.body, b1.body)
	}
	if got := e.count(t); got != 4 {
		t.Fatalf("count = %d, want 4 (once, fixed, x, y)", got)
	}
}

// blockingStore holds appends until released: the only way to have a
// request reliably in flight while a second one arrives.
type blockingStore struct {
	handlers.Store
	entered chan struct{}
	release chan struct{}
}

func (b *blockingStore) Append(ctx context.Context, req store.AppendRequest) (store.AppendResult, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.Store.Append(ctx, req)
}

func TestIdempotencyKeyInFlightIsRefused(t *testing.T) {
	bs := &blockingStore{entered: make(chan struct{}, 1), release: make(chan struct{})}
	e := newEnv(t, func(s handlers.Store) handlers.Store { bs.Store = s; return bs })
	key := map[string]string{"Idempotency-Key": "slow"}
	var wg sync.WaitGroup
	var first response
	var firstErr error
	wg.Go(func() { first, firstErr = e.try("POST", "/fact", jsonCT, `{"info":"x"}`, key) })
	<-bs.entered
	second := e.do(t, "POST", "/fact", jsonCT, `{"info":"x"}`, key)
	close(bs.release)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	if second.status != http.StatusConflict || second.header.Get("Retry-After") != "1" {
		t.Fatalf("concurrent retry = %d (Retry-After %q), want 409 with Retry-After 1", second.status, second.header.Get("Retry-After"))
	}
	if first.status != 201 {
		t.Fatalf("first = %d", first.status)
	}
}

func TestStoreUnavailableIs503(t *testing.T) {
	e := newEnv(t, nil)
	e.store.Close()
	r := e.do(t, "POST", "/fact", jsonCT, `{"info":"x"}`, nil)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("publish to a closed store = %d (Retry-After %q), want 503 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
	decodeProblem(t, r)
	if r := e.do(t, "GET", "/readyz", "", "", nil); r.status != http.StatusServiceUnavailable {
		t.Fatalf("readyz = %d, want 503", r.status)
	}
}

func TestPagingAndLookup(t *testing.T) {
	e := newEnv(t, nil)
	var ids []string
	for i := 1; i <= 5; i++ {
		var f store.Fact
		r := e.do(t, "POST", "/fact", jsonCT, fmt.Sprintf(`{"info":"f%d"}`, i), nil)
		json.Unmarshal([]byte(r.body), &f)
		ids = append(ids, f.ID)
	}
	type page struct {
		Facts      []store.Fact `json:"facts"`
		NextAfter  *uint64      `json:"next_after"`
		NextBefore *uint64      `json:"next_before"`
	}
	cases := []struct {
		query    string
		wantSeqs []uint64
		wantNext string
	}{
		{"", []uint64{1, 2, 3, 4, 5}, "next_after:5"},
		{"?after=2&limit=2", []uint64{3, 4}, "next_after:4"},
		{"?after=5", nil, "next_after:null"},
		{"?order=desc&limit=2", []uint64{5, 4}, "next_before:4"},
		{"?order=desc&before=4", []uint64{3, 2, 1}, "next_before:1"},
		{"?order=desc&before=1", nil, "next_before:null"},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			r := e.do(t, "GET", "/facts"+tc.query, "", "", nil)
			var p page
			if r.status != 200 || json.Unmarshal([]byte(r.body), &p) != nil {
				t.Fatalf("GET /facts%s = %d %s", tc.query, r.status, r.body)
			}
			if len(p.Facts) != len(tc.wantSeqs) || !strings.Contains(r.body, `"facts":[`) {
				t.Fatalf("got %s, want seqs %v", r.body, tc.wantSeqs)
			}
			for i, f := range p.Facts {
				if f.Seq != tc.wantSeqs[i] {
					t.Fatalf("got %s, want seqs %v", r.body, tc.wantSeqs)
				}
			}
			name, value, _ := strings.Cut(tc.wantNext, ":")
			if !strings.Contains(r.body, fmt.Sprintf(`"%s":%s`, name, value)) {
				t.Fatalf("body %s lacks %s", r.body, tc.wantNext)
			}
		})
	}
	r := e.do(t, "GET", "/facts/"+ids[2], "", "", nil)
	var f store.Fact
	if r.status != 200 || json.Unmarshal([]byte(r.body), &f) != nil || f.Seq != 3 {
		t.Fatalf("GET /facts/%s = %d %s", ids[2], r.status, r.body)
	}
}

func TestStatusAndHealth(t *testing.T) {
	e := newEnv(t, nil)
	e.do(t, "POST", "/fact", jsonCT, `{"info":"x"}`, nil)
	openRawStream(t, e.srv.URL+"/events")
	var st map[string]any
	r := e.do(t, "GET", "/status", "", "", nil)
	if err := json.Unmarshal([]byte(r.body), &st); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"clients": 1.0, "facts": 1.0, "last_seq": 1.0, "instance": "t", "store": "memory", "version": "test"}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("status %s = %v, want %v", k, st[k], v)
		}
	}
	if _, ok := st["uptime_seconds"]; !ok {
		t.Error("status lacks uptime_seconds")
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if r := e.do(t, "GET", path, "", "", nil); r.status != 200 {
			t.Errorf("%s = %d", path, r.status)
		}
	}
	if r := e.do(t, "GET", "/nowhere", "", "", nil); r.status != 404 {
		t.Errorf("unknown path = %d, want 404", r.status)
	} else {
		decodeProblem(t, r)
	}
}

func TestTooManyStreamsIs503(t *testing.T) {
	e := newEnv(t, nil) // MaxSubscribers: 10
	e.do(t, "POST", "/fact", jsonCT, `{"info":"x"}`, nil)
	for range 10 {
		openRawStream(t, e.srv.URL+"/events")
	}
	r := e.do(t, "GET", "/events", "", "", nil)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("11th stream = %d (Retry-After %q), want 503 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
	decodeProblem(t, r)
}
