package tests

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"factstream/app"
)

// helpFlags runs `factstream -h` and returns the flags it lists.
func helpFlags(tb testing.TB) []string {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	if code := app.Main(context.Background(), []string{"-h"}, func(string) string { return "" }, &stdout, &stderr); code != 0 {
		tb.Fatalf("factstream -h exited %d: %s", code, stderr.String())
	}
	var flags []string
	for _, m := range regexp.MustCompile(`(?m)^\s+--([a-z0-9-]+) \(FACTSTREAM_[A-Z0-9_]+`).FindAllStringSubmatch(stdout.String(), -1) {
		flags = append(flags, m[1])
	}
	if len(flags) == 0 {
		tb.Fatalf("factstream -h lists no flags:\n%s", stdout.String())
	}
	return flags
}

func TestHelpListsEverySetting(t *testing.T) {
	listed := map[string]bool{}
	for _, f := range helpFlags(t) {
		listed[f] = true
	}
	for _, want := range []string{
		"addr", "store", "instance", "heartbeat", "read-header-timeout", "write-timeout", "retry", "max-clients", "client-buffer", "snapshot-max", "max-body", "max-header-bytes",
		"log-level", "log-format", "shutdown-timeout",
		"publish-tokens", "subscribe-tokens", "metrics-token", "admin-tokens", "cors-origins", "publish-rate", "publish-burst",
		"retention-facts", "retention-age",
		"trusted-proxies", "tls-cert", "tls-key", "stream-takeover",
	} {
		if !listed[want] {
			t.Errorf("factstream -h does not list --%s", want)
		}
	}
}

// configTable returns the configuration table of docs/configuration.md:
// its lines that start with "| `--".
func configTable(tb testing.TB) string {
	tb.Helper()
	data, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		tb.Fatal(err)
	}
	var rows []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "| `--") {
			rows = append(rows, line)
		}
	}
	if len(rows) == 0 {
		tb.Fatal("docs/configuration.md has no configuration table (rows starting with \"| `--\")")
	}
	return strings.Join(rows, "\n")
}

func TestDocsListEverySetting(t *testing.T) {
	table := configTable(t)
	for _, flag := range helpFlags(t) {
		if !strings.Contains(table, "| `--"+flag+"`") {
			t.Errorf("the configuration table in docs/configuration.md has no row for --%s", flag)
		}
	}
}

// freeForm lists the settings that accept any value, so have no bad one.
var freeForm = map[string]string{
	"instance": "any name is a valid instance name",
}

func TestBadValueStopsStartup(t *testing.T) {
	certFile, keyFile, _ := selfSigned(t)
	missing := t.TempDir() + "/missing.pem"
	cases := []struct {
		flag, value string
		names       string   // the setting the error line must name
		extra       []string // other flags of the case
	}{
		{"addr", "3000", "--addr", nil},
		{"store", "mongodb://db", "--store", nil},
		{"heartbeat", "fast", "--heartbeat", nil},
		{"retry", "-1s", "--retry", nil},
		{"write-timeout", "1ms", "--write-timeout", nil},
		{"read-header-timeout", "forever", "--read-header-timeout", nil},
		{"max-clients", "0", "--max-clients", nil},
		{"client-buffer", "many", "--client-buffer", nil},
		{"snapshot-max", "-1", "--snapshot-max", nil},
		{"max-body", "64KB", "--max-body", nil},
		{"max-header-bytes", "lots", "--max-header-bytes", nil},
		{"log-level", "loud", "--log-level", nil},
		{"log-format", "xml", "--log-format", nil},
		{"shutdown-timeout", "soon", "--shutdown-timeout", nil},
		{"publish-tokens", "good,,also-good", "--publish-tokens", nil},
		{"publish-tokens", "has space", "--publish-tokens", nil},
		{"publish-tokens", "x", "--publish-tokens", nil},
		{"subscribe-tokens", "tok;en", "--subscribe-tokens", nil},
		{"metrics-token", "not a token", "--metrics-token", nil},
		{"admin-tokens", "a-long-enough-admin-token,,b", "--admin-tokens", nil},
		{"admin-tokens", "short", "--admin-tokens", nil},
		{"retention-facts", "-1", "--retention-facts", nil},
		{"retention-age", "30d", "--retention-age", nil},
		{"cors-origins", "example.com", "--cors-origins", nil},
		{"cors-origins", "*,https://app.example", "--cors-origins", nil},
		{"cors-origins", "https://app.example/path", "--cors-origins", nil},
		{"publish-rate", "fast", "--publish-rate", nil},
		{"publish-rate", "-1", "--publish-rate", nil},
		{"publish-burst", "0", "--publish-burst", nil},
		{"trusted-proxies", "10.0.0.0/33", "--trusted-proxies", nil},
		{"trusted-proxies", "proxy.internal", "--trusted-proxies", nil},
		{"stream-takeover", "maybe", "--stream-takeover", nil},
		{"read-timeout", "soon", "--read-timeout", nil},
		{"read-timeout", "0s", "--read-timeout", nil},
		{"max-streams-per-ip", "-1", "--max-streams-per-ip", nil},
		{"max-streams-per-ip", "few", "--max-streams-per-ip", nil},
		{"tls-cert", missing, "--tls-cert", nil},
		{"tls-key", missing, "--tls-key", nil},
		// Both or neither, and they must match.
		{"tls-cert", certFile, "--tls-key", nil},
		{"tls-key", keyFile, "--tls-cert", nil},
		{"tls-cert", keyFile, "--tls-cert", []string{"--tls-key=" + keyFile}},
	}
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.flag] = true
		t.Run(tc.flag+"="+tc.value, func(t *testing.T) {
			args := append([]string{"--addr=127.0.0.1:0", "--store=memory:"}, tc.extra...)
			args = append(args, "--"+tc.flag+"="+tc.value)
			checkStartupRefused(t, args, func(string) string { return "" }, tc.names)
		})
	}
	for _, flag := range helpFlags(t) {
		if !covered[flag] && freeForm[flag] == "" {
			t.Errorf("--%s has no bad-value case here", flag)
		}
	}
	t.Run("EnvironmentVariable", func(t *testing.T) {
		env := map[string]string{"FACTSTREAM_PUBLISH_RATE": "lots"}
		checkStartupRefused(t, []string{"--addr=127.0.0.1:0", "--store=memory:"}, func(k string) string { return env[k] }, "FACTSTREAM_PUBLISH_RATE")
	})
}

// checkStartupRefused runs the program with args and fails unless it exits
// at once with status 2 and one line that names the setting. Its context
// is already cancelled, so a value wrongly accepted ends a run at once
// instead of serving.
func checkStartupRefused(t *testing.T, args []string, getenv func(string) string, names string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	code := app.Main(ctx, args, getenv, &stdout, &stderr)
	out := strings.TrimRight(stderr.String(), "\n")
	if code != 2 {
		t.Fatalf("exit code %d, want 2 (a configuration error); stderr:\n%s", code, out)
	}
	if strings.Count(out, "\n") != 0 || !strings.Contains(out, names) {
		t.Fatalf("stderr = %q, want one line naming %s", out, names)
	}
}
