package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"factstream/buildinfo"
	"factstream/cli"
	"factstream/handlers"
	"factstream/hub"
	"factstream/hub/fanout"
	"factstream/middleware"
	"factstream/readiness"
	"factstream/store"
	"factstream/takeover"
)

// Main is the whole program behind main: it parses the configuration from
// args and getenv, runs the service until ctx ends and returns the exit
// code.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "healthcheck" {
		return Healthcheck(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "import" {
		return Import(ctx, args[1:], getenv, os.Stdin, stdout, stderr)
	}
	if code, ok := cli.Run(ctx, args, getenv, stdout, stderr); ok {
		return code
	}
	if len(args) > 0 && args[0] == "serve" {
		args = args[1:]
	} else if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		cli.Usage(stdout) // the commands; Parse adds the settings
	}
	cfg, err := Parse(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "factstream: %v\n", err)
		return 2
	}
	cfg.LogOutput = stderr
	// go-redis reports dial failures through a logger of its own, global to
	// the process; Main owns the process, so it points that at the
	// structured log (Run, which tests start many times, leaves it alone).
	redis.SetLogger(redisLog{newLogger(cfg.LogOptions)})
	if err := Run(ctx, cfg); err != nil {
		fmt.Fprintf(stderr, "factstream: %v\n", err)
		return 1
	}
	return 0
}

// Run serves factstream with cfg until ctx ends: New, then Serve.
func Run(ctx context.Context, cfg Config) error {
	s, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	return s.Serve(ctx)
}

// Service is factstream assembled and listening, not yet serving: its
// store open, its hub running, its routes mounted and its port bound.
type Service struct {
	cfg    Config
	log    *slog.Logger
	hub    *hub.Hub
	kind   string // of the store, for the logs
	store  store.Store
	tls    bool
	server *http.Server
	ln     net.Listener
	// release undoes what New did, in reverse order; the last step
	// closes the store.
	release []func()
}

// New assembles the service from cfg and binds its address. It opens what
// Serve will need, and closes it again when it fails; a Service that New
// returns is to be served (or closed, if the caller changes its mind).
func New(ctx context.Context, cfg Config) (_ *Service, err error) {
	log := newLogger(cfg.LogOptions)
	gin.SetMode(gin.ReleaseMode)
	if cfg.Instance == "" {
		cfg.Instance = defaultInstance()
	}
	kind, err := store.Kind(cfg.Store)
	if err != nil {
		return nil, err
	}
	tlsConfig, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: log, kind: kind, tls: tlsConfig != nil}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	h := hub.New(hub.Options{Buffer: cfg.ClientBuffer, MaxSubscribers: cfg.MaxClients, MaxPerClient: cfg.MaxStreamsPerIP})
	s.hub = h
	s.release = append(s.release, h.Close)
	fan := fanout.New(h, log)
	// Made before the store, which may remove facts as it opens.
	removed := middleware.NewFactsRemoved()
	st, err := openStore(cfg.Store, store.Options{
		RetentionFacts: cfg.RetentionFor(kind),
		RetentionAge:   cfg.RetentionAge,
		OnRemove:       removed.Add,
		OnAppend:       fan.OnAppend,
		OnReset:        fan.OnReset,
		OnDelete:       fan.OnDelete,
	})
	if err != nil {
		return nil, err
	}
	s.store = st
	s.release = append(s.release, func() {
		if err := st.Close(); err != nil {
			log.Error("closing the store", "error", err)
		}
	})
	if err := st.Ping(ctx); err != nil {
		// Redis may come up after us (containers started together): the
		// store then serves from the moment it answers, as after an outage.
		log.Warn("store not reachable yet; publishes, streams and /readyz answer 503 until it is",
			"store", kind, "error", err)
	}
	ready := readiness.New(st, kind, 0, log)
	probeCtx, stopProbe := context.WithCancel(context.Background())
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		ready.Run(probeCtx)
	}()
	// Released before the store closes (release runs in reverse).
	s.release = append(s.release, func() {
		stopProbe()
		<-probeDone
	})
	var cluster handlers.ClusterCounter
	if p, ok := st.(store.Presence); ok {
		cluster = p
		s.release = append(s.release, startPresence(log, p, cfg.Instance, h.Subscribers, cfg.PresenceInterval))
	}

	// A registry of this service's own: two services in one process
	// (tests) never share or collide on metrics.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := middleware.NewMetrics(reg, h, st)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if err := removed.Register(reg); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if c, ok := st.(middleware.CommitStats); ok {
		if err := middleware.RegisterCommitMetrics(reg, c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	stream := cfg.StreamOptions
	stream.Takeover = nil // every stream keeps its goroutine
	if cfg.StreamTakeover && takeover.Supported {
		w := takeover.New(h, log)
		// Ends the streams it holds; by then the hub has ended their
		// subscriptions.
		s.release = append(s.release, func() { w.Close() })
		if err := middleware.RegisterTakeoverMetrics(reg, w); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
		stream.Takeover = w
	}

	routes := handlers.Routes(handlers.Deps{
		Logger:      log,
		Store:       st,
		Hub:         h,
		Stream:      stream,
		MaxBody:     cfg.MaxBody,
		ReadTimeout: cfg.ReadTimeout,
		Cluster:     cluster,
		Ready:       ready,
		Instance:    handlers.Instance{ID: cfg.Instance, StoreKind: kind, Version: version(), Started: time.Now()},
		Access:      cfg.Access,
		Metrics:     metrics,
		Gatherer:    reg,
	})
	s.server = &http.Server{
		Handler: routes,
		// No WriteTimeout: it would cut every stream. Streams set a
		// deadline per write instead.
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		MaxHeaderBytes:    int(cfg.MaxHeaderBytes),
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		TLSConfig:         tlsConfig,
		// HTTP/2 is what lets a browser hold more than six streams to one
		// origin; net/http offers it over TLS (ALPN "h2"). Cleartext h2c
		// is left off: browsers never use it.
		Protocols: serverProtocols(),
		// Lets middleware.Framing see what a plain connection's request
		// heads held before net/http parsed them.
		ConnContext: middleware.FramingContext,
	}
	if s.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	s.release = append(s.release, func() { s.ln.Close() })
	if cfg.WriteTimeout > 0 {
		s.ln = userTimeoutListener{Listener: s.ln, timeout: cfg.WriteTimeout}
	}
	if !s.tls {
		// Over TLS the listener stays as it is: HTTP/2 needs the
		// *tls.Conn itself, and the heads travel encrypted under it.
		// There a request with both Content-Length and
		// Transfer-Encoding is not refused, but its connection still
		// closes after it, so no request hidden in its body is served.
		s.ln = middleware.FramingListener(s.ln, s.server.MaxHeaderBytes)
	}
	return s, nil
}

// Addr is the address the service listens on.
func (s *Service) Addr() net.Addr { return s.ln.Addr() }

// Serve serves until ctx ends, then shuts down in order: streams are ended
// by the hub (a stream never returns by itself, so the server could not
// drain otherwise), in-flight requests finish, and the store closes last.
// A Service serves once.
func (s *Service) Serve(ctx context.Context) error {
	defer s.Close()
	cfg, log := s.cfg, s.log
	s.logStartup(ctx)
	if cfg.OnListen != nil {
		cfg.OnListen(s.ln.Addr())
	}

	served := make(chan error, 1)
	go func() {
		if s.tls {
			served <- s.server.ServeTLS(s.ln, "", "") // the certificate is in TLSConfig
			return
		}
		served <- s.server.Serve(s.ln)
	}()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	log.Info("shutting down")
	s.hub.Close()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := s.server.Shutdown(shutdownCtx); err != nil {
		s.server.Close()
		log.Warn("requests still running at the shutdown deadline were cut", "error", err)
	}
	<-served
	log.Info("stopped")
	return nil
}

// Close releases what New opened, the store last, without serving. Serve
// calls it when it returns; later calls do nothing.
func (s *Service) Close() {
	for i := len(s.release) - 1; i >= 0; i-- {
		s.release[i]()
	}
	s.release = nil
}

func serverProtocols() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	return &p
}

// redisLog writes go-redis's messages as structured warnings.
type redisLog struct{ log *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.log.WarnContext(ctx, fmt.Sprintf(format, v...), "component", "redis")
}

func newLogger(o LogOptions) *slog.Logger {
	out := o.LogOutput
	if out == nil {
		out = os.Stderr
	}
	opts := &slog.HandlerOptions{Level: o.LogLevel}
	if o.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(out, opts))
	}
	return slog.New(slog.NewTextHandler(out, opts))
}

func defaultInstance() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "factstream"
	}
	b := make([]byte, 3)
	rand.Read(b)
	return host + "-" + hex.EncodeToString(b)
}

// version is the one version string of this build, as /status, the
// start-up log and "factstream version" show it.
func version() string {
	return buildinfo.Read().String()
}
