// Package app reads the configuration and assembles the service: it opens
// the store, starts the hub, mounts the routes and runs the HTTP server
// until its context ends, then shuts everything down in order.
package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"factstream/handlers"
	"factstream/store"
)

// Config is the whole configuration. Parse fills it from flags and
// environment variables; tests may build one from DefaultConfig.
//
// Settings that one part of the service reads together live in a
// sub-struct of that part, embedded here so that each reads as a plain
// field (cfg.Heartbeat) and is handed over whole (cfg.StreamOptions).
type Config struct {
	Instance string
	// Where facts live, and how many and for how long they are kept:
	// RetentionFacts 0 keeps all, below 0 means the store's default (see
	// RetentionFor); RetentionAge 0 keeps facts for ever.
	Store          string
	RetentionFacts int
	RetentionAge   time.Duration

	// The listener and the bounds of every request.
	HTTPOptions
	// GET /events. Its Takeover is no setting: New wires the writer that
	// StreamTakeover asks for.
	handlers.StreamOptions
	// Who may call what, and how often.
	handlers.Access
	// The hub: most concurrent streams, of them from one client address
	// (0: no bound), and events each may have queued.
	MaxClients      int
	MaxStreamsPerIP int
	ClientBuffer    int
	// StreamTakeover lets the takeover writer serve plain HTTP/1.1 streams
	// from one goroutine for all; off, every stream keeps its own.
	StreamTakeover bool
	// The logs.
	LogOptions

	// Not settings: hooks for embedding and tests.

	// OnListen, when set, is called with the bound address once the server
	// accepts connections (useful with Addr ":0").
	OnListen func(addr net.Addr)
	// PresenceInterval, when set, replaces store.PresenceInterval: how often
	// an instance on a shared store reports its stream count.
	PresenceInterval time.Duration
}

// HTTPOptions are the HTTP server's settings.
type HTTPOptions struct {
	Addr              string
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds the arrival of a request body (408 beyond); it
	// never applies to a stream, which sends no body.
	ReadTimeout time.Duration
	// MaxBody is the largest request body accepted.
	MaxBody int64
	// MaxHeaderBytes is the largest request head accepted (431 beyond).
	MaxHeaderBytes  int64
	ShutdownTimeout time.Duration
	// TLSCert and TLSKey are PEM files; with both, the server speaks
	// HTTPS and HTTP/2.
	TLSCert string
	TLSKey  string
}

// LogOptions are the logs' settings.
type LogOptions struct {
	LogLevel  slog.Level
	LogFormat string // text or json
	// LogOutput receives the logs; nil means standard error. Not a setting.
	LogOutput io.Writer
}

// setting is one configuration value: its flag name (the environment
// variable is derived from it), its default and help text, and the field
// of a Config it sets, as a flag.Value that knows the setting's syntax.
type setting struct {
	name  string
	def   string
	usage string
	value func(c *Config) flag.Value
}

// settings lists every setting once; -h, the environment, the flags and
// DefaultConfig all read this table.
func settings() []setting {
	return []setting{
		{"addr", ":3000", "address to listen on",
			func(c *Config) flag.Value { return stringValue{&c.Addr, checkAddr} }},
		{"store", "bolt:data/facts.db", "where facts live: bolt:<path>, memory: or redis://host:port/db",
			func(c *Config) flag.Value { return stringValue{&c.Store, checkStore} }},
		{"instance", "", "name of this instance in /status and logs (default: host name and a random suffix)",
			func(c *Config) flag.Value { return stringValue{&c.Instance, nil} }},
		{"heartbeat", "15s", "interval of keepalive comments on idle streams",
			func(c *Config) flag.Value { return durationValue{&c.Heartbeat, time.Second} }},
		{"retry", "3s", "reconnection delay advertised to SSE clients",
			func(c *Config) flag.Value { return durationValue{&c.Retry, time.Millisecond} }},
		{"read-header-timeout", "10s", "how long a client may take to send its request head (bounds idle and slowloris connections)",
			func(c *Config) flag.Value { return durationValue{&c.ReadHeaderTimeout, 100 * time.Millisecond} }},
		{"read-timeout", "30s", "how long a request body may take to arrive in full; beyond, 408 and the connection is closed (never applies to streams)",
			func(c *Config) flag.Value { return durationValue{&c.ReadTimeout, 100 * time.Millisecond} }},
		{"write-timeout", "10s", "how long a client may take to receive an answer, and each write to a stream; a client that takes longer is cut",
			func(c *Config) flag.Value { return durationValue{&c.WriteTimeout, 100 * time.Millisecond} }},
		{"max-clients", "10000", "most concurrent streams on this instance",
			func(c *Config) flag.Value { return intValue{p: &c.MaxClients, min: 1} }},
		{"max-streams-per-ip", "0", "most concurrent streams from one client address (IPv6: one /64; trusted-proxies honoured); beyond, 429 (0 turns the bound off)",
			func(c *Config) flag.Value { return intValue{p: &c.MaxStreamsPerIP, min: 0} }},
		{"client-buffer", "1024", "events a stream may have queued before it is dropped as too slow",
			func(c *Config) flag.Value { return intValue{p: &c.ClientBuffer, min: 1} }},
		{"snapshot-max", "10000", "most facts in the snapshot of a connection without Last-Event-ID",
			func(c *Config) flag.Value { return intValue{p: &c.SnapshotMax, min: 0} }},
		{"max-body", "64KiB", "largest accepted request body (bytes, or with KiB/MiB)",
			func(c *Config) flag.Value { return sizeValue{&c.MaxBody} }},
		{"max-header-bytes", "64KiB", "largest accepted request head, request line and headers (bytes, or with KiB/MiB); a larger one gets 431",
			func(c *Config) flag.Value { return sizeValue{&c.MaxHeaderBytes} }},
		{"log-level", "info", "debug, info, warn or error",
			func(c *Config) flag.Value { return levelValue{&c.LogLevel} }},
		{"log-format", "text", "text or json",
			func(c *Config) flag.Value { return stringValue{&c.LogFormat, oneOf("text", "json")} }},
		{"shutdown-timeout", "10s", "how long shutdown waits for in-flight requests",
			func(c *Config) flag.Value { return durationValue{&c.ShutdownTimeout, 0} }},
		{"publish-tokens", "", "comma-separated bearer tokens of at least 16 characters; when set, POST /fact and POST /facts need one (they also grant reading)",
			func(c *Config) flag.Value { return listValue{&c.PublishTokens, checkTokens} }},
		{"subscribe-tokens", "", "comma-separated tokens of at least 16 characters; when set, /events, /facts, /facts/:id and /status need one (header, access_token query or factstream_token cookie)",
			func(c *Config) flag.Value { return listValue{&c.SubscribeTokens, checkTokens} }},
		{"metrics-token", "", "bearer token of at least 16 characters that /metrics requires; empty leaves /metrics open",
			func(c *Config) flag.Value { return stringValue{&c.MetricsToken, checkOptionalToken} }},
		{"cors-origins", "*", "comma-separated origins (scheme://host[:port]) that browsers may call from, or * for any (then without credentials)",
			func(c *Config) flag.Value { return listValue{&c.CORSOrigins, checkOrigins} }},
		{"publish-rate", "0", "publish requests per second allowed per client IP (a number; 0 turns the limit off)",
			func(c *Config) flag.Value { return rateValue{&c.PublishRate} }},
		{"publish-burst", "", "publish requests a client IP may send at once before publish-rate applies (default: twice publish-rate, at least 1)",
			func(c *Config) flag.Value { return intValue{p: &c.PublishBurst, min: 1, optional: true} }},
		{"trusted-proxies", "", "comma-separated IPs or CIDRs of proxies whose X-Forwarded-For names the client (for the rate limit and logs)",
			func(c *Config) flag.Value { return listValue{&c.TrustedProxies, checkProxies} }},
		{"retention-facts", "", "facts kept; older ones are removed as new ones come (0 keeps all; default: all, or the newest 100000 with the memory: store)",
			func(c *Config) flag.Value { return intValue{p: &c.RetentionFacts, min: 0, optional: true, unset: -1} }},
		{"retention-age", "0", "how long a fact is kept, as a Go duration such as 720h (0 keeps facts for ever)",
			func(c *Config) flag.Value { return durationValue{&c.RetentionAge, 0} }},
		{"admin-tokens", "", "comma-separated bearer tokens (header only, at least 16 characters each) for DELETE /facts/:id, /admin/export and /admin/backup; unset turns administration off (403)",
			func(c *Config) flag.Value { return listValue{&c.AdminTokens, checkTokens} }},
		{"tls-cert", "", "PEM certificate file; with tls-key, serve HTTPS and HTTP/2",
			func(c *Config) flag.Value { return stringValue{&c.TLSCert, checkReadable} }},
		{"tls-key", "", "PEM private key file of tls-cert",
			func(c *Config) flag.Value { return stringValue{&c.TLSKey, checkReadable} }},
		{"stream-takeover", "true", "true or false: write plain HTTP/1.1 streams from one goroutine for all, which costs far less memory per stream; false keeps a goroutine per stream",
			func(c *Config) flag.Value { return boolValue{&c.StreamTakeover} }},
	}
}

// envName is the environment variable of a flag: FACTSTREAM_ plus its name
// in upper snake case.
func envName(flagName string) string {
	return "FACTSTREAM_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// named is a setting's value that names the setting when it refuses a
// value, from a flag or from the environment, in one line, and keeps that
// line in *refused (the flag package would otherwise wrap it in its own).
type named struct {
	flag.Value
	name    string
	secret  secrecy
	refused *error
}

// secrecy is how much of a refused value an error may quote.
type secrecy int

const (
	public   secrecy = iota // all of it
	password                // all but the password of a URL in it
	whole                   // none of it
)

// secretOf says what an error may print of a refused value of a setting:
// tokens and passwords never reach a log or a terminal.
func secretOf(setting string) secrecy {
	switch {
	case setting == "store":
		return password
	case strings.HasSuffix(setting, "-token"), strings.HasSuffix(setting, "-tokens"):
		return whole
	}
	return public
}

func (v named) Set(s string) error {
	err := v.Value.Set(s)
	if err == nil {
		return nil
	}
	setting := fmt.Sprintf("--%s (%s)", v.name, envName(v.name))
	switch v.secret {
	case whole: // the token checks never quote the token
		*v.refused = fmt.Errorf("invalid value for %s: %v", setting, err)
	case password:
		*v.refused = fmt.Errorf("invalid value %q for %s: %s", store.Redact(s), setting, store.RedactError(s, err))
	default:
		*v.refused = fmt.Errorf("invalid value %q for %s: %v", s, setting, err)
	}
	return *v.refused
}

// minToken is the shortest token accepted: a token must not be guessable,
// least of all one that deletes facts.
const minToken = 16

// memoryRetention is how many facts the memory: store keeps unless told:
// without a bound it would grow until the process dies.
const memoryRetention = 100_000

// RetentionFor returns the facts kept on a store of kind: the setting, or
// the store's default when it is unset.
func (c Config) RetentionFor(kind string) int {
	switch {
	case c.RetentionFacts >= 0:
		return c.RetentionFacts
	case kind == "memory":
		return memoryRetention
	default:
		return 0
	}
}

// DefaultConfig returns the configuration with every default applied.
func DefaultConfig() Config {
	var c Config
	for _, s := range settings() {
		if err := s.value(&c).Set(s.def); err != nil {
			panic("default of " + s.name + ": " + err.Error()) // a programming error
		}
	}
	return c
}

// Parse reads the configuration: defaults, then environment variables, then
// flags, each overriding the one before. It returns flag.ErrHelp after
// printing the usage to out when asked for help.
func Parse(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	c := DefaultConfig()
	all := settings()
	fs := flag.NewFlagSet("factstream", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var refused error
	values := make([]named, len(all))
	for i, s := range all {
		values[i] = named{s.value(&c), s.name, secretOf(s.name), &refused}
		fs.Var(values[i], s.name, s.usage)
	}
	// One pass over the environment, through the values the flags set:
	// the flags are parsed after it, so a flag wins over its variable.
	for i, s := range all {
		if v := getenv(envName(s.name)); v != "" {
			if err := values[i].Set(v); err != nil {
				return c, err
			}
		}
	}
	if err := fs.Parse(args); err != nil {
		switch {
		case errors.Is(err, flag.ErrHelp):
			printUsage(out, all)
		case refused != nil:
			return c, refused
		}
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (settings are flags such as --addr=:3000)", fs.Arg(0))
	}
	if err := c.validate(); err != nil {
		return c, err
	}
	return c, nil
}

func printUsage(out io.Writer, all []setting) {
	fmt.Fprintf(out, "Settings of factstream serve (every flag can also be set by the environment variable shown; a flag wins):\n\n")
	for _, s := range all {
		fmt.Fprintf(out, "  --%s (%s, default %q)\n      %s\n", s.name, envName(s.name), s.def, s.usage)
	}
}
