package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"factstream/app"
	"factstream/internal/redistest"
	"factstream/store"
)

// startCluster starts n instances in process on one fresh redis-server.
func startCluster(t *testing.T, n int) (*redistest.Server, []*server) {
	t.Helper()
	return startClusterWith(t, n, nil)
}

// startClusterWith is startCluster with each instance's configuration
// changed by tweak (when not nil).
func startClusterWith(t *testing.T, n int, tweak func(*app.Config)) (*redistest.Server, []*server) {
	t.Helper()
	redis := redistest.Start(t)
	nodes := make([]*server, n)
	for i := range nodes {
		cfg := testConfig(t)
		cfg.Store = redis.URL()
		cfg.Instance = fmt.Sprintf("node-%c", 'a'+i)
		cfg.PresenceInterval = 50 * time.Millisecond
		if tweak != nil {
			tweak(&cfg)
		}
		nodes[i] = startServer(t, cfg)
	}
	return redis, nodes
}

// publishRetrying posts one fact as a careful client does: with an
// Idempotency-Key, retrying on 503 (a loaded machine can make a Redis
// fsync outlast the store's timeouts). The key makes a retry of a publish
// that did commit return that fact instead of storing it twice.
func publishRetrying(t *testing.T, base, info string) store.Fact {
	t.Helper()
	f, err := tryPublishRetrying(base, info)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// tryPublishRetrying is publishRetrying for goroutines other than the
// test's: it returns what went wrong.
func tryPublishRetrying(base, info string) (store.Fact, error) {
	body, err := json.Marshal(map[string]string{"info": info})
	if err != nil {
		return store.Fact{}, err
	}
	key := "retry-" + info
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, err := http.NewRequest(http.MethodPost, base+"/fact", bytes.NewReader(body))
		if err != nil {
			return store.Fact{}, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return store.Fact{}, fmt.Errorf("POST %s/fact: %w", base, err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusCreated:
			var f store.Fact
			if err := json.Unmarshal(data, &f); err != nil {
				return store.Fact{}, fmt.Errorf("decode %s: %w", data, err)
			}
			return f, nil
		case resp.StatusCode == http.StatusServiceUnavailable && time.Now().Before(deadline):
			time.Sleep(50 * time.Millisecond) // Retry-After, shortened
		default:
			return store.Fact{}, fmt.Errorf("POST %s/fact = %d %s", base, resp.StatusCode, data)
		}
	}
}

type statusDoc struct {
	Clients        int    `json:"clients"`
	ClusterClients *int   `json:"cluster_clients"`
	LastSeq        uint64 `json:"last_seq"`
	Instance       string `json:"instance"`
	Store          string `json:"store"`
}

func status(t *testing.T, base string) statusDoc {
	t.Helper()
	var st statusDoc
	if code := getJSON(t, base+"/status", &st); code != http.StatusOK {
		t.Fatalf("GET %s/status = %d", base, code)
	}
	return st
}

// TestClusterDeliversEveryFactEverywhereInOrder has 8 publishers post to
// three instances on one Redis while subscribers connect and disconnect,
// each time to a random instance and resuming half the time with the id
// they got from another one. Every connection must see a contiguous run of
// seqs, every subscriber must reach the head, and every instance must hold
// the same facts.
func TestClusterDeliversEveryFactEverywhereInOrder(t *testing.T) {
	_, nodes := startCluster(t, 3)
	const publishers, perPublisher, subscribers = 8, 40, 12
	const head = publishers * perPublisher
	var publishing atomic.Bool
	publishing.Store(true)
	var pubWG, subWG sync.WaitGroup
	for p := range publishers {
		pubWG.Go(func() {
			for i := range perPublisher {
				if _, err := tryPublishRetrying(nodes[(p+i)%len(nodes)].URL, fmt.Sprintf("p%d-%d", p, i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	bases := make([]string, len(nodes))
	for i, node := range nodes {
		bases[i] = node.URL
	}
	for n := range subscribers {
		subWG.Go(func() { churnSubscriber(t, n, bases, head, &publishing) })
	}
	pubWG.Wait()
	publishing.Store(false)
	subWG.Wait()

	want := allFacts(t, nodes[0].URL)
	checkGapless(t, want)
	if len(want) != head {
		t.Fatalf("store holds %d facts, want %d", len(want), head)
	}
	for _, node := range nodes[1:] {
		got := allFacts(t, node.URL)
		if len(got) != len(want) {
			t.Fatalf("%s lists %d facts, %s %d", node.URL, len(got), nodes[0].URL, len(want))
		}
		for i := range want {
			if got[i].ID != want[i].ID {
				t.Fatalf("fact #%d differs between instances: %s vs %s", i, got[i].ID, want[i].ID)
			}
		}
	}
}

// TestClusterResumeOnAnotherInstance takes the id a subscriber got from
// instance A and resumes with it on instance B.
func TestClusterResumeOnAnotherInstance(t *testing.T) {
	_, nodes := startCluster(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	for i := range 3 {
		postFact(t, a.URL, fmt.Sprintf("before %d", i))
	}
	onA := openStream(t, a.URL+"/events", nil)
	snap, err := nextData(onA)
	if err != nil || snap.ID != "3" || len(factsOf(t, snap)) != 3 {
		t.Fatalf("snapshot on A = %+v, %v; want 3 facts with id 3", snap, err)
	}
	onA.Close()

	var missed []store.Fact
	for i := range 4 {
		missed = append(missed, postFact(t, c.URL, fmt.Sprintf("missed %d", i)))
	}
	onB := openStream(t, b.URL+"/events", http.Header{"Last-Event-ID": {snap.ID}})
	ev, err := nextData(onB)
	if err != nil {
		t.Fatalf("resume on B: %v", err)
	}
	got := factsOf(t, ev)
	if len(got) != len(missed) || ev.ID != "7" {
		t.Fatalf("resume on B sent %d facts with id %s, want the %d missed ones with id 7", len(got), ev.ID, len(missed))
	}
	for i := range missed {
		if got[i].ID != missed[i].ID || got[i].Seq != missed[i].Seq {
			t.Fatalf("resumed fact #%d = seq %d, want seq %d", i, got[i].Seq, missed[i].Seq)
		}
	}
	live := postFact(t, a.URL, "live")
	ev, err = nextData(onB)
	if err != nil || ev.ID != strconv.FormatUint(live.Seq, 10) || factsOf(t, ev)[0].ID != live.ID {
		t.Fatalf("live event on B = %+v, %v; want the fact posted on A", ev, err)
	}
}

// nextData returns the next event with data, skipping the retry line.
func nextData(s *sseStream) (sseEvent, error) {
	for {
		ev, err := s.Next(15 * time.Second)
		if err != nil || ev.Data != "" {
			return ev, err
		}
	}
}

func TestClusterStatusCountsEveryInstancesClients(t *testing.T) {
	_, nodes := startCluster(t, 3)
	for i, node := range nodes {
		for range i + 1 { // 1, 2 and 3 streams
			openStream(t, node.URL+"/events", nil)
		}
	}
	for i, node := range nodes {
		eventually(t, 15*time.Second, "cluster_clients 6 on "+node.URL, func() bool {
			st := status(t, node.URL)
			return st.ClusterClients != nil && *st.ClusterClients == 6 && st.Clients == i+1
		})
		if st := status(t, node.URL); st.Store != "redis" || st.Instance != fmt.Sprintf("node-%c", 'a'+i) {
			t.Fatalf("status = %+v, want store redis on node-%c", st, 'a'+i)
		}
	}
	// A stopped instance withdraws its streams from the count.
	nodes[2].Stop(t)
	eventually(t, 15*time.Second, "cluster_clients 3 after node-c stopped", func() bool {
		st := status(t, nodes[0].URL)
		return st.ClusterClients != nil && *st.ClusterClients == 3
	})
}

// outageLog records what publishers saw during TestClusterRidesOutARedisOutage.
type outageLog struct {
	mu       sync.Mutex
	created  []store.Fact // every fact that got a 201
	failures int          // 503s
}

func (l *outageLog) add(f *store.Fact) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f != nil {
		l.created = append(l.created, *f)
	} else {
		l.failures++
	}
}

func (l *outageLog) counts() (created, failures int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.created), l.failures
}

// failFast bounds how long a publish may take to fail while Redis is away.
// The store gives up on Redis after about 2 s; the rest is headroom for a
// loaded 2-core machine, still far below a client's own timeout, which is
// what failing fast is about.
const failFast = 6 * time.Second

// publishUntil posts to node until stop is closed. Every answer must be a
// 201 or, within failFast, a 503.
func publishUntil(t *testing.T, node *server, name string, stop <-chan struct{}, log *outageLog) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		begin := time.Now()
		var f store.Fact
		code, body, err := tryPostJSON(node.URL+"/fact", map[string]string{"info": fmt.Sprintf("%s-%d", name, i)}, &f)
		took := time.Since(begin)
		if err != nil {
			t.Errorf("POST during outage: %v", err)
			return
		}
		switch code {
		case http.StatusCreated:
			log.add(&f)
		case http.StatusServiceUnavailable:
			if took >= failFast {
				t.Errorf("503 after %v, want within %v", took, failFast)
			}
			log.add(nil)
			time.Sleep(20 * time.Millisecond) // as a client would back off
		default:
			t.Errorf("POST during outage = %d %s, want 201 or 503", code, body)
			return
		}
	}
}

// follower reads one stream as it comes (a subscriber that keeps up) and
// records the seqs it delivered, failing the test on a gap or a duplicate.
type follower struct {
	mu          sync.Mutex
	first, last uint64
	err         error // why reading stopped early
	done        chan struct{}
}

func follow(t *testing.T, s *sseStream) *follower {
	f := &follower{done: make(chan struct{})}
	go func() {
		defer close(f.done)
		for {
			ev, err := s.Next(time.Minute)
			if err != nil {
				f.mu.Lock()
				f.err = err
				f.mu.Unlock()
				return
			}
			if ev.Data == "" {
				continue // the retry line
			}
			facts, err := decodeFacts(ev.Data)
			if err != nil {
				t.Error(err)
				return
			}
			for _, fact := range facts {
				f.mu.Lock()
				if f.first == 0 {
					f.first = fact.Seq
				} else if fact.Seq != f.last+1 {
					t.Errorf("stream delivered seq %d after %d: gap or duplicate", fact.Seq, f.last)
				}
				f.last = fact.Seq
				f.mu.Unlock()
			}
		}
	}()
	// Closing the stream ends Next, then the reader.
	t.Cleanup(func() { s.Close(); <-f.done })
	return f
}

func (f *follower) state() (first, last uint64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.first, f.last, f.err
}

// TestClusterRidesOutARedisOutage kills Redis while three instances take
// publishes and serve streams, then starts it again. Publishes must fail
// fast with 503 meanwhile, every fact that got a 201 must be stored and
// streamed, streams must stay open, and publishing and live delivery must
// resume without restarting any instance.
func TestClusterRidesOutARedisOutage(t *testing.T) {
	redis, nodes := startCluster(t, 3)
	followers := make([]*follower, len(nodes))
	for i, node := range nodes {
		followers[i] = follow(t, openStream(t, node.URL+"/events", nil))
	}
	log := &outageLog{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Go(func() { publishUntil(t, nodes[p%len(nodes)], fmt.Sprintf("p%d", p), stop, log) })
	}
	defer func() { close(stop); wg.Wait() }() // on an early failure

	eventually(t, 20*time.Second, "20 facts before the outage", func() bool { n, _ := log.counts(); return n >= 20 })
	redis.Kill()
	_, before := log.counts()
	eventually(t, 20*time.Second, "publishes failing with 503", func() bool { _, f := log.counts(); return f >= before+40 })
	for _, node := range nodes {
		if code := getJSON(t, node.URL+"/readyz", &map[string]any{}); code != http.StatusServiceUnavailable {
			t.Errorf("%s/readyz = %d with Redis down, want 503", node.URL, code)
		}
	}

	redis.Restart()
	// The Redis client probes a server that refused connections about once
	// a second, so an instance may take that long to notice it is back.
	for _, node := range nodes {
		eventually(t, 20*time.Second, node.URL+"/readyz to answer 200 again", func() bool {
			return getJSON(t, node.URL+"/readyz", &map[string]any{}) == http.StatusOK
		})
	}
	created, _ := log.counts()
	eventually(t, 20*time.Second, "publishing to resume", func() bool { n, _ := log.counts(); return n >= created+20 })
	close(stop)
	wg.Wait()
	stop = make(chan struct{}) // for the deferred close
	all := allFacts(t, nodes[0].URL)
	checkGapless(t, all)
	stored := map[string]bool{}
	for _, f := range all {
		stored[f.ID] = true
	}
	for _, f := range log.created {
		if !stored[f.ID] {
			t.Fatalf("fact %d (%s) got a 201 but is not stored", f.Seq, f.ID)
		}
	}
	head := all[len(all)-1].Seq
	for i, f := range followers {
		eventually(t, 20*time.Second, fmt.Sprintf("the stream on node %d to reach seq %d", i, head), func() bool {
			_, last, err := f.state()
			if err != nil {
				t.Fatalf("stream on node %d ended at seq %d: %v", i, last, err)
			}
			return last == head
		})
		if first, _, _ := f.state(); first != 1 {
			t.Fatalf("stream on node %d started at seq %d, want 1", i, first)
		}
	}
}

// TestInstanceStartsBeforeRedis starts an instance while Redis is down, as
// containers started together may: it answers as during an outage, then
// serves everything once Redis is up, without a restart.
func TestInstanceStartsBeforeRedis(t *testing.T) {
	redis := redistest.Start(t)
	redis.Kill()
	cfg := testConfig(t)
	cfg.Store = redis.URL()
	node := startServer(t, cfg)

	if code := getJSON(t, node.URL+"/readyz", &map[string]any{}); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with Redis not yet up = %d, want 503", code)
	}
	if code, body := postJSON(t, node.URL+"/fact", map[string]string{"info": "too early"}, nil); code != http.StatusServiceUnavailable {
		t.Errorf("POST /fact with Redis not yet up = %d %s, want 503", code, body)
	}
	resp, err := http.Get(node.URL + "/events")
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /events with Redis not yet up = %d, want 503", resp.StatusCode)
	}

	redis.Restart()
	eventually(t, 20*time.Second, "/readyz to answer 200", func() bool {
		return getJSON(t, node.URL+"/readyz", &map[string]any{}) == http.StatusOK
	})
	stream := openStream(t, node.URL+"/events", nil)
	if snap, err := nextData(stream); err != nil || snap.Data != "[]" {
		t.Fatalf("snapshot = %+v, %v; want an empty one: nothing was stored while Redis was down", snap, err)
	}
	f := publishRetrying(t, node.URL, "on time")
	ev, err := nextData(stream)
	if err != nil || ev.ID != strconv.FormatUint(f.Seq, 10) || factsOf(t, ev)[0].ID != f.ID {
		t.Fatalf("live event = %+v, %v; want the fact just published (seq %d)", ev, err, f.Seq)
	}
	if f.Seq != 1 {
		t.Fatalf("first fact has seq %d, want 1", f.Seq)
	}
}

// TestClusterStartsOverWhenRedisLosesItsData restarts Redis without its
// data. Seqs go on above the old head, and every stream must end, and end
// by emptying its client's last event id: an EventSource then reconnects
// without Last-Event-ID and gets a snapshot of the facts there are now.
func TestClusterStartsOverWhenRedisLosesItsData(t *testing.T) {
	redis, nodes := startCluster(t, 2)
	for i := range 3 {
		postFact(t, nodes[0].URL, fmt.Sprintf("old %d", i))
	}
	streams := make([]*sseStream, len(nodes))
	for i, node := range nodes {
		streams[i] = openStream(t, node.URL+"/events", nil)
		if snap, err := nextData(streams[i]); err != nil || snap.ID != "3" {
			t.Fatalf("snapshot on node %d = %+v, %v; want 3 facts", i, snap, err)
		}
	}

	redis.RestartEmpty()
	var fresh []store.Fact
	for i := range 4 { // seqs 4 to 7: the old head was 3
		f := publishRetrying(t, nodes[1].URL, fmt.Sprintf("new %d", i))
		if want := uint64(4 + i); f.Seq != want {
			t.Fatalf("fact #%d after the loss has seq %d, want %d", i, f.Seq, want)
		}
		fresh = append(fresh, f)
	}
	for i, s := range streams {
		var last sseEvent
		timeout := time.After(15 * time.Second)
	read:
		for {
			select {
			case ev, ok := <-s.events:
				if !ok {
					break read
				}
				if ev.Data != "" {
					t.Fatalf("stream on node %d got %q after Redis lost its data, want it to end", i, ev.Data)
				}
				if len(ev.Comments) == 0 { // not a keepalive
					last = ev
				}
			case <-timeout:
				t.Fatalf("stream on node %d still open 15 s after Redis lost its data", i)
			}
		}
		if !last.HasID || last.ID != "" {
			t.Fatalf("stream on node %d ended without emptying the last event id (last frame %+v)", i, last)
		}
	}

	// What an EventSource does next: reconnect without Last-Event-ID.
	again := openStream(t, nodes[0].URL+"/events", nil)
	snap, err := nextData(again)
	if err != nil {
		t.Fatalf("snapshot after the loss: %v", err)
	}
	got := factsOf(t, snap)
	if len(got) != len(fresh) {
		t.Fatalf("snapshot after the loss has %d facts, want the %d stored since", len(got), len(fresh))
	}
	for i := range fresh {
		if got[i].ID != fresh[i].ID || got[i].Seq != fresh[i].Seq {
			t.Fatalf("snapshot fact #%d = %s (seq %d), want %s (seq %d)", i, got[i].ID, got[i].Seq, fresh[i].ID, fresh[i].Seq)
		}
	}
	live := postFact(t, nodes[1].URL, "live")
	if ev, err := nextData(again); err != nil || factsOf(t, ev)[0].ID != live.ID {
		t.Fatalf("live event after the loss = %+v, %v; want the fact just posted", ev, err)
	}
}

// TestClusterDeleteReachesStreamsOnEveryInstance deletes a fact through
// one instance; a stream open on the other gets deleted, in order with
// the facts, from the store they share.
func TestClusterDeleteReachesStreamsOnEveryInstance(t *testing.T) {
	_, nodes := startClusterWith(t, 2, func(cfg *app.Config) { cfg.AdminTokens = []string{adminToken} })
	a, b := nodes[0], nodes[1]
	onB := openStream(t, b.URL+"/events", nil)
	if ev, err := nextData(onB); err != nil || ev.Data != "[]" {
		t.Fatalf("snapshot on B = %+v, %v; want an empty one", ev, err)
	}
	next := func() (sseEvent, error) { return nextData(onB) }
	// B shows the fact before it is deleted: a fact deleted before B's
	// tail read it would never reach B's streams at all.
	doomed := postFact(t, a.URL, "doomed")
	if ev, err := next(); err != nil || ev.ID != strconv.FormatUint(doomed.Seq, 10) {
		t.Fatalf("on B: %+v, %v; want fact %d", ev, err, doomed.Seq)
	}
	if code, typ := deleteFact(t, a.URL, doomed.ID, "Bearer "+adminToken); code != http.StatusNoContent {
		t.Fatalf("DELETE on A = %d %s", code, typ)
	}
	after := postFact(t, a.URL, "after")
	var d deletedData
	nextNamed(t, next, "deleted", &d)
	if d.ID != doomed.ID || d.Seq != doomed.Seq {
		t.Fatalf("deleted on B = %+v, want id %s seq %d", d, doomed.ID, doomed.Seq)
	}
	if ev, err := next(); err != nil || ev.Event != "" || ev.ID != strconv.FormatUint(after.Seq, 10) {
		t.Fatalf("on B after the deletion: %+v, %v; want fact %d", ev, err, after.Seq)
	}
}
