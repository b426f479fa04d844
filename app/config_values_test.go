package app

import (
	"bytes"
	"reflect"
	"slices"
	"testing"
)

func TestSecuritySettingsParse(t *testing.T) {
	cfg, err := Parse([]string{
		"--publish-tokens=pub-1-0123456789, pub-2-0123456789==",
		"--cors-origins=HTTPS://App.Example/,http://localhost:8080",
		"--publish-rate=0.5",
		"--trusted-proxies=10.0.0.0/8,::1,192.0.2.7",
	}, env(map[string]string{"FACTSTREAM_SUBSCRIBE_TOKENS": "sub/1+x-0123456789", "FACTSTREAM_METRICS_TOKEN": "metrics-0123456789"}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"pub-1-0123456789", "pub-2-0123456789=="}; !slices.Equal(cfg.PublishTokens, want) {
		t.Errorf("publish tokens = %q, want %q", cfg.PublishTokens, want)
	}
	if want := []string{"sub/1+x-0123456789"}; !slices.Equal(cfg.SubscribeTokens, want) || cfg.MetricsToken != "metrics-0123456789" {
		t.Errorf("subscribe tokens = %q, metrics token %q", cfg.SubscribeTokens, cfg.MetricsToken)
	}
	// Browsers send origins in lower case without a trailing slash.
	if want := []string{"https://app.example", "http://localhost:8080"}; !slices.Equal(cfg.CORSOrigins, want) {
		t.Errorf("origins = %q, want %q", cfg.CORSOrigins, want)
	}
	if cfg.PublishRate != 0.5 || cfg.PublishBurst != 0 {
		t.Errorf("rate %v burst %d, want 0.5 and 0 (derived later)", cfg.PublishRate, cfg.PublishBurst)
	}
	if len(cfg.TrustedProxies) != 3 {
		t.Errorf("trusted proxies = %q", cfg.TrustedProxies)
	}
}

func TestSecurityDefaultsAreOpen(t *testing.T) {
	c := DefaultConfig()
	if c.PublishTokens != nil || c.SubscribeTokens != nil || c.MetricsToken != "" || c.PublishRate != 0 ||
		c.TrustedProxies != nil || c.TLSCert != "" || c.TLSKey != "" || !slices.Equal(c.CORSOrigins, []string{"*"}) {
		t.Fatalf("defaults = %+v", c)
	}
}

// Every setting's value reads back what it shows: String is what -h and
// the flag package print, so it must be a valid value of the setting.
func TestSettingValuesRoundTrip(t *testing.T) {
	cfg, err := Parse([]string{"--max-body=3MiB", "--publish-rate=2.5", "--publish-burst=4", "--log-level=warn",
		"--cors-origins=https://a.example,https://b.example", "--trusted-proxies=10.0.0.0/8,::1", "--metrics-token=metrics-0123456789"},
		env(map[string]string{"FACTSTREAM_PUBLISH_TOKENS": "publish-1-0123456789,publish-2-0123456789"}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	for _, base := range []Config{DefaultConfig(), cfg} {
		for _, s := range settings() {
			again := base
			shown := s.value(&base).String()
			if err := s.value(&again).Set(shown); err != nil {
				t.Errorf("--%s shows %q, which it refuses: %v", s.name, shown, err)
				continue
			}
			if !reflect.DeepEqual(again, base) {
				t.Errorf("--%s shows %q, which reads back as another value", s.name, shown)
			}
		}
	}
}
