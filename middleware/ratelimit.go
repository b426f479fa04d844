package middleware

import (
	"math"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// minSweepEvery bounds how often the client map is swept, so that a high
// rate (which refills buckets quickly) does not make every request walk it.
const minSweepEvery = time.Minute

// RateLimit is a token bucket per client IP address. It owns its client
// map: a value, not package state, so two servers never share buckets.
type RateLimit struct {
	limit  rate.Limit
	burst  int
	reject Reject
	now    func() time.Time

	// idle is how long a client stays in the map after its last request:
	// by then its bucket is full again, so forgetting it changes nothing.
	idle time.Duration

	mu        sync.Mutex
	clients   map[string]*rateClient
	lastSweep time.Time
}

type rateClient struct {
	lim  *rate.Limiter
	seen time.Time
}

// NewRateLimit returns a limit of perSecond requests per second per client
// with bursts of burst requests; burst below 1 means twice perSecond (at
// least 1). perSecond 0 or less turns the limit off.
func NewRateLimit(perSecond float64, burst int, reject Reject) *RateLimit {
	if burst < 1 {
		burst = max(1, int(math.Ceil(2*perSecond)))
	}
	l := &RateLimit{
		limit:   rate.Limit(perSecond),
		burst:   burst,
		reject:  reject,
		now:     time.Now,
		clients: make(map[string]*rateClient),
	}
	if perSecond > 0 {
		l.idle = max(minSweepEvery, time.Duration(float64(burst)/perSecond*float64(time.Second)))
	}
	return l
}

// Handler returns the middleware: a request over its client's rate gets
// 429 with Retry-After (the seconds until it would be allowed) and never
// reaches the handler, so it stores nothing.
func (l *RateLimit) Handler() gin.HandlerFunc {
	if l.limit <= 0 {
		return func(c *gin.Context) { c.Next() }
	}
	return func(c *gin.Context) {
		if wait, ok := l.allow(ClientKey(c)); !ok {
			l.reject(c, Rejection{Status: http.StatusTooManyRequests, Code: "rate-limited",
				Detail: "too many publish requests from this address; retry after the Retry-After delay", RetryAfter: wait})
			return
		}
		c.Next()
	}
}

// allow takes a token from key's bucket, or says how long until one is
// there. A refused request takes nothing, so a client that keeps retrying
// is let through as soon as it waits as told.
func (l *RateLimit) allow(key string) (time.Duration, bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	r := l.bucket(key, now).ReserveN(now, 1)
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now)
		return wait, false
	}
	return 0, true
}

// empty reports whether key's bucket holds less than one token, and how
// long until it holds one, without taking anything.
func (l *RateLimit) empty(key string) (time.Duration, bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	cl := l.clients[key]
	if cl == nil {
		return 0, false
	}
	tokens := cl.lim.TokensAt(now)
	if tokens >= 1 {
		return 0, false
	}
	return time.Duration((1 - tokens) / float64(l.limit) * float64(time.Second)), true
}

// take takes a token from key's bucket if there is one.
func (l *RateLimit) take(key string) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bucket(key, now).AllowN(now, 1)
}

// bucket returns key's bucket, new and full if key had none, and marks it
// used at now; the caller holds l.mu.
func (l *RateLimit) bucket(key string, now time.Time) *rate.Limiter {
	cl := l.clients[key]
	if cl == nil {
		cl = &rateClient{lim: rate.NewLimiter(l.limit, l.burst)}
		l.clients[key] = cl
	}
	cl.seen = now
	return cl.lim
}

// sweep forgets clients idle for longer than l.idle, at most once per
// l.idle, so the map holds only recently active addresses.
func (l *RateLimit) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < l.idle {
		return
	}
	l.lastSweep = now
	for key, cl := range l.clients {
		if now.Sub(cl.seen) >= l.idle {
			delete(l.clients, key)
		}
	}
}

// ClientKey is the client a request counts against for every per-client
// bound (publish rate, wrong tokens, streams): see clientKey. The address
// is gin's ClientIP, which believes X-Forwarded-For only from trusted
// proxies.
func ClientKey(c *gin.Context) string { return clientKey(c.ClientIP()) }

// clientKey is the bucket of an address: the address itself for IPv4, its
// /64 network for IPv6, since one IPv6 host usually holds a whole /64 and
// could otherwise take a fresh bucket per request.
func clientKey(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	addr = addr.Unmap()
	if addr.Is4() {
		return addr.String()
	}
	p, _ := addr.WithZone("").Prefix(64)
	return p.String()
}
