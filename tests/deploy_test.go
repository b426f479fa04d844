package tests

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"factstream/internal/redistest"
)

// The files of the deployment kit, from the tests' directory.
const (
	systemdUnit    = "../deploy/systemd/factstream.service"
	systemdEnvFile = "../deploy/systemd/factstream.env"
	nginxTLSConf   = "../deploy/nginx/factstream-tls.conf"
	alertRules     = "../deploy/prometheus/alerts.yml"
	alertRuleTests = "../deploy/prometheus/alerts_test.yml"
	grafanaBoard   = "../deploy/grafana/factstream.json"
	unitBinary     = "/usr/local/bin/factstream"
	unitStateDir   = "/var/lib/factstream"
	unitListenAddr = "127.0.0.1:3000"
	// The most systemd-analyze security may rate the unit's exposure: 0
	// is best, 10 worst. Its --threshold counts in tenths.
	securityMaximum = 2.0
)

func readDeployFile(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// unitAt writes the unit into a temporary directory with its ExecStart
// pointed at bin, so systemd-analyze finds the program it would run.
func unitAt(t *testing.T, unit, bin string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "factstream.service")
	unit = replaceOnce(t, unit, "ExecStart="+unitBinary+"\n", "ExecStart="+bin+"\n")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDeploySystemdUnit checks the unit with systemd-analyze: it must
// verify cleanly against the real binary, and its sandbox must rate well
// in systemd's own security review. A unit with a typo, and one without
// the hardening, must not pass, so the checks can fail.
func TestDeploySystemdUnit(t *testing.T) {
	analyze := toolPath(t, "systemd-analyze", "to verify the systemd unit")
	unit := readDeployFile(t, systemdUnit)

	// verify warns about a value it cannot parse, and goes on: any line
	// about the unit's file is a failure. (Lines about the host's own
	// units are not this file's concern.)
	verify := func(path string) (string, error) {
		out, err := exec.Command(analyze, "verify", path).CombinedOutput()
		var about []string
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, filepath.Base(path)) {
				about = append(about, line)
			}
		}
		return strings.Join(about, "\n"), err
	}
	if out, err := verify(unitAt(t, unit, binPath)); err != nil || out != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	typo := replaceOnce(t, unit, "ProtectSystem=strict\n", "ProtectSystem=strictly\n")
	if out, _ := verify(unitAt(t, typo, binPath)); !strings.Contains(out, "strictly") {
		t.Fatalf("verify said nothing about ProtectSystem=strictly: %q", out)
	}

	security := func(path string) (string, error) {
		out, err := exec.Command(analyze, "security", "--offline=yes", "--no-pager",
			fmt.Sprintf("--threshold=%d", int(securityMaximum*10)), path).CombinedOutput()
		return string(out), err
	}
	out, err := security(unitAt(t, unit, binPath))
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security gave no exposure level: %v\n%s", err, out)
	}
	if exposure, perr := strconv.ParseFloat(m[1], 64); err != nil || perr != nil || exposure > securityMaximum {
		t.Fatalf("systemd-analyze security: exposure %s, want at most %.1f (%v)\n%s", m[1], securityMaximum, err, out)
	}
	bare := "[Service]\nExecStart=" + unitBinary + "\n"
	if out, err := security(unitAt(t, bare, binPath)); err == nil {
		t.Fatalf("a unit without any hardening passed the security threshold:\n%s", out)
	}
}

// unitEnvironment returns the unit's Environment= settings, then the
// example env file's, as KEY=VALUE (later ones win, as in systemd).
func unitEnvironment(t *testing.T) []string {
	t.Helper()
	var env []string
	for _, line := range strings.Split(readDeployFile(t, systemdUnit), "\n") {
		if kv, ok := strings.CutPrefix(line, "Environment="); ok {
			env = append(env, kv)
		}
	}
	for _, line := range strings.Split(readDeployFile(t, systemdEnvFile), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			env = append(env, line)
		}
	}
	return env
}

// TestDeploySystemdEnvironmentRuns starts the binary with the settings
// the unit and its env file give it (the state directory and port moved
// into the test's own), so a setting factstream refuses fails here rather
// than at a restart loop on a server.
func TestDeploySystemdEnvironmentRuns(t *testing.T) {
	unit := readDeployFile(t, systemdUnit)
	for _, want := range []string{"StateDirectory=factstream\n", "bolt:" + unitStateDir + "/facts.db", "EnvironmentFile=-/etc/factstream/factstream.env\n"} {
		if !strings.Contains(unit, want) {
			t.Fatalf("the unit lacks %q", want)
		}
	}
	dir, addr := t.TempDir(), freePort(t)
	argv := []string{"env"}
	for _, kv := range unitEnvironment(t) {
		kv = strings.ReplaceAll(kv, unitStateDir, dir)
		argv = append(argv, strings.ReplaceAll(kv, unitListenAddr, addr))
	}
	p := startCommand(t, dir, addr, append(argv, binPath))
	postFact(t, p.URL, "from the unit's settings")
	if _, err := os.Stat(filepath.Join(dir, "facts.db")); err != nil {
		t.Fatalf("the unit's store is not in its state directory: %v", err)
	}
	first, _, _ := strings.Cut(p.logs.String(), "\n")
	if !json.Valid([]byte(first)) {
		t.Fatalf("the unit asks for JSON logs, got:\n%s", p.logs.String())
	}
}

// tlsNginxConf is deploy/nginx/factstream-tls.conf pointed at the test's
// certificate, ports, access log and instances.
func tlsNginxConf(t *testing.T, httpsAddr, httpAddr, cert, key, accessLog string, instances []string) string {
	t.Helper()
	conf := readDeployFile(t, nginxTLSConf)
	var servers []string
	for _, in := range instances {
		servers = append(servers, "server "+in+" max_fails=1 fail_timeout=5s;")
	}
	conf = replaceOnce(t, conf, "server 127.0.0.1:3000 max_fails=1 fail_timeout=5s;", strings.Join(servers, "\n    "))
	conf = replaceOnce(t, conf, "listen 443 ssl http2;", "listen "+httpsAddr+" ssl http2;")
	conf = replaceOnce(t, conf, "listen 80;", "listen "+httpAddr+";")
	conf = replaceOnce(t, conf, "/etc/ssl/factstream/fullchain.pem", cert)
	conf = replaceOnce(t, conf, "/etc/ssl/factstream/privkey.pem", key)
	return replaceOnce(t, conf, "/var/log/nginx/factstream.access.log", accessLog)
}

// TestDeployNginxTLSHTTP2 puts nginx with the TLS config in front of two
// instances on one Redis, and talks to it over HTTPS and HTTP/2 from
// 127.0.0.2, a client address of its own: events must come through at
// once, requests reach both instances, the instances must see the
// client's address (not nginx's, nor one the client made up), and plain
// HTTP must be sent to HTTPS.
func TestDeployNginxTLSHTTP2(t *testing.T) {
	nginxBinary(t)
	redis := redistest.Start(t)
	var instances []string
	var logs []*lockedBuffer
	for i := range 2 {
		cfg := testConfig(t)
		cfg.Store = redis.URL()
		cfg.Instance = fmt.Sprintf("node-%c", 'a'+i)
		cfg.TrustedProxies = []string{"127.0.0.1"}
		cfg.LogFormat = "json"
		buf := &lockedBuffer{}
		cfg.LogOutput = buf
		logs = append(logs, buf)
		instances = append(instances, startServer(t, cfg).Addr)
	}
	cert, key, roots := selfSigned(t)
	httpsAddr, httpAddr := freePort(t), freePort(t)
	accessLog := filepath.Join(t.TempDir(), "access.log")
	site := tlsNginxConf(t, httpsAddr, httpAddr, cert, key, accessLog, instances)

	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
		DialContext:       dialer.DialContext,
	}}
	t.Cleanup(client.CloseIdleConnections)
	base := "https://" + httpsAddr
	startNginx(t, site, base, client)

	resp, err := client.Get(base + "/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("GET /status through nginx: %s, HSTS %q; want HTTP/2 with HSTS", resp.Proto, resp.Header.Get("Strict-Transport-Security"))
	}

	if err := deliveredBeforeNext(t, client, base, 10, 5*time.Second); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := openTLSStream(ctx, client, base+"/events")
	if err != nil {
		t.Fatal(err)
	}
	if s.resp.ProtoMajor != 2 || !strings.HasPrefix(s.resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream through nginx: %s %q", s.resp.Proto, s.resp.Header.Get("Content-Type"))
	}
	if ev, _, err := s.nextData(); err != nil || len(factsOf(t, ev)) != 10 {
		t.Fatalf("snapshot through nginx = %+v, %v; want the 10 facts", ev, err)
	}
	s.resp.Body.Close()

	// A made-up X-Forwarded-For and a token in the query string.
	req, err := http.NewRequest(http.MethodGet, base+"/facts?limit=1&access_token=SECRET-in-query", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	for range 4 { // round robin: both instances
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// Every request through nginx is logged with the client's address;
	// only the harness's own health checks come from 127.0.0.1 directly.
	for i, l := range logs {
		listed := 0
		for _, line := range strings.Split(strings.TrimSpace(l.String()), "\n") {
			var entry struct{ Path, Remote string }
			if err := json.Unmarshal([]byte(line), &entry); err != nil {
				t.Fatalf("instance %d log line %q: %v", i, line, err)
			}
			if entry.Remote == "" || entry.Path == "/healthz" && entry.Remote == "127.0.0.1" {
				continue
			}
			if entry.Remote != "127.0.0.2" {
				t.Fatalf("instance %d logged a request from %s, want the client's 127.0.0.2:\n%s", i, entry.Remote, line)
			}
			if entry.Path == "/facts" {
				listed++
			}
		}
		if listed == 0 {
			t.Fatalf("instance %d logged no GET /facts through nginx:\n%s", i, l.String())
		}
	}
	eventually(t, 5*time.Second, "the access log", func() bool {
		b, _ := os.ReadFile(accessLog)
		return strings.Contains(string(b), "GET /facts HTTP/2.0")
	})
	if b, _ := os.ReadFile(accessLog); strings.Contains(string(b), "SECRET") {
		t.Fatalf("a query-string token reached nginx's access log:\n%s", b)
	}

	plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = plain.Get("http://" + httpAddr + "/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || !strings.HasPrefix(resp.Header.Get("Location"), "https://") {
		t.Fatalf("plain HTTP = %d %q, want 301 to https://", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestDeployPrometheusAlerts checks the alert rules with promtool, and
// runs their unit tests: each alert fires on the series that should raise
// it and on no other.
func TestDeployPrometheusAlerts(t *testing.T) {
	promtool := toolPath(t, "promtool", "to check the Prometheus alert rules")
	if out, err := exec.Command(promtool, "check", "rules", alertRules).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	test := exec.Command(promtool, "test", "rules", filepath.Base(alertRuleTests))
	test.Dir = filepath.Dir(alertRuleTests)
	if out, err := test.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// promqlName matches the words of a PromQL expression; those that name
// series are picked out by metricNames.
var (
	promqlWord     = regexp.MustCompile(`[A-Za-z0-9_:.]+`)
	promqlGrouping = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promqlBraces   = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promqlKeywords = []string{"and", "or", "unless", "bool", "offset", "inf", "nan"}
)

// metricNames returns the series names an expression selects: the words
// left once strings, label matchers, ranges and grouping lists are taken
// out, other than numbers, keywords and function names (a word followed
// by a parenthesis).
func metricNames(expr string) []string {
	expr = promqlStrings.ReplaceAllString(expr, `""`)
	expr = promqlBraces.ReplaceAllString(expr, " ")
	expr = promqlGrouping.ReplaceAllString(expr, " ")
	var names []string
	for _, loc := range promqlWord.FindAllStringIndex(expr, -1) {
		w := expr[loc[0]:loc[1]]
		if c := w[0]; c >= '0' && c <= '9' || c == '.' || slices.Contains(promqlKeywords, strings.ToLower(w)) {
			continue
		}
		if rest := strings.TrimLeft(expr[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue
		}
		if !slices.Contains(names, w) {
			names = append(names, w)
		}
	}
	return names
}

func TestMetricNamesOfPromQL(t *testing.T) {
	for expr, want := range map[string][]string{
		`up{job="factstream"} == 0`: {"up"},
		`sum by (job, instance, reason) (rate(factstream_rejected_requests_total{reason=~"a|b"}[5m])) > 0`: {"factstream_rejected_requests_total"},
		`histogram_quantile(0.99, sum by (le) (rate(x_bucket{instance=~"$instance"}[$__rate_interval])))`:  {"x_bucket"},
		`factstream_streams / factstream_max_streams > 0.9`:                                                {"factstream_streams", "factstream_max_streams"},
		`rate(a_total[10m]) * 60 > 1e3 and on (instance) b unless c offset 5m`:                             {"a_total", "b", "c"},
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%s) = %v, want %v", expr, got, want)
		}
	}
}

// grafanaQueries returns the dashboard's PromQL: every panel target's
// expression and the variables' label_values queries (as the series they
// read).
func grafanaQueries(t *testing.T) []string {
	t.Helper()
	var board struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
			Panels []json.RawMessage `json:"panels"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal([]byte(readDeployFile(t, grafanaBoard)), &board); err != nil {
		t.Fatalf("%s: %v", grafanaBoard, err)
	}
	var exprs []string
	for _, p := range board.Panels {
		if len(p.Panels) > 0 {
			t.Fatalf("row %q holds collapsed panels, which this check does not read", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+), *\w+\)$`)
	for _, v := range board.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Fatalf("dashboard variable query %q is not label_values(series, label)", v.Definition)
		}
		exprs = append(exprs, m[1])
	}
	return exprs
}

// alertExprs returns the expressions of the alert rules.
func alertExprs(t *testing.T) []string {
	t.Helper()
	var exprs []string
	for _, m := range regexp.MustCompile(`(?m)^\s+expr:\s*(.+)$`).FindAllStringSubmatch(readDeployFile(t, alertRules), -1) {
		exprs = append(exprs, m[1])
	}
	return exprs
}

// exportedNames are the series names /metrics offers, as Prometheus
// stores them (a histogram as its _bucket, _sum and _count series).
func exportedNames(t *testing.T, base string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for name, f := range scrape(t, base) {
		switch f.GetType().String() {
		case "HISTOGRAM", "GAUGE_HISTOGRAM":
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case "SUMMARY":
			names[name], names[name+"_sum"], names[name+"_count"] = true, true, true
		default:
			names[name] = true
		}
	}
	return names
}

// TestDeployQueriesUseExportedMetrics scrapes a running server (bolt
// store, a fact posted, a stream open, a request refused, so that every
// series has appeared) and checks that every series the Grafana dashboard
// and the alert rules read is one it exports. The dashboard's queries
// must also be valid PromQL, which promtool checks as recording rules.
func TestDeployQueriesUseExportedMetrics(t *testing.T) {
	cfg := testConfig(t)
	cfg.Store = "bolt:" + filepath.Join(t.TempDir(), "facts.db")
	srv := startServer(t, cfg)
	postFact(t, srv.URL, "scraped")
	if status, body := postJSON(t, srv.URL+"/fact", map[string]string{"info": ""}, nil); status != http.StatusBadRequest {
		t.Fatalf("POST of an empty fact = %d %s", status, body)
	}
	s := openStream(t, srv.URL+"/events", nil)
	defer s.Close()
	waitMetric(t, srv.URL, 1, "factstream_streams")
	exported := exportedNames(t, srv.URL)
	// Series Prometheus makes itself for every target.
	exported["up"] = true

	dashboard, alerts := grafanaQueries(t), alertExprs(t)
	if len(dashboard) < 10 || len(alerts) < 5 {
		t.Fatalf("read %d dashboard and %d alert queries: the files were not parsed", len(dashboard), len(alerts))
	}
	used := map[string]bool{}
	for what, exprs := range map[string][]string{grafanaBoard: dashboard, alertRules: alerts} {
		for _, e := range exprs {
			names := metricNames(e)
			if len(names) == 0 {
				t.Errorf("%s: no series found in %s", what, e)
			}
			for _, n := range names {
				used[n] = true
				if !exported[n] {
					t.Errorf("%s reads %s, which /metrics does not export (in %s)", what, n, e)
				}
			}
		}
	}
	for _, must := range []string{"factstream_store_ready", "factstream_max_streams", "factstream_slow_disconnects_total", "factstream_rejected_requests_total", "factstream_publish_duration_seconds_bucket"} {
		if !used[must] {
			t.Errorf("neither the dashboard nor the alerts read %s", must)
		}
	}
	var list []string
	for n := range used {
		list = append(list, n)
	}
	sort.Strings(list)
	t.Logf("series read: %s", strings.Join(list, " "))

	promtool := toolPath(t, "promtool", "to check the Grafana dashboard's PromQL")
	rules := &strings.Builder{}
	fmt.Fprintln(rules, "groups:\n  - name: grafana\n    rules:")
	vars := strings.NewReplacer("$__rate_interval", "5m", "$job", ".*", "$instance", ".*")
	for i, e := range dashboard {
		q, _ := json.Marshal(vars.Replace(e)) // a JSON string is a YAML string
		fmt.Fprintf(rules, "      - record: grafana_query_%d\n        expr: %s\n", i, q)
	}
	path := filepath.Join(t.TempDir(), "grafana-queries.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Fatalf("the dashboard's queries are not valid PromQL: %v\n%s\n%s", err, out, rules)
	}
}

// TestDeployReadmeNamesEveryFile keeps deploy/README.md in step with the
// kit: each file in deploy/ is explained there.
func TestDeployReadmeNamesEveryFile(t *testing.T) {
	readme := readDeployFile(t, "../deploy/README.md")
	err := filepath.WalkDir("../deploy", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "README.md" {
			return err
		}
		rel, _ := filepath.Rel("../deploy", path)
		if !strings.Contains(readme, rel) {
			t.Errorf("deploy/README.md does not mention %s", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
