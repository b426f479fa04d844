package middleware

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// Where a token may come from. A browser's EventSource cannot set headers,
// hence the query parameter and the cookie; both are accepted on reads
// only, never on publishes (see RequireToken).
const (
	// AccessTokenParam is the query parameter of RFC 6750 §2.3.
	AccessTokenParam = "access_token"
	// TokenCookie is the cookie a login front end may set.
	TokenCookie = "factstream_token"
)

// TokenSource is a set of places RequireToken looks for a token.
type TokenSource uint8

// Token sources, combined with |. When a request carries a token in more
// than one place, the first in this order is the one checked.
const (
	FromHeader TokenSource = 1 << iota // Authorization: Bearer <token>
	FromQuery                          // ?access_token=<token>
	FromCookie                         // Cookie: factstream_token=<token>
)

// Tokens is a set of accepted tokens, kept only as SHA-256 digests: every
// check compares fixed-size digests in constant time, so neither a token's
// content nor its length leaks through response timing.
type Tokens struct {
	digests [][sha256.Size]byte
}

// NewTokens returns the set of every token in lists.
func NewTokens(lists ...[]string) Tokens {
	var t Tokens
	for _, list := range lists {
		for _, tok := range list {
			t.digests = append(t.digests, sha256.Sum256([]byte(tok)))
		}
	}
	return t
}

// Empty reports whether the set holds no token, which means no check.
func (t Tokens) Empty() bool { return len(t.digests) == 0 }

// Match reports whether token is in the set. It compares against every
// token, without stopping at a match, so its time does not tell which.
func (t Tokens) Match(token string) bool {
	got := sha256.Sum256([]byte(token))
	match := 0
	for i := range t.digests {
		match |= subtle.ConstantTimeCompare(got[:], t.digests[i][:])
	}
	return match == 1
}

// RequireToken lets a request through only with a token of tokens found in
// one of sources; with no tokens it lets every request through. Refusals
// are 401 with a Bearer challenge (RFC 6750 §3). Tokens are never logged or
// echoed.
//
// Publishing should take the header only: a cookie rides along with a
// cross-site form post, so accepting it there would allow request forgery.
//
// failures, when not nil, is the bucket of wrong tokens each client may
// present: a client that has used it up gets 429 for any request with a
// token, right or wrong, until it refills, so guessing goes no faster than
// the bucket's rate. Share one among every RequireToken of a server.
func RequireToken(tokens Tokens, sources TokenSource, failures *AuthFailures, reject Reject) gin.HandlerFunc {
	if tokens.Empty() {
		return func(c *gin.Context) { c.Next() }
	}
	missing := "this endpoint needs a token: " + describeSources(sources)
	return func(c *gin.Context) {
		token, found := requestToken(c, sources)
		challenge := `Bearer realm="factstream"`
		if !found {
			c.Header("WWW-Authenticate", challenge)
			reject(c, Rejection{Status: http.StatusUnauthorized, Code: "token-required", Detail: missing})
			return
		}
		client := ClientKey(c)
		// Refused before the token is checked: the answer must not tell
		// a guess that happened to be right.
		if wait, blocked := failures.blocked(client); blocked {
			reject(c, Rejection{Status: http.StatusTooManyRequests, Code: "rate-limited",
				Detail: "too many wrong tokens from this address; retry after the Retry-After delay", RetryAfter: wait})
			return
		}
		if !tokens.Match(token) {
			failures.spend(client)
			c.Header("WWW-Authenticate", challenge+`, error="invalid_token"`)
			reject(c, Rejection{Status: http.StatusUnauthorized, Code: "token-invalid", Detail: "the token is not valid here"})
			return
		}
		c.Next()
	}
}

// AuthFailures is a token bucket of wrong tokens per client address.
type AuthFailures struct {
	limit *RateLimit
}

// authFailureBurst is how many wrong tokens a client may present at once:
// enough for a person fixing a typo or a client rotating tokens.
const authFailureBurst = 10

// NewAuthFailures returns a bucket of authFailureBurst wrong tokens per
// client, refilled at perSecond (at least 1 a second when perSecond is 0:
// guessing is slowed whether or not publishing is rate limited).
func NewAuthFailures(perSecond float64) *AuthFailures {
	if perSecond <= 0 {
		perSecond = 1
	}
	return &AuthFailures{limit: NewRateLimit(perSecond, authFailureBurst, nil)}
}

// blocked reports whether client has no wrong token left, and how long
// until it has one.
func (f *AuthFailures) blocked(client string) (time.Duration, bool) {
	if f == nil {
		return 0, false
	}
	return f.limit.empty(client)
}

// spend takes one wrong token from client's bucket.
func (f *AuthFailures) spend(client string) {
	if f != nil {
		f.limit.take(client)
	}
}

// requestToken returns the token of the first source present. A present
// but malformed Authorization header counts as a wrong token, not as no
// token: the client meant to authenticate.
func requestToken(c *gin.Context, sources TokenSource) (string, bool) {
	if sources&FromHeader != 0 {
		if h := c.GetHeader("Authorization"); h != "" {
			scheme, token, _ := strings.Cut(h, " ")
			if !strings.EqualFold(scheme, "Bearer") {
				return "", true
			}
			return strings.TrimSpace(token), true
		}
	}
	if sources&FromQuery != 0 {
		if v, ok := c.Request.URL.Query()[AccessTokenParam]; ok {
			return v[0], true
		}
	}
	if sources&FromCookie != 0 {
		if v, err := c.Cookie(TokenCookie); err == nil {
			return v, true
		}
	}
	return "", false
}

func describeSources(sources TokenSource) string {
	var ways []string
	if sources&FromHeader != 0 {
		ways = append(ways, "an Authorization: Bearer <token> header")
	}
	if sources&FromQuery != 0 {
		ways = append(ways, "the "+AccessTokenParam+" query parameter")
	}
	if sources&FromCookie != 0 {
		ways = append(ways, "the "+TokenCookie+" cookie")
	}
	return "send it in " + strings.Join(ways, ", or ")
}
