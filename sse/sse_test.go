package sse_test

import (
	"bytes"
	"io"
	"net/http/httputil"
	"strconv"
	"testing"
	"time"

	"factstream/sse"
)

func data(s string) func([]byte) []byte {
	return func(dst []byte) []byte { return append(dst, s...) }
}

func TestAppendEvent(t *testing.T) {
	for _, tc := range []struct {
		name  string
		event string
		id    uint64
		data  string
		want  string
	}{
		{"IDAndData", "", 42, `{"seq":42}`, "id: 42\ndata: {\"seq\":42}\n\n"},
		{"NoIDWhenZero", "", 0, `[]`, "data: []\n\n"},
		{"LargestID", "", 18446744073709551615, `1`, "id: 18446744073709551615\ndata: 1\n\n"},
		{"NamedWithoutID", "truncated", 0, `{"before":7}`, "event: truncated\ndata: {\"before\":7}\n\n"},
		{"NamedWithID", "deleted", 9, `{"seq":9}`, "event: deleted\nid: 9\ndata: {\"seq\":9}\n\n"},
		{"EmptyData", "", 3, ``, "id: 3\ndata: \n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(sse.AppendEvent(nil, tc.event, tc.id, data(tc.data))); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			// Appends after what dst holds, untouched.
			if got := string(sse.AppendEvent([]byte("x"), tc.event, tc.id, data(tc.data))); got != "x"+tc.want {
				t.Fatalf("after a prefix: got %q, want %q", got, "x"+tc.want)
			}
		})
	}
}

func TestAppendRetry(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{3 * time.Second, "retry: 3000\n\n"},
		{1500 * time.Microsecond, "retry: 1\n\n"},
		{0, "retry: 0\n\n"},
	} {
		if got := string(sse.AppendRetry(nil, tc.d)); got != tc.want {
			t.Errorf("AppendRetry(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// The chunk constants are written out by hand; each must be what
// AppendChunk makes of its frame, and decode back to it.
func TestChunks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		chunk string
		frame string
	}{
		{"Keepalive", sse.KeepaliveChunk, sse.Keepalive},
		{"Reset", sse.ResetChunk, sse.ResetFrame},
		{"Event", string(sse.AppendChunk(nil, []byte("id: 1\ndata: {}\n\n"))), "id: 1\ndata: {}\n\n"},
		{"Large", string(sse.AppendChunk(nil, bytes.Repeat([]byte("a"), 4097))), string(bytes.Repeat([]byte("a"), 4097))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(sse.AppendChunk(nil, []byte(tc.frame))); got != tc.chunk {
				t.Fatalf("AppendChunk = %q, want %q", got, tc.chunk)
			}
			body, err := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader([]byte(tc.chunk + sse.LastChunk))))
			if err != nil || string(body) != tc.frame {
				t.Fatalf("decoded %q, %v; want %q", body, err, tc.frame)
			}
		})
	}
}

func TestAppendChunkHeaderIsHex(t *testing.T) {
	for _, size := range []int{1, 15, 16, 255, 1 << 20} {
		want := strconv.FormatInt(int64(size), 16) + "\r\n"
		if got := string(sse.AppendChunkHeader(nil, size)); got != want {
			t.Errorf("AppendChunkHeader(%d) = %q, want %q", size, got, want)
		}
	}
}

func TestAppendChunkOfNothingAppendsNothing(t *testing.T) {
	// An empty chunk would be the last one, ending the body.
	if got := sse.AppendChunk([]byte("x"), nil); string(got) != "x" {
		t.Fatalf("got %q, want nothing appended", got)
	}
}

func TestCursor(t *testing.T) {
	for _, tc := range []struct {
		name     string
		last     uint64
		seq      uint64
		want     sse.Step
		wantLast uint64
	}{
		{"FirstFact", 0, 1, sse.Deliver, 1},
		{"NextFact", 41, 42, sse.Deliver, 42},
		{"SentInSnapshot", 42, 40, sse.Skip, 42},
		{"SameFactAgain", 42, 42, sse.Skip, 42},
		{"FactsMissing", 42, 44, sse.Gap, 42},
		{"FactsMissingFromStart", 0, 2, sse.Gap, 0},
		{"UnsequencedEvent", 42, 0, sse.Deliver, 42},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := sse.Cursor{Last: tc.last}
			if got := c.Next(tc.seq); got != tc.want {
				t.Fatalf("Next(%d) after %d = %v, want %v", tc.seq, tc.last, got, tc.want)
			}
			if c.Last != tc.wantLast {
				t.Fatalf("cursor at %d, want %d", c.Last, tc.wantLast)
			}
		})
	}
}

func TestCursorDropsRepeatsAndKeepsOrder(t *testing.T) {
	// A snapshot up to 3, then a queue that repeats 2 and 3 and has a hole
	// after 5.
	c := sse.Cursor{}
	c.Cover(3)
	var got []sse.Step
	for _, seq := range []uint64{2, 3, 4, 5, 7} {
		got = append(got, c.Next(seq))
	}
	want := []sse.Step{sse.Skip, sse.Skip, sse.Deliver, sse.Deliver, sse.Gap}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("steps %v, want %v", got, want)
		}
	}
	c.Cover(2) // never backwards
	if c.Last != 5 {
		t.Fatalf("cursor at %d after covering an older seq, want 5", c.Last)
	}
}
