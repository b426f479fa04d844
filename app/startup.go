package app

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// logStartup writes what a person starting the service wants to know: the
// URL to open, where the facts are and how many, the version; then one
// warning line for each setting that leaves the service open to anyone
// who can reach it.
func (s *Service) logStartup(ctx context.Context) {
	cfg, log := s.cfg, s.log
	bound := s.ln.Addr()
	attrs := []slog.Attr{
		slog.String("url", openURL(cfg.Addr, bound, s.tls)),
		slog.String("addr", bound.String()),
		slog.String("store", s.kind),
	}
	if where := storeLocation(cfg.Store, s.kind); where != "" {
		key := "address"
		if s.kind == "bolt" {
			key = "file"
		}
		attrs = append(attrs, slog.String(key, where))
	}
	statsCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if st, err := s.store.Stats(statsCtx); err == nil {
		attrs = append(attrs, slog.Uint64("facts", st.Count), slog.Uint64("head_seq", st.LastSeq))
	}
	attrs = append(attrs,
		slog.String("version", version()),
		slog.Bool("tls", s.tls),
		slog.String("instance", cfg.Instance),
	)
	log.LogAttrs(ctx, slog.LevelInfo, "factstream listening", attrs...)

	for _, w := range exposure(bound, cfg.PublishTokens, cfg.CORSOrigins) {
		log.LogAttrs(ctx, slog.LevelWarn, w, slog.String("addr", bound.String()))
	}
}

// exposure is one warning for each setting that leaves a service bound to
// addr open to anyone who can reach it; none on loopback, where only this
// machine can.
func exposure(addr net.Addr, publishTokens, corsOrigins []string) []string {
	if loopback(addr) {
		return nil
	}
	var warnings []string
	if len(publishTokens) == 0 {
		warnings = append(warnings,
			"anyone who can reach this address may publish: set --publish-tokens (FACTSTREAM_PUBLISH_TOKENS) to require a token")
	}
	if slices.Contains(corsOrigins, "*") {
		warnings = append(warnings,
			"CORS allows every origin (*): any web page may call this API from its visitors' browsers; set --cors-origins to the origins that need it")
	}
	return warnings
}

// openURL is the URL a person on this machine opens: localhost when the
// service listens on every interface or on loopback, else the host it was
// told to listen on.
func openURL(configured string, bound net.Addr, tls bool) string {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(bound.String())
	if err != nil {
		return scheme + "://" + bound.String() + "/"
	}
	if ip := net.ParseIP(host); ip != nil && (ip.IsUnspecified() || ip.IsLoopback()) {
		host = "localhost"
	} else if h, _, err := net.SplitHostPort(configured); err == nil && h != "" && net.ParseIP(h) == nil {
		host = h // the name given, rather than the address it resolved to
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/"
}

// loopback reports whether only this machine can reach addr.
func loopback(addr net.Addr) bool {
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// storeLocation is where the store keeps its facts, fit for a log: the
// absolute path of a bolt file, or a Redis URL without its password.
func storeLocation(spec, kind string) string {
	switch kind {
	case "bolt":
		path := strings.TrimPrefix(spec, "bolt:")
		if abs, err := filepath.Abs(path); err == nil {
			return abs
		}
		return path
	case "memory":
		return ""
	}
	u, err := url.Parse(spec)
	if err != nil {
		return "" // Open accepted it, so this does not happen; never log the raw spec
	}
	if u.User != nil {
		if name := u.User.Username(); name != "" {
			u.User = url.User(name)
		} else {
			u.User = nil
		}
	}
	if q := u.Query(); q.Has("password") {
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	return u.String()
}
