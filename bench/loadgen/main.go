//go:build linux

// Command loadgen is factstream's load generator. "loadgen run" drives one
// scenario against a running server: SSE subscribers over raw HTTP/1.1
// connections (parsed incrementally: status, headers, chunked framing,
// event stream), publishers over raw keep-alive connections, and checks
// that every subscriber received every acknowledged fact exactly once.
// "loadgen report" turns the results of bench/run.sh into BENCHMARKS.md,
// "loadgen cluster-report" those of its cluster scenarios into a section
// of it, and "loadgen compare-report" those of its comparison of two
// builds into another;
// "loadgen calibrate" measures how fast the machine is at the moment;
// "loadgen floor" serves publishes with net/http alone, for comparison.
//
// It is Linux only: it reads /proc and drives epoll directly.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: loadgen run|report|cluster-report|compare-report|calibrate|floor [flags] (-h for the flags)")
	}
	switch args[0] {
	case "run":
		return runCommand(ctx, args[1:], stdout)
	case "report":
		return reportCommand(args[1:])
	case "calibrate":
		return calibrateCommand(args[1:], stdout)
	case "floor":
		return floorCommand(ctx, args[1:])
	case "cluster-report":
		return clusterReportCommand(args[1:])
	case "compare-report":
		return compareReportCommand(args[1:])
	default:
		return fmt.Errorf("unknown command %q: want run, report, cluster-report, compare-report, calibrate or floor", args[0])
	}
}

func runCommand(ctx context.Context, args []string, stdout io.Writer) error {
	sc, out, err := parseRunFlags(args)
	if err != nil {
		return err
	}
	if sc.CPUProfile != "" {
		stop, err := startCPUProfile(sc.CPUProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	if _, err := raiseFileLimit(); err != nil {
		return err
	}
	res, err := runScenario(ctx, sc)
	if err != nil {
		return fmt.Errorf("%s: %w", sc.Name, err)
	}
	res.summary(stdout)
	if out == "" {
		return nil
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

func parseRunFlags(args []string) (scenario, string, error) {
	var sc scenario
	var out string
	fs := flag.NewFlagSet("loadgen run", flag.ContinueOnError)
	fs.StringVar(&sc.Scenario, "scenario", "", "scenario kind for the report: S1, S2, S2L, S3 or S4")
	fs.StringVar(&sc.Name, "name", "run", "label of this run")
	fs.StringVar(&sc.Store, "store", "memory:", "the server's store, as reported")
	fs.StringVar(&sc.Variant, "variant", "", "server flags of this run that differ from the other runs', as reported; such a run does not count towards the targets")
	fs.StringVar(&sc.Addr, "addr", "127.0.0.1:3000", "server address")
	fs.StringVar(&sc.PubAddr, "pub-addr", "", "address publishers post to, when not -addr: another instance on the same store")
	fs.IntVar(&sc.ServerPID, "server-pid", 0, "server process id, to read its CPU time and RSS (0: skip)")
	fs.IntVar(&sc.ServerCPU, "server-cpu", 0, "core the server is pinned to (-1: skip)")
	fs.IntVar(&sc.GenCPU, "gen-cpu", 1, "core this generator is pinned to (-1: skip)")
	fs.IntVar(&sc.Subs, "subs", 0, "SSE subscribers")
	fs.Int64Var(&sc.Facts, "facts", 0, "facts to publish")
	fs.Float64Var(&sc.Rate, "rate", 0, "facts per second overall (0: as fast as possible)")
	fs.IntVar(&sc.Pubs, "pubs", 1, "concurrent publishers")
	fs.DurationVar(&sc.Duration, "duration", 0, "publish for this long instead of a fact count")
	fs.StringVar(&sc.Reader, "reader", "epoll", "subscriber reader: epoll or goroutine")
	fs.IntVar(&sc.BufSize, "buf", 2048, "read buffer per connection of the goroutine reader")
	fs.IntVar(&sc.Inflight, "inflight", 3000, "connections at most waiting for their snapshot (keep it under the listen backlog, net.core.somaxconn)")
	fs.StringVar(&sc.SrcFirst, "src", "127.0.0.2", "first local address of subscribers")
	fs.IntVar(&sc.PerSrc, "per-src", 2000, "subscribers per local address")
	fs.DurationVar(&sc.Settle, "settle", 2e9, "pause after the last snapshot before reading the server's RSS")
	fs.DurationVar(&sc.Idle, "idle", 0, "read the server's RSS again this long after the last snapshot, once idle memory was given back (0: skip)")
	fs.DurationVar(&sc.Drain, "drain", 60e9, "longest wait for deliveries after the last publish")
	fs.DurationVar(&sc.Stall, "stall", 3e9, "stop waiting once no delivery came for this long")
	fs.StringVar(&out, "out", "", "write the result as JSON to this file")
	fs.StringVar(&sc.CPUProfile, "cpuprofile", "", "write this generator's CPU profile to this file")
	if err := fs.Parse(args); err != nil {
		return sc, "", err
	}
	switch {
	case sc.Reader != "epoll" && sc.Reader != "goroutine":
		return sc, "", fmt.Errorf("-reader %q: want epoll or goroutine", sc.Reader)
	case sc.Pubs < 1 || sc.Inflight < 1 || sc.PerSrc < 1 || sc.BufSize < 64:
		return sc, "", errors.New("-pubs, -inflight, -per-src must be positive and -buf at least 64")
	case sc.Facts < 0 || sc.Subs < 0 || sc.Rate < 0:
		return sc, "", errors.New("-facts, -subs and -rate must not be negative")
	}
	return sc, out, nil
}

// startCPUProfile profiles this generator, to show what it spends its core
// on; the returned function stops the profile.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
