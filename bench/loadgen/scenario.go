//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"
)

// scenario is one run's parameters, from the command line.
type scenario struct {
	Scenario   string  // S1, S2, S2L, S3 or S4: how the report presents it
	Name       string  // unique label of the run
	Store      string  // the server's store, for the report
	Variant    string  // server flags that differ from the other runs', for the report
	Addr       string  // server address, host:port
	PubAddr    string  // where publishers post, when not Addr (another instance)
	ServerPID  int     // for CPU and RSS; 0 to skip
	ServerCPU  int     // core the server is pinned to; -1 to skip
	GenCPU     int     // core this generator is pinned to; -1 to skip
	Subs       int     // subscribers
	Facts      int64   // facts to publish (0 with Duration)
	Rate       float64 // facts per second overall; 0 for as fast as possible
	Pubs       int     // concurrent publishers
	Duration   time.Duration
	Reader     string        // epoll or goroutine
	BufSize    int           // read buffer per goroutine reader
	Inflight   int           // connections at most waiting for their snapshot
	SrcFirst   string        // first local address of subscribers
	PerSrc     int           // subscribers per local address
	Settle     time.Duration // pause after the last snapshot before reading RSS
	Idle       time.Duration // when to read RSS again, from the last snapshot
	Drain      time.Duration // longest wait for deliveries after publishing
	Stall      time.Duration // give up waiting when no delivery came for this long
	CPUProfile string        // where to write this generator's CPU profile
}

// runScenario connects the subscribers, publishes, waits for every
// delivery and measures each phase.
func runScenario(ctx context.Context, sc scenario) (*Result, error) {
	if sc.Subs > 0 && sc.Facts == 0 && sc.Duration > 0 {
		return nil, errors.New("subscribers need a fact count (-facts) to check deliveries")
	}
	addr, err := resolve(sc.Addr)
	if err != nil {
		return nil, err
	}
	if sc.PubAddr == "" {
		sc.PubAddr = sc.Addr
	}
	for _, a := range []string{sc.Addr, sc.PubAddr} {
		if err := waitHealthy(ctx, a, 10*time.Second); err != nil {
			return nil, err
		}
	}
	res := newResult(sc)
	fl := &fleet{run: rand.Int64N(1_000_000) + 1, facts: sc.Facts}
	subs, rd, err := subscribePhase(ctx, sc, addr, fl, res)
	if err != nil {
		return nil, err
	}
	if rd != nil {
		defer rd.Close()
	}
	if sc.Facts > 0 || sc.Duration > 0 {
		if err := publishPhase(ctx, sc, fl, res); err != nil {
			return nil, err
		}
	}
	if rd != nil {
		rd.Close() // the subscribers' state is ours from here on
		res.checkDeliveries(subs, fl)
	}
	return res, nil
}

// subscribePhase connects every subscriber, waits for all snapshots and
// measures the server's memory before and after.
func subscribePhase(ctx context.Context, sc scenario, addr netip.AddrPort, fl *fleet, res *Result) ([]*subscriber, readerSet, error) {
	if sc.Subs == 0 {
		return nil, nil, nil
	}
	first, err := netip.ParseAddr(sc.SrcFirst)
	if err != nil || !first.Is4() {
		return nil, nil, fmt.Errorf("bad source address %q", sc.SrcFirst)
	}
	subs := make([]*subscriber, sc.Subs)
	for i, src := range sourceAddrs(first, sc.PerSrc, sc.Subs) {
		subs[i] = newSubscriber(fl, src)
	}
	rssBefore, err := serverRSS(sc.ServerPID)
	if err != nil {
		return nil, nil, err
	}
	u0, err := sampleUsage(sc.ServerPID, sc.ServerCPU, sc.GenCPU)
	if err != nil {
		return nil, nil, err
	}
	o := dialOptions{addr: addr, inflight: sc.Inflight, bufSize: sc.BufSize}
	var rd readerSet
	if sc.Reader == "goroutine" {
		rd = startGoroutineReaders(ctx, o, subs)
	} else if rd, err = startEpollReaders(o, subs); err != nil {
		return nil, nil, err
	}
	waitSnapshots(ctx, fl, sc.Subs, 120*time.Second)
	u1, err := sampleUsage(sc.ServerPID, sc.ServerCPU, sc.GenCPU)
	if err != nil {
		rd.Close()
		return nil, nil, err
	}
	res.Connect = u0.since(u1)
	res.Ready = fl.snapshots.Load()
	res.ConnectFailed = fl.failed.Load()
	res.ConnectSeconds = u1.at.Sub(u0.at).Seconds()
	rss, err := rssSamples(sc.ServerPID, u1.at, sc.Settle, sc.Idle)
	if err != nil {
		rd.Close()
		return nil, nil, err
	}
	res.setRSS(rssBefore, rss)
	return subs, rd, nil
}

// publishPhase publishes and waits until every subscriber holding a
// stream received every acknowledged fact, or deliveries stall.
func publishPhase(ctx context.Context, sc scenario, fl *fleet, res *Result) error {
	u0, err := sampleUsage(sc.ServerPID, sc.ServerCPU, sc.GenCPU)
	if err != nil {
		return err
	}
	pr := publish(ctx, publishPlan{addr: sc.PubAddr, run: fl.run, publishers: sc.Pubs, facts: sc.Facts, rate: sc.Rate, duration: sc.Duration})
	if sc.Subs > 0 {
		waitDeliveries(ctx, fl, pr.count.Load(), sc.Drain, sc.Stall)
	}
	u1, err := sampleUsage(sc.ServerPID, sc.ServerCPU, sc.GenCPU)
	if err != nil {
		return err
	}
	res.Deliver = u0.since(u1)
	res.setPublish(pr)
	if res.StoreCommits, res.StoreAppends, err = storeCommits(ctx, sc.PubAddr); err != nil {
		return err
	}
	res.setDeliveries(fl, pr)
	res.acked = pr.ackedBits()
	return nil
}

// waitSnapshots waits until every subscriber has its snapshot or failed.
func waitSnapshots(ctx context.Context, fl *fleet, n int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if fl.snapshots.Load()+fl.failed.Load() >= int64(n) {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitDeliveries waits until each live stream received acked facts, or no
// delivery came for stall, or limit passed.
func waitDeliveries(ctx context.Context, fl *fleet, acked int64, limit, stall time.Duration) {
	deadline := time.Now().Add(limit)
	last, lastChange := int64(-1), time.Now()
	for ctx.Err() == nil && time.Now().Before(deadline) {
		got := fl.deliveries.Load()
		live := fl.snapshots.Load() - fl.ended.Load()
		if got >= live*acked {
			return
		}
		if got != last {
			last, lastChange = got, time.Now()
		} else if time.Since(lastChange) > stall {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// waitHealthy polls GET /healthz until the server answers 200.
func waitHealthy(ctx context.Context, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		p := &poster{addr: addr}
		status, err := p.get("/healthz")
		p.close()
		if err == nil && status == 200 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("server at %s not healthy after %s: status %d, %v", addr, limit, status, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func resolve(hostport string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(hostport)
	if err == nil && ap.Addr().Is4() {
		return ap, nil
	}
	tcp, rerr := net.ResolveTCPAddr("tcp4", hostport)
	if rerr != nil {
		return netip.AddrPort{}, fmt.Errorf("resolve %q: %w", hostport, rerr)
	}
	ap = tcp.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

func serverRSS(pid int) (int64, error) {
	if pid <= 0 {
		return 0, nil
	}
	return processRSS(pid)
}

// rssSamples reads the server's RSS settle after from, and again idle
// after from when idle is later: the runtime gives memory that connection
// set-up used only briefly back to the system over some seconds.
func rssSamples(pid int, from time.Time, settle, idle time.Duration) ([]int64, error) {
	var out []int64
	for _, d := range []time.Duration{settle, idle} {
		if d <= 0 || (len(out) > 0 && d <= settle) {
			continue
		}
		time.Sleep(time.Until(from.Add(d)))
		rss, err := serverRSS(pid)
		if err != nil {
			return nil, err
		}
		out = append(out, rss)
	}
	return out, nil
}
