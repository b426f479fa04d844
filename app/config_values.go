package app

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"strings"
)

// splitList splits a comma-separated setting. Empty items are refused
// rather than skipped: "a,,b" is more likely a typo than an intent.
func splitList(v string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	items := strings.Split(v, ",")
	for i, item := range items {
		items[i] = strings.TrimSpace(item)
		if items[i] == "" {
			return nil, fmt.Errorf("item %d of the list is empty", i+1)
		}
	}
	return items, nil
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

func tokensSetter(field func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error {
		tokens, err := splitList(v)
		if err != nil {
			return err
		}
		for _, t := range tokens {
			if err := checkToken(t); err != nil {
				return err
			}
		}
		*field(c) = tokens
		return nil
	}
}

// parseOrigins reads cors-origins: "*" alone, or origins as browsers send
// them in the Origin header (scheme://host[:port], no path).
func parseOrigins(v string) ([]string, error) {
	items, err := splitList(v)
	if err != nil {
		return nil, err
	}
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
		// Browsers send the origin in lower case without a trailing slash.
		items[i] = strings.ToLower(u.Scheme + "://" + u.Host)
	}
	return items, nil
}

// parseProxies reads trusted-proxies: IP addresses or CIDR prefixes.
func parseProxies(v string) ([]string, error) {
	items, err := splitList(v)
	if err != nil {
		return nil, err
	}
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

// fileSetter accepts the path of a readable file, so that a typo in a path
// stops start-up with the setting's name instead of failing later.
func fileSetter(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v != "" {
			f, err := os.Open(v)
			if err != nil {
				return fmt.Errorf("cannot read the file: %w", errors.Unwrap(err))
			}
			f.Close()
		}
		*field(c) = v
		return nil
	}
}

// validate checks what involves more than one setting.
func (c Config) validate() error {
	_, err := c.tlsConfig()
	return err
}

// tlsConfig returns the server's TLS configuration, or nil when TLS is
// off. A certificate without its key (or the reverse) is an error: serving
// plain HTTP when HTTPS was asked for would be worse than not starting.
func (c Config) tlsConfig() (*tls.Config, error) {
	switch {
	case c.TLSCert == "" && c.TLSKey == "":
		return nil, nil
	case c.TLSKey == "":
		return nil, fmt.Errorf("--tls-key (%s) is required with --tls-cert", envName("tls-key"))
	case c.TLSCert == "":
		return nil, fmt.Errorf("--tls-cert (%s) is required with --tls-key", envName("tls-cert"))
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("invalid --tls-cert/--tls-key pair (%q, %q): %v", c.TLSCert, c.TLSKey, err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		// TLS 1.2 is the floor HTTP/2 requires (RFC 9113 §9.2).
		MinVersion: tls.VersionTLS12,
	}, nil
}
