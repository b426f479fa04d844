package client

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestBackoffGrowsWithinItsBounds(t *testing.T) {
	p := RetryPolicy{Base: 100 * time.Millisecond, Max: time.Second}
	for n, full := range map[int]time.Duration{
		1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond,
		4: 800 * time.Millisecond, 5: time.Second, 40: time.Second, 100: time.Second,
	} {
		for range 50 {
			if d := backoff(p, n); d < full/2 || d > full {
				t.Fatalf("backoff after %d failures = %v, want within [%v, %v]", n, d, full/2, full)
			}
		}
	}
}

func TestRetryWaitDecidesWhatIsWorthRetrying(t *testing.T) {
	c, err := New("http://localhost:3000", Options{Retry: RetryPolicy{Attempts: 3, Base: 10 * time.Millisecond, Max: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	problem := func(status int, after time.Duration) error {
		return fmt.Errorf("POST /fact: %w", &Error{Status: status, RetryAfter: after})
	}
	tests := []struct {
		name    string
		err     error
		attempt int
		retry   bool
		atLeast time.Duration
	}{
		{"TransportError", errors.New("connection reset by peer"), 1, true, 0},
		{"Unavailable", problem(http.StatusServiceUnavailable, time.Second), 1, true, time.Second},
		{"RateLimited", problem(http.StatusTooManyRequests, 2*time.Second), 2, true, 2 * time.Second},
		{"KeyInFlight", problem(http.StatusConflict, time.Second), 1, true, time.Second},
		{"BadGateway", problem(http.StatusBadGateway, 0), 1, true, 0},
		{"RetryAfterBeyondMax", problem(http.StatusServiceUnavailable, time.Minute), 1, false, 0},
		{"AttemptsSpent", errors.New("connection refused"), 3, false, 0},
		{"BadRequest", problem(http.StatusBadRequest, 0), 1, false, 0},
		{"Unauthorized", problem(http.StatusUnauthorized, 0), 1, false, 0},
		{"KeyReused", problem(http.StatusUnprocessableEntity, 0), 1, false, 0},
		{"InternalError", problem(http.StatusInternalServerError, 0), 1, false, 0},
		{"UnreadableAnswer", permanentError{errors.New("decoding the answer")}, 1, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wait, retry := c.retryWait(tt.err, tt.attempt)
			if retry != tt.retry {
				t.Fatalf("retry = %v, want %v", retry, tt.retry)
			}
			if retry && (wait < tt.atLeast || wait > 5*time.Second) {
				t.Fatalf("wait = %v, want at least %v and at most Max", wait, tt.atLeast)
			}
		})
	}
}

func TestSubscriptionWaitHonoursTheServer(t *testing.T) {
	c, _ := New("http://localhost:3000", Options{Retry: RetryPolicy{Base: 50 * time.Millisecond, Max: 2 * time.Second}})
	s := &subscription{c: c}
	if got := s.wait(false, errors.New("refused")); got != 50*time.Millisecond {
		t.Fatalf("first wait before the server spoke = %v, want Base", got)
	}
	s.retry = 300 * time.Millisecond // as a retry: line says
	if got := s.wait(true, errors.New("cut")); got != 300*time.Millisecond {
		t.Fatalf("wait after a stream that delivered = %v, want the server's 300ms", got)
	}
	for range 10 {
		s.wait(false, errors.New("refused"))
	}
	if got := s.wait(false, errors.New("refused")); got < time.Second || got > 2*time.Second {
		t.Fatalf("wait after many failures = %v, want within [Max/2, Max]", got)
	}
	if got := s.wait(true, &Error{Status: 503, RetryAfter: 5 * time.Second}); got != 2*time.Second {
		t.Fatalf("wait for a Retry-After beyond Max = %v, want Max", got)
	}
	if got := s.wait(true, &Error{Status: 503, RetryAfter: time.Second}); got != time.Second {
		t.Fatalf("wait for Retry-After: 1 = %v, want 1s", got)
	}
}

func TestRetryAfterReadsSecondsAndDates(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Sat, 21 Nov 2026 12:00:10 GMT": 10 * time.Second,
		"Sat, 21 Nov 2026 11:00:00 GMT": 0,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("Retry-After %q = %v, want %v", v, got, want)
		}
	}
}

func TestNewChecksTheBaseURL(t *testing.T) {
	for _, bad := range []string{"", "localhost:3000", "ftp://host", "http://", "http://host:port:x"} {
		if _, err := New(bad, Options{}); err == nil {
			t.Errorf("New(%q) accepted it", bad)
		}
	}
	c, err := New("https://example.com/factstream/?x=1#top", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.endpoint("/facts/a%2Fb", nil), "https://example.com/factstream/facts/a%2Fb"; got != want {
		t.Fatalf("endpoint = %q, want %q", got, want)
	}
}
