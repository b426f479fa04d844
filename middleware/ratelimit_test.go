package middleware

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// fakeClock is a time source the test moves by hand.
type fakeClock struct{ t time.Time }

func (f *fakeClock) now() time.Time          { return f.t }
func (f *fakeClock) advance(d time.Duration) { f.t = f.t.Add(d) }

func newTestLimit(perSecond float64, burst int) (*RateLimit, *fakeClock) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := NewRateLimit(perSecond, burst, testReject)
	l.now = clock.now
	return l, clock
}

func post(tb testing.TB, l *RateLimit, remote string) *httptest.ResponseRecorder {
	tb.Helper()
	req := httptest.NewRequest(http.MethodPost, "/x", nil)
	req.RemoteAddr = remote
	return serve(tb, req, l.Handler())
}

func TestRateLimitRefusesPastTheBurstAndRecovers(t *testing.T) {
	l, clock := newTestLimit(1, 2)
	for i := range 2 {
		if got := post(t, l, "192.0.2.1:1000").Code; got != http.StatusOK {
			t.Fatalf("request %d = %d, want 200 within the burst", i, got)
		}
	}
	w := post(t, l, "192.0.2.1:1001")
	if got, want := w.Code, http.StatusTooManyRequests; got != want {
		t.Fatalf("past the burst = %d, want %d", got, want)
	}
	if got, want := w.Header().Get("Retry-After"), "1"; got != want {
		t.Fatalf("Retry-After = %q, want %q", got, want)
	}
	if got := post(t, l, "192.0.2.2:1000").Code; got != http.StatusOK {
		t.Fatalf("another client = %d, want 200", got)
	}
	clock.advance(time.Second)
	if got := post(t, l, "192.0.2.1:1002").Code; got != http.StatusOK {
		t.Fatalf("after waiting as told = %d, want 200", got)
	}
}

func TestRateLimitRefusalTakesNoToken(t *testing.T) {
	l, clock := newTestLimit(1, 1)
	post(t, l, "192.0.2.1:1")
	for range 5 {
		if got := post(t, l, "192.0.2.1:1").Code; got != http.StatusTooManyRequests {
			t.Fatalf("status = %d, want 429", got)
		}
	}
	clock.advance(time.Second)
	if got := post(t, l, "192.0.2.1:1").Code; got != http.StatusOK {
		t.Fatalf("after one interval = %d, want 200: refusals must not use up tokens", got)
	}
}

func TestRateLimitOffLetsAllThrough(t *testing.T) {
	l, _ := newTestLimit(0, 0)
	for range 100 {
		if got := post(t, l, "192.0.2.1:1").Code; got != http.StatusOK {
			t.Fatalf("status = %d, want 200", got)
		}
	}
}

func TestRateLimitDefaultBurstIsTwiceTheRate(t *testing.T) {
	for _, tc := range []struct {
		rate float64
		want int
	}{{5, 10}, {0.5, 1}, {0.001, 1}, {1.2, 3}} {
		if got := NewRateLimit(tc.rate, 0, testReject).burst; got != tc.want {
			t.Errorf("burst for rate %v = %d, want %d", tc.rate, got, tc.want)
		}
	}
}

func TestRateLimitForgetsIdleClients(t *testing.T) {
	l, clock := newTestLimit(1, 2)
	for i := range 50 {
		post(t, l, "192.0.2."+strconv.Itoa(i)+":1")
	}
	if got := len(l.clients); got != 50 {
		t.Fatalf("clients = %d, want 50", got)
	}
	clock.advance(l.idle)
	post(t, l, "198.51.100.1:1")
	if got := len(l.clients); got != 1 {
		t.Fatalf("after %v idle: clients = %d, want only the new one", l.idle, got)
	}
}

func TestClientKey(t *testing.T) {
	for _, tc := range []struct{ ip, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"not-an-ip", "not-an-ip"},
	} {
		if got := clientKey(tc.ip); got != tc.want {
			t.Errorf("clientKey(%q) = %q, want %q", tc.ip, got, tc.want)
		}
	}
}
