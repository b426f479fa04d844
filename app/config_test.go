package app

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestFlagsBeatEnvironmentBeatsDefaults(t *testing.T) {
	cfg, err := Parse(
		[]string{"--heartbeat=2s", "--max-body", "1MiB"},
		env(map[string]string{"FACTSTREAM_HEARTBEAT": "5s", "FACTSTREAM_RETRY": "500ms", "FACTSTREAM_STORE": "memory:"}),
		&bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Heartbeat != 2*time.Second || cfg.Retry != 500*time.Millisecond || cfg.Store != "memory:" || cfg.MaxBody != 1<<20 {
		t.Fatalf("cfg = %+v", cfg)
	}
	if cfg.Addr != ":3000" || cfg.ClientBuffer != 1024 || cfg.SnapshotMax != 10000 || cfg.MaxClients != 10000 {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
}

func TestDefaultsMatchTheSpec(t *testing.T) {
	c := DefaultConfig()
	if c.Addr != ":3000" || c.Store != "bolt:data/facts.db" || c.Heartbeat != 15*time.Second ||
		c.Retry != 3*time.Second || c.ClientBuffer != 1024 || c.MaxClients != 10000 ||
		c.SnapshotMax != 10000 || c.MaxBody != 64<<10 || c.ShutdownTimeout != 10*time.Second {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestBadValuesNameTheSetting(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"Duration", []string{"--heartbeat=soon"}, nil, "--heartbeat (FACTSTREAM_HEARTBEAT)"},
		{"NegativeDuration", []string{"--retry=-1s"}, nil, "--retry"},
		{"Int", []string{"--max-clients=many"}, nil, "--max-clients"},
		{"ZeroBuffer", []string{"--client-buffer=0"}, nil, "--client-buffer"},
		{"Size", []string{"--max-body=64KB"}, nil, "--max-body"},
		{"Store", []string{"--store=postgres://x"}, nil, "--store"},
		{"Addr", []string{"--addr=3000"}, nil, "--addr"},
		{"LogLevel", []string{"--log-level=loud"}, nil, "--log-level"},
		{"LogLevelNamesTheLevels", []string{"--log-level=verbose"}, nil, "must be debug, info, warn or error"},
		{"LogFormat", []string{"--log-format=xml"}, nil, "--log-format"},
		{"FromEnvironment", nil, map[string]string{"FACTSTREAM_SNAPSHOT_MAX": "x"}, "FACTSTREAM_SNAPSHOT_MAX"},
		{"UnknownFlag", []string{"--colour=red"}, nil, "colour"},
		{"StrayArgument", []string{"serve"}, nil, "serve"},
		{"ShortAdminToken", []string{"--admin-tokens=short"}, nil, "--admin-tokens (FACTSTREAM_ADMIN_TOKENS)"},
		{"ShortPublishToken", []string{"--publish-tokens=x"}, nil, "--publish-tokens (FACTSTREAM_PUBLISH_TOKENS)"},
		{"ShortSubscribeToken", nil, map[string]string{"FACTSTREAM_SUBSCRIBE_TOKENS": "fifteen-chars-x"}, "FACTSTREAM_SUBSCRIBE_TOKENS"},
		{"ShortMetricsToken", []string{"--metrics-token=metrics"}, nil, "--metrics-token"},
		{"SecondAdminTokenShort", nil, map[string]string{"FACTSTREAM_ADMIN_TOKENS": "long-enough-admin-token,short"}, "FACTSTREAM_ADMIN_TOKENS"},
		{"NegativeRetention", []string{"--retention-facts=-5"}, nil, "--retention-facts"},
		{"RetentionAge", []string{"--retention-age=30d"}, nil, "--retention-age"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.args, env(tc.env), &bytes.Buffer{})
			if err == nil {
				t.Fatal("accepted")
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q: want one line naming %s", msg, tc.want)
			}
		})
	}
}

// A refused token or store URL is named, never printed: the error line
// reaches logs and terminals.
func TestBadValuesKeepSecrets(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		env    map[string]string
		secret string
	}{
		{"ShortToken", []string{"--publish-tokens=tiny-secret"}, nil, "tiny-secret"},
		{"BadTokenCharacter", nil, map[string]string{"FACTSTREAM_ADMIN_TOKENS": "long-enough-but-has-a-space here"}, "has-a-space"},
		{"MetricsToken", []string{"--metrics-token=s3cret"}, nil, "s3cret"},
		{"MistypedRedisURL", []string{"--store=redis:/app:hunter2hunter2@redis.internal:6379/0"}, nil, "hunter2hunter2"},
		{"UnknownScheme", []string{"--store=rediss:app:hunter2hunter2@redis.internal"}, nil, "hunter2hunter2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.args, env(tc.env), &bytes.Buffer{})
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), tc.secret) {
				t.Fatalf("the error prints the secret: %q", err)
			}
		})
	}
}

func TestHelpListsEverySetting(t *testing.T) {
	var out bytes.Buffer
	_, err := Parse([]string{"-h"}, env(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	for _, s := range settings() {
		if !strings.Contains(out.String(), "--"+s.name+" ("+envName(s.name)) {
			t.Errorf("help does not list --%s", s.name)
		}
	}
}

func TestMainExitCodes(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Main(t.Context(), []string{"--retry=x"}, env(nil), &stdout, &stderr); code != 2 {
		t.Fatalf("bad flag: exit %d, want 2", code)
	}
	if lines := strings.Count(strings.TrimSpace(stderr.String()), "\n"); lines != 0 || !strings.Contains(stderr.String(), "--retry") {
		t.Fatalf("stderr = %q, want one line naming --retry", stderr.String())
	}
	if code := Main(t.Context(), []string{"-h"}, env(nil), &stdout, &stderr); code != 0 {
		t.Fatalf("-h: exit %d, want 0", code)
	}
}

// Retention defaults to everything, except on the memory: store, which
// keeps the newest 100,000 facts unless told otherwise.
func TestRetentionDefaultsByStore(t *testing.T) {
	for _, tc := range []struct {
		args []string
		kind string
		want int
	}{
		{nil, "bolt", 0},
		{nil, "redis", 0},
		{nil, "memory", 100_000},
		{[]string{"--retention-facts=0"}, "memory", 0},
		{[]string{"--retention-facts=1000"}, "bolt", 1000},
	} {
		cfg, err := Parse(tc.args, env(nil), &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.RetentionFor(tc.kind); got != tc.want {
			t.Errorf("%v on %s: keeps %d facts, want %d", tc.args, tc.kind, got, tc.want)
		}
	}
	cfg, err := Parse([]string{"--retention-age=720h", "--admin-tokens=0123456789abcdef"}, env(nil), &bytes.Buffer{})
	if err != nil || cfg.RetentionAge != 720*time.Hour || len(cfg.AdminTokens) != 1 {
		t.Fatalf("cfg = %+v, %v", cfg, err)
	}
}
