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
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"factstream/store"
)

// Config is the whole configuration. Parse fills it from flags and
// environment variables; tests may build one from DefaultConfig.
type Config struct {
	Addr              string
	Store             string
	Instance          string
	Heartbeat         time.Duration
	Retry             time.Duration
	WriteTimeout      time.Duration
	ReadHeaderTimeout time.Duration
	MaxClients        int
	ClientBuffer      int
	SnapshotMax       int
	MaxBody           int64
	LogLevel          slog.Level
	LogFormat         string
	ShutdownTimeout   time.Duration
	PublishTokens     []string
	SubscribeTokens   []string
	MetricsToken      string
	// AdminTokens are the bearer tokens of the admin endpoints; none
	// turns them off.
	AdminTokens []string
	// RetentionFacts is how many facts are kept (0: all); below 0 means
	// the store's default (see RetentionFor).
	RetentionFacts int
	// RetentionAge is how long a fact is kept (0: for ever).
	RetentionAge time.Duration
	CORSOrigins  []string
	PublishRate  float64
	// PublishBurst is the bucket size of the publish rate limit; 0 means
	// the default, twice PublishRate (at least 1).
	PublishBurst   int
	TrustedProxies []string
	TLSCert        string
	TLSKey         string
	// StreamTakeover lets the takeover writer serve plain HTTP/1.1 streams
	// from one goroutine for all; off, every stream keeps its own.
	StreamTakeover bool

	// Not settings: hooks for embedding and tests.

	// LogOutput receives the logs; nil means standard error.
	LogOutput io.Writer
	// OnListen, when set, is called with the bound address once the server
	// accepts connections (useful with Addr ":0").
	OnListen func(addr net.Addr)
	// PresenceInterval, when set, replaces store.PresenceInterval: how often
	// an instance on a shared store reports its stream count.
	PresenceInterval time.Duration
}

// setting is one configuration value: its flag name (the environment
// variable is derived from it), default, help text and parser.
type setting struct {
	name  string
	def   string
	usage string
	set   func(c *Config, v string) error
}

func settings() []setting {
	return []setting{
		{"addr", ":3000", "address to listen on", func(c *Config, v string) error {
			if _, _, err := net.SplitHostPort(v); err != nil {
				return err
			}
			c.Addr = v
			return nil
		}},
		{"store", "bolt:data/facts.db", "where facts live: bolt:<path>, memory: or redis://host:port/db", func(c *Config, v string) error {
			if _, err := store.Kind(v); err != nil {
				return err
			}
			c.Store = v
			return nil
		}},
		{"instance", "", "name of this instance in /status and logs (default: host name and a random suffix)", func(c *Config, v string) error {
			c.Instance = v
			return nil
		}},
		{"heartbeat", "15s", "interval of keepalive comments on idle streams", durationSetter(func(c *Config) *time.Duration { return &c.Heartbeat }, time.Second)},
		{"retry", "3s", "reconnection delay advertised to SSE clients", durationSetter(func(c *Config) *time.Duration { return &c.Retry }, time.Millisecond)},
		{"read-header-timeout", "10s", "how long a client may take to send its request head (bounds idle and slowloris connections)", durationSetter(func(c *Config) *time.Duration { return &c.ReadHeaderTimeout }, 100*time.Millisecond)},
		{"write-timeout", "10s", "deadline of each write to a stream client; a client that takes longer is dropped", durationSetter(func(c *Config) *time.Duration { return &c.WriteTimeout }, 100*time.Millisecond)},
		{"max-clients", "10000", "most concurrent streams on this instance", intSetter(func(c *Config) *int { return &c.MaxClients }, 1)},
		{"client-buffer", "1024", "events a stream may have queued before it is dropped as too slow", intSetter(func(c *Config) *int { return &c.ClientBuffer }, 1)},
		{"snapshot-max", "10000", "most facts in the snapshot of a connection without Last-Event-ID", intSetter(func(c *Config) *int { return &c.SnapshotMax }, 0)},
		{"max-body", "64KiB", "largest accepted request body (bytes, or with KiB/MiB)", func(c *Config, v string) error {
			n, err := parseSize(v)
			if err != nil {
				return err
			}
			c.MaxBody = n
			return nil
		}},
		{"log-level", "info", "debug, info, warn or error", func(c *Config, v string) error {
			return c.LogLevel.UnmarshalText([]byte(v))
		}},
		{"log-format", "text", "text or json", func(c *Config, v string) error {
			if v != "text" && v != "json" {
				return errors.New("must be text or json")
			}
			c.LogFormat = v
			return nil
		}},
		{"shutdown-timeout", "10s", "how long shutdown waits for in-flight requests", durationSetter(func(c *Config) *time.Duration { return &c.ShutdownTimeout }, 0)},
		{"publish-tokens", "", "comma-separated bearer tokens; when set, POST /fact and POST /facts need one (they also grant reading)", tokensSetter(func(c *Config) *[]string { return &c.PublishTokens })},
		{"subscribe-tokens", "", "comma-separated tokens; when set, /events, /facts, /facts/:id and /status need one (header, access_token query or factstream_token cookie)", tokensSetter(func(c *Config) *[]string { return &c.SubscribeTokens })},
		{"metrics-token", "", "bearer token that /metrics requires; empty leaves /metrics open", func(c *Config, v string) error {
			if v != "" {
				if err := checkToken(v); err != nil {
					return err
				}
			}
			c.MetricsToken = v
			return nil
		}},
		{"cors-origins", "*", "comma-separated origins (scheme://host[:port]) that browsers may call from, or * for any (then without credentials)", func(c *Config, v string) error {
			origins, err := parseOrigins(v)
			if err != nil {
				return err
			}
			c.CORSOrigins = origins
			return nil
		}},
		{"publish-rate", "0", "publish requests per second allowed per client IP (a number; 0 turns the limit off)", func(c *Config, v string) error {
			r, err := strconv.ParseFloat(v, 64)
			if err != nil || r < 0 || math.IsInf(r, 0) || math.IsNaN(r) {
				return errors.New("must be a number >= 0")
			}
			c.PublishRate = r
			return nil
		}},
		{"publish-burst", "", "publish requests a client IP may send at once before publish-rate applies (default: twice publish-rate, at least 1)", func(c *Config, v string) error {
			if v == "" {
				c.PublishBurst = 0
				return nil
			}
			return intSetter(func(c *Config) *int { return &c.PublishBurst }, 1)(c, v)
		}},
		{"trusted-proxies", "", "comma-separated IPs or CIDRs of proxies whose X-Forwarded-For names the client (for the rate limit and logs)", func(c *Config, v string) error {
			proxies, err := parseProxies(v)
			if err != nil {
				return err
			}
			c.TrustedProxies = proxies
			return nil
		}},
		{"retention-facts", "", "facts kept; older ones are removed as new ones come (0 keeps all; default: all, or the newest 100000 with the memory: store)", func(c *Config, v string) error {
			if v == "" {
				c.RetentionFacts = -1
				return nil
			}
			return intSetter(func(c *Config) *int { return &c.RetentionFacts }, 0)(c, v)
		}},
		{"retention-age", "0", "how long a fact is kept, as a Go duration such as 720h (0 keeps facts for ever)", durationSetter(func(c *Config) *time.Duration { return &c.RetentionAge }, 0)},
		{"admin-tokens", "", "comma-separated bearer tokens (header only, at least 16 characters each) for DELETE /facts/:id, /admin/export and /admin/backup; unset turns administration off (403)", func(c *Config, v string) error {
			if err := tokensSetter(func(c *Config) *[]string { return &c.AdminTokens })(c, v); err != nil {
				return err
			}
			for i, t := range c.AdminTokens {
				if len(t) < minAdminToken {
					return fmt.Errorf("token %d has %d characters: admin tokens need at least %d", i+1, len(t), minAdminToken)
				}
			}
			return nil
		}},
		{"tls-cert", "", "PEM certificate file; with tls-key, serve HTTPS and HTTP/2", fileSetter(func(c *Config) *string { return &c.TLSCert })},
		{"tls-key", "", "PEM private key file of tls-cert", fileSetter(func(c *Config) *string { return &c.TLSKey })},
		{"stream-takeover", "true", "true or false: write plain HTTP/1.1 streams from one goroutine for all, which costs far less memory per stream; false keeps a goroutine per stream", func(c *Config, v string) error {
			on, err := strconv.ParseBool(v)
			if err != nil {
				return errors.New("must be true or false")
			}
			c.StreamTakeover = on
			return nil
		}},
	}
}

func durationSetter(field func(*Config) *time.Duration, min time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		if d < min || (min == 0 && d < 0) {
			return fmt.Errorf("must be at least %v", min)
		}
		*field(c) = d
		return nil
	}
}

func intSetter(field func(*Config) *int, min int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return errors.New("must be a whole number")
		}
		if n < min {
			return fmt.Errorf("must be at least %d", min)
		}
		*field(c) = n
		return nil
	}
}

// parseSize reads a byte count: "65536", "64KiB" or "1MiB".
func parseSize(v string) (int64, error) {
	mult := int64(1)
	num := v
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}} {
		if strings.HasSuffix(v, u.suffix) {
			num, mult = strings.TrimSuffix(v, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, errors.New("must be a positive size in bytes, or with a KiB or MiB suffix")
	}
	return n * mult, nil
}

// envName is the environment variable of a flag: FACTSTREAM_ plus its name
// in upper snake case.
func envName(flagName string) string {
	return "FACTSTREAM_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// settingError names the setting a bad value belongs to, in one line.
func settingError(s setting, v string, err error) error {
	return fmt.Errorf("invalid value %q for --%s (%s): %v", v, s.name, envName(s.name), err)
}

// minAdminToken is the shortest admin token accepted: one that deletes
// facts must not be guessable.
const minAdminToken = 16

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
		if err := s.set(&c, s.def); err != nil {
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
	for _, s := range all {
		if v := getenv(envName(s.name)); v != "" {
			if err := s.set(&c, v); err != nil {
				return c, settingError(s, v, err)
			}
		}
	}
	fs := flag.NewFlagSet("factstream", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var flagErr error
	for _, s := range all {
		fs.Func(s.name, s.usage, func(v string) error {
			if err := s.set(&c, v); err != nil {
				flagErr = settingError(s, v, err)
				return flagErr
			}
			return nil
		})
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(out, all)
			return c, err
		}
		if flagErr != nil {
			return c, flagErr
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
