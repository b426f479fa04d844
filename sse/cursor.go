package sse

import "strconv"

// Step is what a stream does with the next event the hub gives it.
type Step uint8

const (
	// Skip: the stream sent that fact already (in its snapshot, or in a
	// catch-up from the store).
	Skip Step = iota
	// Deliver: the event follows the last fact sent; send it.
	Deliver
	// Gap: facts are missing between the last one sent and this event.
	// A stream fills the gap from the store, or ends so that its client
	// resumes from there; sending the event as is would lose facts.
	Gap
)

// String names the step, for tests and logs.
func (s Step) String() string {
	switch s {
	case Skip:
		return "skip"
	case Deliver:
		return "deliver"
	case Gap:
		return "gap"
	}
	return "step(" + strconv.Itoa(int(s)) + ")"
}

// Cursor is a stream's position: the seq of the last fact it sent. The
// hub's queue may repeat facts the snapshot covered (a stream subscribes
// before it reads the store, so that nothing falls between the two), and
// the cursor is what drops them, exactly once and in order.
type Cursor struct {
	// Last is the seq of the last fact sent; 0 before any.
	Last uint64
}

// Next decides what to do with the event of seq, and moves the cursor past
// it when the answer is Deliver. An event of seq 0 is not a fact (a named
// event without an id): it is always delivered, and does not move the
// cursor.
func (c *Cursor) Next(seq uint64) Step {
	switch {
	case seq == 0:
		return Deliver
	case seq <= c.Last:
		return Skip
	case seq == c.Last+1:
		c.Last = seq
		return Deliver
	}
	return Gap
}

// Cover records that the facts up to seq were sent in another way (a
// snapshot or catch-up array); a cursor already past seq stays where it is.
func (c *Cursor) Cover(seq uint64) {
	c.Last = max(c.Last, seq)
}
