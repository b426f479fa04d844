package tests

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"factstream/store"
)

// soakDuration is how long the chaos lasts: FACTSTREAM_SOAK (a Go
// duration) for long runs, a few seconds by default.
func soakDuration(tb testing.TB) time.Duration {
	v := os.Getenv("FACTSTREAM_SOAK")
	if v == "" {
		return 6 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		tb.Fatalf("FACTSTREAM_SOAK=%q: %v", v, err)
	}
	return d
}

// soakSeed seeds the chaos: which blow falls and when. It is
// FACTSTREAM_SOAK_SEED when set, to replay a run whose seed was logged
// (the blows repeat; the scheduling of the machine does not), the clock
// otherwise.
func soakSeed(tb testing.TB) uint64 {
	v := os.Getenv("FACTSTREAM_SOAK_SEED")
	if v == "" {
		return uint64(time.Now().UnixNano())
	}
	seed, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		tb.Fatalf("FACTSTREAM_SOAK_SEED=%q: %v", v, err)
	}
	return seed
}

// soakStats are the figures a soak run reports.
type soakStats struct {
	acked, retries, kills, cuts atomic.Int64
}

// soakPublish posts facts with an Idempotency-Key each, retrying every
// failure with the same key (on the next of bases, when there are several
// instances), until ctx ends. It returns what got a 201.
func soakPublish(ctx context.Context, bases []string, worker int, stats *soakStats) []store.Fact {
	client := &http.Client{Timeout: 3 * time.Second}
	var acked []store.Fact
	for i := 0; ctx.Err() == nil; i++ {
		key := fmt.Sprintf("p%d-%d", worker, i)
		body := fmt.Sprintf(`{"info":%q}`, key)
		for attempt := 0; ; attempt++ {
			if attempt > 0 {
				stats.retries.Add(1)
				time.Sleep(20 * time.Millisecond)
			}
			if attempt > 0 && ctx.Err() != nil {
				return acked // given up: the fact may or may not be stored
			}
			base := bases[(worker+attempt)%len(bases)]
			req, _ := http.NewRequest(http.MethodPost, base+"/fact", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", key)
			resp, err := client.Do(req)
			if err != nil {
				continue
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				continue // 409 in flight, 503 restarting: retry with the same key
			}
			var f store.Fact
			if err := f.UnmarshalJSON(data); err == nil {
				acked = append(acked, f)
				stats.acked.Add(1)
			}
			break
		}
	}
	return acked
}

// soakSubscriber follows the stream through every cut and restart,
// resuming by id, and keeps what it received.
type soakSubscriber struct {
	facts  []store.Fact
	last   atomic.Uint64
	failed atomic.Pointer[error] // a gap or a duplicate
}

// follow reads, reconnecting (to the next of bases) whenever the
// connection breaks, until ctx ends or it finds a gap or a duplicate.
func (s *soakSubscriber) follow(ctx context.Context, bases []string) {
	for i := 0; ctx.Err() == nil; i++ {
		if err := s.session(ctx, bases[i%len(bases)]); err != nil {
			s.failed.Store(&err)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// session reads one connection; a broken connection is not an error, a
// gap or duplicate is.
func (s *soakSubscriber) session(ctx context.Context, base string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events", nil)
	if last := s.last.Load(); last > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(last, 10))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	r := bufio.NewReader(resp.Body)
	for {
		ev, err := readEvent(r)
		if err != nil {
			return nil
		}
		if ev.Data == "" {
			continue
		}
		facts, err := decodeFacts(ev.Data)
		if err != nil {
			return err
		}
		for _, f := range facts {
			if last := s.last.Load(); f.Seq != last+1 {
				return fmt.Errorf("received seq %d after %d", f.Seq, last)
			}
			s.facts = append(s.facts, f)
			s.last.Store(f.Seq)
		}
	}
}

// TestChaosSoakBolt publishes with retries and idempotency keys and
// subscribes with resume while the server is killed with SIGKILL and
// restarted on its bolt file, and while a proxy cuts every connection, at
// random moments. Afterwards every acknowledged fact is stored exactly
// once, seqs are gapless, and every subscriber holds exactly the stored
// facts, in order.
func TestChaosSoakBolt(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	args := []string{"--store", "bolt:facts.db", "--log-level", "warn"}
	p := startProcess(t, dir, addr, args...)
	proxy := startProxy(t, addr)
	bases := []string{proxy.URL()}
	runSoak(t, "bolt", bases, bases, func() string { return p.URL }, func(rng *rand.Rand, stats *soakStats) {
		if rng.IntN(2) == 0 {
			stats.cuts.Add(int64(min(proxy.Cut(), 1)))
			return
		}
		p.cmd.Process.Kill()
		p.wait(t)
		stats.kills.Add(1)
		p = startProcess(t, dir, addr, args...)
	})
}

// TestChaosSoakRedis is the same under two instances sharing one Redis:
// publishers retry on the other instance, subscribers resume on either,
// and Redis (with appendfsync always) is killed and restarted while
// proxies cut connections.
func TestChaosSoakRedis(t *testing.T) {
	redis, nodes := startCluster(t, 2)
	var pubBases, subBases []string
	var proxies []*cutProxy
	for _, n := range nodes {
		pubBases = append(pubBases, n.URL)
		proxy := startProxy(t, n.Addr)
		proxies = append(proxies, proxy)
		subBases = append(subBases, proxy.URL())
	}
	runSoak(t, "redis", pubBases, subBases, func() string { return nodes[0].URL }, func(rng *rand.Rand, stats *soakStats) {
		if rng.IntN(2) == 0 {
			for _, p := range proxies {
				stats.cuts.Add(int64(min(p.Cut(), 1)))
			}
			return
		}
		redis.Kill()
		time.Sleep(time.Duration(100+rng.IntN(300)) * time.Millisecond)
		redis.Restart()
		stats.kills.Add(1)
	})
}

// runSoak publishes (to pubBases) and subscribes (through subBases) while
// chaos strikes at random moments for the soak duration, then checks the
// outcome against the store that readBase answers for.
func runSoak(t *testing.T, name string, pubBases, subBases []string, readBase func() string, chaos func(*rand.Rand, *soakStats)) {
	var stats soakStats
	duration := soakDuration(t)
	ctx, stopChaos := context.WithTimeout(context.Background(), duration)
	defer stopChaos()

	var wg sync.WaitGroup
	acked := make([][]store.Fact, 4)
	for w := range acked {
		wg.Go(func() { acked[w] = soakPublish(ctx, pubBases, w, &stats) })
	}
	subs := make([]*soakSubscriber, 4)
	subCtx, stopSubs := context.WithCancel(context.Background())
	defer stopSubs()
	var subWG sync.WaitGroup
	for i := range subs {
		subs[i] = &soakSubscriber{}
		rotated := append(append([]string(nil), subBases[i%len(subBases):]...), subBases[:i%len(subBases)]...)
		subWG.Go(func() { subs[i].follow(subCtx, rotated) })
	}

	seed := soakSeed(t)
	t.Logf("%s soak: chaos seed %d (FACTSTREAM_SOAK_SEED=%d replays it)", name, seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for ctx.Err() == nil {
		time.Sleep(time.Duration(200+rng.IntN(600)) * time.Millisecond)
		chaos(rng, &stats)
	}
	wg.Wait()

	// The last blow may have just landed: let the store come back first.
	eventually(t, 30*time.Second, "the store to be ready after the chaos", func() bool {
		resp, err := http.Get(readBase() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	stored, total := checkSoak(t, readBase(), acked, subs, stopSubs, &subWG)
	if total == 0 || stats.kills.Load()+stats.cuts.Load() == 0 {
		t.Fatalf("the soak proved nothing: %d acknowledged, %d kills, %d cuts", total, stats.kills.Load(), stats.cuts.Load())
	}
	t.Logf("%s soak %v: %d facts acknowledged, %d stored, %d retries, %d kills and restarts, %d rounds of connection cuts, %d subscribers each received all %d once, in order",
		name, duration, total, len(stored), stats.retries.Load(), stats.kills.Load(), stats.cuts.Load(), len(subs), len(stored))
}

// checkSoak waits for every subscriber to reach the head, stops them, and
// checks the promises: every acknowledged fact stored once with its seq,
// seqs gapless, every subscriber holding exactly the stored facts in order.
// It returns the stored facts and the number acknowledged.
func checkSoak(t *testing.T, base string, acked [][]store.Fact, subs []*soakSubscriber, stopSubs func(), subWG *sync.WaitGroup) ([]store.Fact, int) {
	t.Helper()
	stored := allFacts(t, base)
	checkGapless(t, stored)
	eventually(t, 30*time.Second, "every subscriber to reach the head", func() bool {
		for _, s := range subs {
			if s.failed.Load() != nil || s.last.Load() < uint64(len(stored)) {
				return s.failed.Load() != nil
			}
		}
		return true
	})
	stopSubs()
	subWG.Wait()

	byInfo := map[string]store.Fact{}
	for _, f := range stored {
		if _, dup := byInfo[f.Info]; dup {
			t.Fatalf("%q is stored twice: a retried request was not idempotent", f.Info)
		}
		byInfo[f.Info] = f
	}
	total := 0
	for _, list := range acked {
		for _, a := range list {
			total++
			if s, ok := byInfo[a.Info]; !ok || s.ID != a.ID || s.Seq != a.Seq {
				t.Fatalf("fact %q acknowledged as seq %d is stored as %+v", a.Info, a.Seq, s)
			}
		}
	}
	for i, s := range subs {
		if err := s.failed.Load(); err != nil {
			t.Fatalf("subscriber %d: %v", i, *err)
		}
		if len(s.facts) != len(stored) {
			t.Fatalf("subscriber %d received %d facts, %d are stored", i, len(s.facts), len(stored))
		}
		for j := range stored {
			if s.facts[j].ID != stored[j].ID {
				t.Fatalf("subscriber %d fact #%d is %s, stored %s", i, j, s.facts[j].ID, stored[j].ID)
			}
		}
	}
	return stored, total
}
