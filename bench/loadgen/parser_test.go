//go:build linux

package main

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// gotEvent is an event copied out of the parser's buffers.
type gotEvent struct {
	ID, Type, Data string
	Retry          int
}

// chunked frames body as chunks of the given sizes (the rest in one last
// chunk), with an extension on every other chunk, as RFC 9112 allows.
func chunked(body string, sizes ...int) string {
	var b strings.Builder
	b.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
	for i := 0; len(body) > 0; i++ {
		n := len(body)
		if i < len(sizes) && sizes[i] < n {
			n = sizes[i]
		}
		ext := ""
		if i%2 == 1 {
			ext = ";name=value"
		}
		fmt.Fprintf(&b, "%X%s\r\n%s\r\n", n, ext, body[:n])
		body = body[n:]
	}
	return b.String()
}

// feedSplit feeds response in pieces cut at the given offsets and returns
// the events and the first error.
func feedSplit(response string, cuts ...int) ([]gotEvent, error) {
	var got []gotEvent
	p := newResponseParser(func(ev *event) {
		got = append(got, gotEvent{string(ev.ID), string(ev.Type), string(ev.Data), ev.Retry})
	})
	prev := 0
	for _, c := range append(cuts, len(response)) {
		if err := p.Feed([]byte(response[prev:c])); err != nil {
			return got, err
		}
		prev = c
	}
	return got, nil
}

func TestParserEventsAnySplit(t *testing.T) {
	body := "retry: 3000\n\n" +
		"data: []\n\n" +
		": keepalive\n\n" +
		"id: 1\r\ndata: {\"info\":\"1:0:5\"}\r\n\r\n" +
		"id: 2\rdata: first\rdata:second\r\r" +
		"event: custom\nid: bad\x00id\ndata\n\n" +
		"data: no dispatch at the end"
	want := []gotEvent{
		{"", "", "[]", 3000},
		{"1", "", `{"info":"1:0:5"}`, 3000},
		{"2", "", "first\nsecond", 3000},
		{"2", "custom", "", 3000},
	}
	responses := map[string]string{
		"OneChunk":    chunked(body),
		"SmallChunks": chunked(body, 1, 2, 3, 5, 7, 11, 13, 17, 19, 23),
		"CRLFSplit":   chunked(body, 42, 13), // a chunk ends between CR and LF
		"Identity":    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n" + body,
	}
	for name, resp := range responses {
		t.Run(name, func(t *testing.T) {
			for cut := 0; cut <= len(resp); cut++ {
				got, err := feedSplit(resp, cut)
				if err != nil {
					t.Fatalf("cut at %d: %v", cut, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("cut at %d: events\n%+v\nwant\n%+v", cut, got, want)
				}
			}
			every := make([]int, len(resp))
			for i := range every {
				every[i] = i
			}
			if got, err := feedSplit(resp, every...); err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("byte by byte: %+v, %v", got, err)
			}
		})
	}
}

func TestParserResponseEnds(t *testing.T) {
	t.Run("LastChunk", func(t *testing.T) {
		resp := chunked("data: x\n\n") + "0\r\nTrailer: v\r\n\r\n"
		got, err := feedSplit(resp)
		if !errors.Is(err, errStreamEnded) || len(got) != 1 {
			t.Fatalf("events %+v, err %v; want one event and errStreamEnded", got, err)
		}
	})
	t.Run("ContentLength", func(t *testing.T) {
		resp := "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\ndata: x\n\n"
		if _, err := feedSplit(resp, 20); !errors.Is(err, errStreamEnded) {
			t.Fatalf("err %v, want errStreamEnded", err)
		}
	})
	t.Run("Status503", func(t *testing.T) {
		resp := "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\r\n"
		var se statusError
		if _, err := feedSplit(resp, 5); !errors.As(err, &se) || se.code != 503 {
			t.Fatalf("err %v, want status 503", err)
		}
	})
	t.Run("BadChunkSize", func(t *testing.T) {
		resp := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
		if _, err := feedSplit(resp); err == nil {
			t.Fatal("no error for a malformed chunk size")
		}
	})
}

func TestInfoRoundTrip(t *testing.T) {
	nanos := time.Date(2026, 11, 21, 12, 0, 0, 123, time.UTC).UnixNano()
	info := appendInfo(nil, publisherID(42, 7), 1999, nanos)
	data := `{"id":"x","seq":3,"info": "` + string(info) + `","source":""}`
	raw, rest, ok := nextInfo([]byte(data))
	if !ok || string(rest) != `,"source":""}` {
		t.Fatalf("nextInfo(%s) = %q, %q, %v", data, raw, rest, ok)
	}
	f, err := parseInfo(raw)
	if err != nil {
		t.Fatal(err)
	}
	if want := (factInfo{Pub: 42007, N: 1999, SentNanos: nanos}); f != want {
		t.Fatalf("parseInfo = %+v, want %+v", f, want)
	}
	if _, _, ok := nextInfo([]byte(`{"source":"info","x":"\"info\":\"1:2:3\""}`)); ok {
		t.Fatal("found an info key inside string values")
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}} {
		got := h.Quantile(c.q)
		if diff := float64(got-c.want) / float64(c.want); diff < -0.02 || diff > 0.02 {
			t.Errorf("quantile %.2f = %s, want %s within 2%%", c.q, got, c.want)
		}
	}
}
