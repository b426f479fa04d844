package tests

import (
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"factstream/app"
)

// loadCompose loads ../docker-compose.yml as docker compose would from the
// repository root: .env read, and profiles (when none are given) taken from
// its COMPOSE_PROFILES.
func loadCompose(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	return loadComposeWithEnv(t, nil, profiles...)
}

// loadComposeWithEnv is loadCompose with env ("KEY=value") as the shell's
// environment that docker compose would interpolate.
func loadComposeWithEnv(t *testing.T, env []string, profiles ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"../docker-compose.yml"},
		cli.WithWorkingDirectory(".."),
		cli.WithEnv(env),
		cli.WithEnvFiles(), // the default: .env beside the compose file
		cli.WithDotEnv,
		cli.WithDefaultProfiles(profiles...),
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	p, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	return p
}

func serviceNames(p *types.Project) []string {
	names := p.ServiceNames()
	slices.Sort(names)
	return names
}

func env(t *testing.T, s types.ServiceConfig, key string) string {
	t.Helper()
	v, ok := s.Environment[key]
	if !ok || v == nil {
		t.Fatalf("service %s: no %s in its environment", s.Name, key)
	}
	return *v
}

// checkHealthCheck fails unless s has a health check that runs cmd.
func checkHealthCheck(t *testing.T, s types.ServiceConfig, cmd ...string) {
	t.Helper()
	hc := s.HealthCheck
	if hc == nil || hc.Disable || hc.Interval == nil || hc.Timeout == nil {
		t.Fatalf("service %s: health check missing or incomplete: %+v", s.Name, hc)
	}
	if want := append([]string{"CMD"}, cmd...); !slices.Equal(hc.Test, want) {
		t.Fatalf("service %s: health check %q, want %q", s.Name, hc.Test, want)
	}
}

// checkSettings fails unless the service's environment is a valid
// factstream configuration, as the binary would read it at start.
func checkSettings(t *testing.T, s types.ServiceConfig) app.Config {
	t.Helper()
	getenv := func(k string) string {
		if v := s.Environment[k]; v != nil {
			return *v
		}
		return ""
	}
	cfg, err := app.Parse(nil, getenv, io.Discard)
	if err != nil {
		t.Fatalf("service %s: its environment does not start factstream: %v", s.Name, err)
	}
	return cfg
}

// publishedPorts maps host ports to the services publishing them, failing on
// a port published twice in one profile (docker compose up would fail).
func publishedPorts(t *testing.T, p *types.Project) map[string]types.ServicePortConfig {
	t.Helper()
	out := map[string]types.ServicePortConfig{}
	owner := map[string]string{}
	for _, s := range p.Services {
		for _, port := range s.Ports {
			if prev, ok := owner[port.Published]; ok {
				t.Fatalf("host port %s published by both %s and %s", port.Published, prev, s.Name)
			}
			owner[port.Published] = s.Name
			out[port.Published] = port
		}
	}
	return out
}

func TestComposeDefaultRunsOneInstanceOnAVolume(t *testing.T) {
	p := loadCompose(t)
	if got, want := serviceNames(p), []string{"factstream"}; !slices.Equal(got, want) {
		t.Fatalf("services started by `docker compose up` = %v, want %v", got, want)
	}
	s := p.Services["factstream"]
	if s.Build == nil || s.Build.Context == "" {
		t.Fatal("factstream is not built from the repository's Dockerfile")
	}
	ports := publishedPorts(t, p)
	if port, ok := ports["3000"]; !ok || port.Target != 3000 {
		t.Fatalf("published ports = %+v, want 3000:3000", ports)
	}
	var data *types.ServiceVolumeConfig
	for i, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Source == "facts" {
			data = &s.Volumes[i]
		}
	}
	if data == nil {
		t.Fatalf("volumes = %+v, want the named volume facts", s.Volumes)
	}
	if _, ok := p.Volumes["facts"]; !ok {
		t.Fatal("named volume facts is not declared")
	}
	store := env(t, s, "FACTSTREAM_STORE")
	if !strings.HasPrefix(store, "bolt:"+data.Target+"/") {
		t.Fatalf("FACTSTREAM_STORE = %q: the bolt file is not inside the volume at %s", store, data.Target)
	}
	checkHealthCheck(t, s, "/factstream", "healthcheck")
	checkSettings(t, s)
}

func TestComposeClusterProfile(t *testing.T) {
	p := loadCompose(t, "cluster")
	if got, want := serviceNames(p), []string{"factstream-a", "factstream-b", "nginx", "redis"}; !slices.Equal(got, want) {
		t.Fatalf("services of the cluster profile = %v, want %v", got, want)
	}
	ports := publishedPorts(t, p)
	if len(ports) != 1 || ports["3000"].Target != 3000 || p.Services["nginx"].Ports[0].Published != "3000" {
		t.Fatalf("published ports = %+v, want only nginx on 3000", ports)
	}

	redis := p.Services["redis"]
	cmd := strings.Join(redis.Command, " ")
	for _, want := range []string{"--appendonly yes", "--appendfsync always"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("redis command %q lacks %q (no loss after a 201)", cmd, want)
		}
	}
	if len(redis.Volumes) == 0 || redis.Volumes[0].Type != types.VolumeTypeVolume || redis.Volumes[0].Target != "/data" {
		t.Errorf("redis volumes = %+v, want a named volume on /data", redis.Volumes)
	}
	checkHealthCheck(t, redis, "redis-cli", "ping")

	instances := map[string]bool{}
	for _, name := range []string{"factstream-a", "factstream-b"} {
		s := p.Services[name]
		if got := env(t, s, "FACTSTREAM_STORE"); got != "redis://redis:6379/0" {
			t.Errorf("%s: FACTSTREAM_STORE = %q, want the redis service", name, got)
		}
		instances[env(t, s, "FACTSTREAM_INSTANCE")] = true
		if dep, ok := s.DependsOn["redis"]; !ok || dep.Condition != types.ServiceConditionHealthy {
			t.Errorf("%s: depends_on = %+v, want redis healthy", name, s.DependsOn)
		}
		if len(s.Ports) != 0 {
			t.Errorf("%s publishes %+v; only nginx should", name, s.Ports)
		}
		checkHealthCheck(t, s, "/factstream", "healthcheck")
		if cfg := checkSettings(t, s); len(cfg.TrustedProxies) == 0 {
			t.Errorf("%s: behind nginx without trusted proxies, every client has nginx's address", name)
		}
	}
	if len(instances) != 2 {
		t.Errorf("instance names %v, want two distinct", instances)
	}

	nginx := p.Services["nginx"]
	for _, dep := range []string{"factstream-a", "factstream-b"} {
		if d, ok := nginx.DependsOn[dep]; !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("nginx: depends_on = %+v, want %s healthy", nginx.DependsOn, dep)
		}
	}
	checkNginxMatchesCompose(t, p)
}

// checkNginxMatchesCompose reads the nginx config the compose file mounts and
// checks it against the services: its upstreams are the instances, it
// listens on nginx's published target port, and its read timeout for
// /events is longer than the instances' heartbeat.
func checkNginxMatchesCompose(t *testing.T, p *types.Project) {
	t.Helper()
	nginx := p.Services["nginx"]
	var conf string
	for _, v := range nginx.Volumes {
		if v.Target == "/etc/nginx/conf.d/default.conf" && v.Type == types.VolumeTypeBind && v.ReadOnly {
			b, err := os.ReadFile(v.Source) // resolved to an absolute path
			if err != nil {
				t.Fatalf("nginx config: %v", err)
			}
			conf = string(b)
		}
	}
	if conf == "" {
		t.Fatalf("nginx volumes = %+v, want a read-only config in conf.d/default.conf", nginx.Volumes)
	}
	upstreams := regexp.MustCompile(`(?m)^\s*server\s+([\w.-]+):(\d+)`).FindAllStringSubmatch(conf, -1)
	var hosts []string
	for _, u := range upstreams {
		hosts = append(hosts, u[1])
		if u[2] != "3000" {
			t.Errorf("upstream %s:%s, want port 3000", u[1], u[2])
		}
	}
	slices.Sort(hosts)
	if want := []string{"factstream-a", "factstream-b"}; !slices.Equal(hosts, want) {
		t.Errorf("nginx upstream servers %v, want %v", hosts, want)
	}
	if m := regexp.MustCompile(`(?m)^\s*listen\s+(\d+)\s*;`).FindStringSubmatch(conf); m == nil || m[1] != "3000" {
		t.Errorf("nginx listen = %v, want 3000 (the published target)", m)
	}
	events := nginxLocation(t, conf, "= /events")
	for _, want := range []string{"proxy_buffering off;", "proxy_http_version 1.1;", `proxy_set_header Connection "";`} {
		if !strings.Contains(events, want) && !strings.Contains(conf, want) {
			t.Errorf("nginx config lacks %q", want)
		}
	}
	if !strings.Contains(conf, "keepalive ") {
		t.Error("nginx upstream has no keepalive connections")
	}
	m := regexp.MustCompile(`proxy_read_timeout\s+(\w+);`).FindStringSubmatch(events)
	if m == nil {
		t.Fatal("no proxy_read_timeout for /events")
	}
	timeout, err := time.ParseDuration(m[1])
	if err != nil {
		t.Fatalf("proxy_read_timeout %q: %v", m[1], err)
	}
	for _, name := range []string{"factstream-a", "factstream-b"} {
		hb, err := time.ParseDuration(env(t, p.Services[name], "FACTSTREAM_HEARTBEAT"))
		if err != nil || timeout <= 2*hb {
			t.Errorf("%s: heartbeat %v (%v) vs nginx read timeout %v: the timeout must be well above the heartbeat", name, hb, err, timeout)
		}
	}
}

// nginxLocation returns the body of the location block with the given
// pattern (the config has no nested blocks inside locations).
func nginxLocation(t *testing.T, conf, pattern string) string {
	t.Helper()
	start := strings.Index(conf, "location "+pattern+" {")
	if start < 0 {
		t.Fatalf("nginx config has no location %s", pattern)
	}
	body := conf[start:]
	end := strings.Index(body, "}")
	return body[:end]
}

// TestDockerfile checks what the compose setup relies on: a multi-stage
// build of a static binary, a non-root runtime and a health check that runs
// the binary's own healthcheck subcommand.
// TestComposePassesTheVersionToTheBuild: the image has no .git, so the
// version reaches the binary only as the Dockerfile's build arguments,
// which every factstream service of every profile passes on from the
// environment.
func TestComposePassesTheVersionToTheBuild(t *testing.T) {
	want := map[string]string{
		"VERSION":    "v1.2.3",
		"REVISION":   "0123456789abcdef0123456789abcdef01234567",
		"BUILD_TIME": "2026-11-30T04:00:00Z",
	}
	shell := []string{
		"FACTSTREAM_VERSION=" + want["VERSION"],
		"FACTSTREAM_REVISION=" + want["REVISION"],
		"FACTSTREAM_BUILD_TIME=" + want["BUILD_TIME"],
	}
	df, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for arg := range want {
		if !regexp.MustCompile(`(?m)^ARG .*\b`+arg+`=`).Match(df) || !strings.Contains(string(df), "${"+arg+"}") {
			t.Errorf("the Dockerfile has no ARG %s that reaches the build", arg)
		}
	}
	for _, profile := range []string{"single", "cluster"} {
		for _, s := range loadComposeWithEnv(t, shell, profile).Services {
			if s.Build == nil {
				continue // redis and nginx are pulled, not built
			}
			for arg, v := range want {
				if got := s.Build.Args[arg]; got == nil || *got != v {
					t.Errorf("profile %s, service %s: build arg %s is not %q from the environment", profile, s.Name, arg, v)
				}
			}
		}
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	if n := len(regexp.MustCompile(`(?m)^FROM `).FindAllString(df, -1)); n < 2 {
		t.Errorf("%d FROM lines, want a multi-stage build", n)
	}
	if !strings.Contains(df, "CGO_ENABLED=0") {
		t.Error("the binary is not built with CGO_ENABLED=0")
	}
	user := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(user) == 0 {
		t.Fatal("no USER: the runtime would run as root")
	}
	if u := user[len(user)-1][1]; u == "root" || u == "0" || strings.HasPrefix(u, "0:") || strings.HasPrefix(u, "root:") {
		t.Errorf("runtime USER %s is root", u)
	}
	if !regexp.MustCompile(`HEALTHCHECK[^\n]*(\\\n[^\n]*)*CMD \["/factstream", "healthcheck"\]`).MatchString(df) {
		t.Error(`HEALTHCHECK does not run ["/factstream", "healthcheck"]`)
	}
	if !strings.Contains(df, `ENTRYPOINT ["/factstream"]`) {
		t.Error(`ENTRYPOINT is not ["/factstream"]`)
	}
}
