//go:build linux

package takeover

import (
	"fmt"
	"os"
	"runtime"
	"time"
)

// netTurnEvery is how long the writer may write before it lets goroutines
// waiting on the network (publishes, new subscribers, health checks) run.
const netTurnEvery = time.Millisecond

// netTurn lets the goroutines that the network has woken run in the middle
// of a long round of writes.
//
// runtime.Gosched is not enough for that: Go's scheduler asks the network
// poller for ready goroutines only when it has nothing else to run, or
// from its monitor thread every 10 ms. With one P (a server given one
// core) a round over thousands of streams then kept every request waiting
// for up to 10 ms, and a fact published meanwhile reached its subscribers
// a round late. take parks the writer instead, with the poller as the one
// who wakes it: the scheduler, having nothing to run, polls the network
// and starts everything that is ready, the writer's wake-up included.
type netTurn struct {
	r, w *os.File // a pipe in the poller; w belongs to the writer
	back chan struct{}
	last time.Time
}

func newNetTurn() (*netTurn, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("network turn pipe: %w", err)
	}
	return &netTurn{r: r, w: w, back: make(chan struct{}, 1), last: time.Now()}, nil
}

// relay passes each byte written to the pipe on to take. It ends when the
// writer closes its end, and closes the read end. It closes back too, so
// that take can never wait for a relay that has ended.
func (t *netTurn) relay(done func()) {
	defer done()
	defer t.r.Close()
	defer close(t.back)
	b := make([]byte, 16)
	for {
		if _, err := t.r.Read(b); err != nil {
			return
		}
		t.back <- struct{}{}
	}
}

// due reports whether the writer has run for netTurnEvery since its last
// turn.
func (t *netTurn) due(now time.Time) bool {
	return now.Sub(t.last) >= netTurnEvery
}

// take gives the network its turn and returns once the writer's own
// wake-up, which went through the poller, has come back.
func (t *netTurn) take(now time.Time) {
	t.last = now
	if _, err := t.w.Write([]byte{1}); err != nil {
		runtime.Gosched()
		return
	}
	<-t.back
}

// close ends the relay.
func (t *netTurn) close() { t.w.Close() }
