package app

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"factstream/store"
)

// The kinds of setting values. Each is a flag.Value over a field of a
// Config: Set parses and checks a value as written on the command line or
// in the environment, String shows the field's current value.

// stringValue is a string setting, checked by check when there is one.
type stringValue struct {
	p     *string
	check func(string) error
}

func (v stringValue) Set(s string) error {
	if v.check != nil {
		if err := v.check(s); err != nil {
			return err
		}
	}
	*v.p = s
	return nil
}

func (v stringValue) String() string { return deref(v.p) }

// durationValue is a duration of at least min (and never negative).
type durationValue struct {
	p   *time.Duration
	min time.Duration
}

func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if d < v.min || d < 0 {
		return fmt.Errorf("must be at least %v", v.min)
	}
	*v.p = d
	return nil
}

func (v durationValue) String() string { return deref(v.p).String() }

// intValue is a whole number of at least min. An optional one may be
// empty, which sets it to unset: "the default the setting describes".
type intValue struct {
	p        *int
	min      int
	optional bool
	unset    int
}

func (v intValue) Set(s string) error {
	if s == "" && v.optional {
		*v.p = v.unset
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("must be a whole number")
	}
	if n < v.min {
		return fmt.Errorf("must be at least %d", v.min)
	}
	*v.p = n
	return nil
}

func (v intValue) String() string {
	if n := deref(v.p); n != v.unset || !v.optional {
		return strconv.Itoa(n)
	}
	return ""
}

// sizeValue is a byte count: "65536", "64KiB" or "1MiB".
type sizeValue struct{ p *int64 }

var sizeUnits = []struct {
	suffix string
	mult   int64
}{{"MiB", 1 << 20}, {"KiB", 1 << 10}}

func (v sizeValue) Set(s string) error {
	mult, num := int64(1), s
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			mult, num = u.mult, n
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return errors.New("must be a positive size in bytes, or with a KiB or MiB suffix")
	}
	*v.p = n * mult
	return nil
}

func (v sizeValue) String() string {
	n := deref(v.p)
	for _, u := range sizeUnits {
		if n > 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// rateValue is a rate per second: a finite number, 0 or more.
type rateValue struct{ p *float64 }

func (v rateValue) Set(s string) error {
	r, err := strconv.ParseFloat(s, 64)
	if err != nil || r < 0 || math.IsInf(r, 0) || math.IsNaN(r) {
		return errors.New("must be a number >= 0")
	}
	*v.p = r
	return nil
}

func (v rateValue) String() string { return strconv.FormatFloat(deref(v.p), 'g', -1, 64) }

// boolValue is true or false (also 1, 0, t, f), always with a value:
// --stream-takeover=false.
type boolValue struct{ p *bool }

func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("must be true or false")
	}
	*v.p = b
	return nil
}

func (v boolValue) String() string { return strconv.FormatBool(deref(v.p)) }

// levelValue is a log level: debug, info, warn or error.
type levelValue struct{ p *slog.Level }

func (v levelValue) Set(s string) error {
	var l slog.Level
	// slog also reads offsets such as "info+2"; only the four names are
	// the setting's documented values, and slog's own message names none.
	switch strings.ToLower(s) {
	case "debug", "info", "warn", "error":
	default:
		return errors.New("must be debug, info, warn or error")
	}
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return errors.New("must be debug, info, warn or error")
	}
	*v.p = l
	return nil
}

func (v levelValue) String() string { return strings.ToLower(deref(v.p).String()) }

// listValue is a comma-separated list. Empty items are refused rather
// than skipped: "a,,b" is more likely a typo than an intent. check may
// refuse the list or return it rewritten.
type listValue struct {
	p     *[]string
	check func([]string) ([]string, error)
}

func (v listValue) Set(s string) error {
	var items []string
	if s != "" {
		items = strings.Split(s, ",")
	}
	for i, item := range items {
		items[i] = strings.TrimSpace(item)
		if items[i] == "" {
			return fmt.Errorf("item %d of the list is empty", i+1)
		}
	}
	if v.check != nil && items != nil {
		var err error
		if items, err = v.check(items); err != nil {
			return err
		}
	}
	*v.p = items
	return nil
}

func (v listValue) String() string { return strings.Join(deref(v.p), ",") }

// deref reads a value's field; the flag package may ask a zero Value for
// its String.
func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// checkAddr accepts a listen address, host:port.
func checkAddr(v string) error {
	_, _, err := net.SplitHostPort(v)
	return err
}

func checkStore(v string) error {
	_, err := store.Kind(v)
	return err
}

func oneOf(choices ...string) func(string) error {
	return func(v string) error {
		for _, c := range choices {
			if v == c {
				return nil
			}
		}
		return errors.New("must be " + strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1])
	}
}

// checkToken accepts the token syntax of RFC 6750 (b64token), so that a
// token always fits in an Authorization header, a query parameter and a
// cookie without escaping, and can never contain the list separator.
func checkToken(t string) error {
	body := strings.TrimRight(t, "=")
	if body == "" {
		return errors.New("a token must not be empty")
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("-._~+/", c) >= 0) {
			return errors.New("tokens may hold only letters, digits and - . _ ~ + / (and trailing =)")
		}
	}
	return nil
}

// checkOptionalToken accepts a token or nothing.
func checkOptionalToken(t string) error {
	if t == "" {
		return nil
	}
	_, err := checkTokens([]string{t})
	return err
}

func checkTokens(tokens []string) ([]string, error) {
	for i, t := range tokens {
		if err := checkToken(t); err != nil {
			return nil, err
		}
		if len(t) < minToken {
			return nil, fmt.Errorf("token %d has %d characters: tokens need at least %d", i+1, len(t), minToken)
		}
	}
	return tokens, nil
}

// checkOrigins reads cors-origins: "*" alone, or origins as browsers send
// them in the Origin header (scheme://host[:port], no path), which it
// returns as browsers write them: in lower case, without a trailing slash.
func checkOrigins(items []string) ([]string, error) {
	for i, o := range items {
		if o == "*" {
			if len(items) > 1 {
				return nil, errors.New("* allows every origin and cannot be combined with others")
			}
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("%q is not an origin: use scheme://host[:port], e.g. https://example.com", o)
		}
		items[i] = strings.ToLower(u.Scheme + "://" + u.Host)
	}
	return items, nil
}

// checkProxies reads trusted-proxies: IP addresses or CIDR prefixes.
func checkProxies(items []string) ([]string, error) {
	for _, p := range items {
		if strings.Contains(p, "/") {
			if _, err := netip.ParsePrefix(p); err != nil {
				return nil, fmt.Errorf("%q is not an IP address or CIDR prefix", p)
			}
		} else if a, err := netip.ParseAddr(p); err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%q is not an IP address or CIDR prefix", p)
		}
	}
	return items, nil
}

// checkReadable accepts the path of a readable file, or nothing, so that a
// typo in a path stops start-up with the setting's name instead of failing
// later.
func checkReadable(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot read the file: %w", errors.Unwrap(err))
	}
	return f.Close()
}

// validate checks what involves more than one setting.
func (c Config) validate() error {
	_, err := c.tlsConfig()
	return err
}

// tlsConfig returns the server's TLS configuration, or nil when TLS is
// off. A certificate without its key (or the reverse) is an error: serving
// plain HTTP when HTTPS was asked for would be worse than not starting.
func (o HTTPOptions) tlsConfig() (*tls.Config, error) {
	switch {
	case o.TLSCert == "" && o.TLSKey == "":
		return nil, nil
	case o.TLSKey == "":
		return nil, fmt.Errorf("--tls-key (%s) is required with --tls-cert", envName("tls-key"))
	case o.TLSCert == "":
		return nil, fmt.Errorf("--tls-cert (%s) is required with --tls-key", envName("tls-cert"))
	}
	cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("invalid --tls-cert/--tls-key pair (%q, %q): %v", o.TLSCert, o.TLSKey, err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		// TLS 1.2 is the floor HTTP/2 requires (RFC 9113 §9.2).
		MinVersion: tls.VersionTLS12,
	}, nil
}
