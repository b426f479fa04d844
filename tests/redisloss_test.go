package tests

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"factstream/store"
)

// postFacts posts n facts in one POST /facts and returns them as stored.
func postFacts(t *testing.T, base string, n int, prefix string) []store.Fact {
	t.Helper()
	drafts := make([]map[string]string, n)
	for i := range drafts {
		drafts[i] = map[string]string{"info": fmt.Sprintf("%s %d", prefix, i)}
	}
	var out []store.Fact
	if code, body := postJSON(t, base+"/facts", drafts, &out); code != http.StatusCreated || len(out) != n {
		t.Fatalf("POST %s/facts of %d facts = %d %s", base, n, code, body)
	}
	return out
}

// readUpTo reads the facts of s's events until one with id head, and
// fails on a named event or an event past head.
func readUpTo(t *testing.T, s *sseStream, head uint64) []store.Fact {
	t.Helper()
	var got []store.Fact
	for {
		ev, err := nextData(s)
		if err != nil {
			t.Fatalf("after %d facts (last %v): %v", len(got), lastSeqOf(got), err)
		}
		if ev.Event != "" {
			t.Fatalf("event %q (%s) among the facts", ev.Event, ev.Data)
		}
		got = append(got, factsOf(t, ev)...)
		id, err := strconv.ParseUint(ev.ID, 10, 64)
		if err != nil || id > head {
			t.Fatalf("event id %q after %d facts, want ids up to %d", ev.ID, len(got), head)
		}
		if id == head {
			return got
		}
	}
}

func lastSeqOf(facts []store.Fact) any {
	if len(facts) == 0 {
		return "none"
	}
	return facts[len(facts)-1].Seq
}

// sameSeqsAndIDs fails unless got holds the facts of want, in order.
func sameSeqsAndIDs(t *testing.T, what string, got, want []store.Fact) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d facts (seqs %v to %v), want %d (seqs %d to %d)", what,
			len(got), firstSeqOf(got), lastSeqOf(got), len(want), want[0].Seq, want[len(want)-1].Seq)
	}
	for i := range want {
		if got[i].Seq != want[i].Seq || got[i].ID != want[i].ID {
			t.Fatalf("%s: fact #%d is %s (seq %d), want %s (seq %d)", what, i, got[i].ID, got[i].Seq, want[i].ID, want[i].Seq)
		}
	}
}

func firstSeqOf(facts []store.Fact) any {
	if len(facts) == 0 {
		return "none"
	}
	return facts[0].Seq
}

// TestClusterSeqsGoOnWhenRedisLosesItsData has two instances on one Redis
// reach head 1557, then Redis loses its data (FLUSHALL) and 2,000 facts
// are published through both. Seqs never go backwards: the new facts get
// 1558 to 3557, gapless and in commit order; /status never reports a
// last_seq below 1557; a client resuming with Last-Event-ID 1557 gets the
// 2,000 new facts, none missing and none taken for an old one; a client
// resuming from 1000 first learns that the facts after its id are gone
// (truncated, first_seq 1558), then gets the same 2,000.
func TestClusterSeqsGoOnWhenRedisLosesItsData(t *testing.T) {
	const oldHead, fresh = 1557, 2000
	redis, nodes := startCluster(t, 2)
	postFacts(t, nodes[0].URL, 1000, "old a")
	postFacts(t, nodes[1].URL, oldHead-1001, "old b")
	// A live stream on each instance shows, with the last old fact, that
	// its tail reached the head; it ends when the instance notices the
	// loss.
	streams := make([]*sseStream, len(nodes))
	for i, node := range nodes {
		streams[i] = openStream(t, node.URL+"/events", nil)
		readUpTo(t, streams[i], oldHead-1) // the snapshot
	}
	last := postFact(t, nodes[0].URL, "old last")
	for i, s := range streams {
		if got := readUpTo(t, s, oldHead); len(got) != 1 || got[0].ID != last.ID {
			t.Fatalf("node %d streamed %v, want the fact of seq %d", i, got, oldHead)
		}
	}

	rdb := goredis.NewClient(&goredis.Options{Addr: redis.Addr()})
	defer rdb.Close()
	if err := rdb.FlushAll(t.Context()).Err(); err != nil {
		t.Fatalf("FLUSHALL: %v", err)
	}
	for i, node := range nodes {
		if st := keptStatus(t, node.URL); st.LastSeq != oldHead || st.Facts != 0 {
			t.Fatalf("status of node %d right after the loss = %+v, want no fact and last_seq %d", i, st, oldHead)
		}
	}

	// In batches through both instances, each in commit order after the
	// one before.
	var published []store.Fact
	for b := range 8 {
		batch := postFacts(t, nodes[b%2].URL, fresh/8, fmt.Sprintf("new %d", b))
		for i, f := range batch {
			if want := uint64(oldHead + len(published) + i + 1); f.Seq != want {
				t.Fatalf("batch %d on node %d: fact #%d has seq %d, want %d", b, b%2, i, f.Seq, want)
			}
		}
		published = append(published, batch...)
	}
	const head = oldHead + fresh
	// Each instance has noticed the loss and ended its streams (which
	// TestClusterStartsOverWhenRedisLosesItsData looks at closely), so
	// none of the streams below is ended by it.
	for i, s := range streams {
		timeout := time.After(15 * time.Second)
	drain:
		for {
			select {
			case _, ok := <-s.events:
				if !ok {
					break drain
				}
			case <-timeout:
				t.Fatalf("stream on node %d still open 15 s after Redis lost its data", i)
			}
		}
	}
	for i, node := range nodes {
		if st := keptStatus(t, node.URL); st.LastSeq != head || st.FirstSeq != oldHead+1 || st.Facts != fresh {
			t.Fatalf("status of node %d = %+v, want %d facts from seq %d to %d", i, st, fresh, oldHead+1, head)
		}
	}
	sameSeqsAndIDs(t, "GET /facts", allFacts(t, nodes[0].URL), published)

	resumed := openStream(t, nodes[0].URL+"/events", http.Header{"Last-Event-ID": {strconv.Itoa(oldHead)}})
	sameSeqsAndIDs(t, "resume from the old head", readUpTo(t, resumed, head), published)

	older := openStream(t, nodes[1].URL+"/events", http.Header{"Last-Event-ID": {"1000"}})
	next := func() (sseEvent, error) { return nextData(older) }
	var tr struct {
		LastEventID *uint64 `json:"last_event_id"`
		FirstSeq    uint64  `json:"first_seq"`
	}
	nextNamed(t, next, "truncated", &tr)
	if tr.LastEventID == nil || *tr.LastEventID != 1000 || tr.FirstSeq != oldHead+1 {
		t.Fatalf("truncated %+v, want last_event_id 1000 and first_seq %d", tr, oldHead+1)
	}
	sameSeqsAndIDs(t, "resume from before the old head", readUpTo(t, older, head), published)

	// Live facts follow on both resumed streams.
	live := postFact(t, nodes[1].URL, "live")
	for _, s := range []*sseStream{resumed, older} {
		if ev, err := nextData(s); err != nil || ev.ID != strconv.Itoa(head+1) || factsOf(t, ev)[0].ID != live.ID {
			t.Fatalf("live event = %+v, %v; want fact %d", ev, err, head+1)
		}
	}
}
