package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"factstream/store"
)

// sseEvent is one dispatched event, parsed as the HTML Living Standard's
// EventSource algorithm does.
type sseEvent struct {
	ID       string
	HasID    bool
	Event    string
	Data     string
	Retry    string
	Comments []string // comment lines seen since the previous event
}

// readEvent reads one event. Lines end in LF, CRLF or CR; a blank line
// dispatches; an event with no data and no retry is a block of comments
// (a keepalive) and is returned too, so tests can see heartbeats.
func readEvent(r *bufio.Reader) (sseEvent, error) {
	var ev sseEvent
	var data []string
	seen := false
	for {
		line, err := readLine(r)
		if err != nil {
			return ev, err
		}
		if line == "" {
			if !seen {
				continue
			}
			ev.Data = strings.Join(data, "\n")
			return ev, nil
		}
		seen = true
		if strings.HasPrefix(line, ":") {
			ev.Comments = append(ev.Comments, line[1:])
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "data":
			data = append(data, value)
		case "id":
			if !strings.ContainsRune(value, 0) {
				ev.ID, ev.HasID = value, true
			}
		case "event":
			ev.Event = value
		case "retry":
			ev.Retry = value
		}
	}
}

func readLine(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		c, err := r.ReadByte()
		if err != nil {
			return "", err
		}
		switch c {
		case '\n':
			return b.String(), nil
		case '\r':
			if next, err := r.Peek(1); err == nil && next[0] == '\n' {
				r.ReadByte()
			}
			return b.String(), nil
		}
		b.WriteByte(c)
	}
}

// sseStream is an open GET /events response whose events a goroutine,
// owned by the stream and ended by Close, reads into a channel.
type sseStream struct {
	Resp   *http.Response
	events chan sseEvent
	errc   chan error
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// openStream connects to url (a full /events URL) with extra headers.
func openStream(tb testing.TB, url string, header http.Header) *sseStream {
	tb.Helper()
	s, err := dialStream(url, header)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	if s.Resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(s.Resp.Body)
		s.Close()
		tb.Fatalf("GET %s = %d %s", url, s.Resp.StatusCode, body)
	}
	tb.Cleanup(s.Close)
	return s
}

func dialStream(url string, header http.Header) (*sseStream, error) {
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &sseStream{Resp: resp, events: make(chan sseEvent, 64), errc: make(chan error, 1), cancel: cancel}
	if resp.StatusCode != http.StatusOK {
		return s, nil
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		r := bufio.NewReader(resp.Body)
		for {
			ev, err := readEvent(r)
			if err != nil {
				s.errc <- err
				close(s.events)
				return
			}
			select {
			case s.events <- ev:
			case <-ctx.Done():
				s.errc <- ctx.Err()
				close(s.events)
				return
			}
		}
	}()
	return s, nil
}

// errStreamEnded is returned by Next once the server has closed the stream.
var errStreamEnded = errors.New("stream ended")

// Next returns the next event that carries data, or an error when the
// stream ends or nothing arrives within timeout.
func (s *sseStream) Next(timeout time.Duration) (sseEvent, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return ev, errStreamEnded
			}
			if ev.Data == "" && ev.Retry == "" {
				continue // keepalive
			}
			return ev, nil
		case <-timer.C:
			return sseEvent{}, fmt.Errorf("no event within %v", timeout)
		}
	}
}

// Close ends the connection and waits for the reader.
func (s *sseStream) Close() {
	s.cancel()
	s.Resp.Body.Close()
	s.wg.Wait()
}

// factsOf decodes an event's data the way the tutorials' clients do: an
// array is a list of facts, an object is one fact.
func factsOf(tb testing.TB, ev sseEvent) []store.Fact {
	tb.Helper()
	facts, err := decodeFacts(ev.Data)
	if err != nil {
		tb.Fatal(err)
	}
	return facts
}

// decodeFacts is factsOf for goroutines other than the test's.
func decodeFacts(data string) ([]store.Fact, error) {
	if strings.HasPrefix(data, "[") {
		var fs []store.Fact
		if err := json.Unmarshal([]byte(data), &fs); err != nil {
			return nil, fmt.Errorf("decode array event %q: %w", data, err)
		}
		return fs, nil
	}
	var f store.Fact
	if err := json.Unmarshal([]byte(data), &f); err != nil {
		return nil, fmt.Errorf("decode event %q: %w", data, err)
	}
	return []store.Fact{f}, nil
}

func TestReadEventFollowsTheSpec(t *testing.T) {
	input := ": hello\r\n\r\nretry: 3000\n\nid: 7\rdata: a\ndata:b\nevent: x\nunknown: y\n\n"
	r := bufio.NewReader(strings.NewReader(input))
	want := []sseEvent{
		{Comments: []string{" hello"}},
		{Retry: "3000"},
		{ID: "7", HasID: true, Event: "x", Data: "a\nb"},
	}
	for i, w := range want {
		got, err := readEvent(r)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if got.ID != w.ID || got.HasID != w.HasID || got.Event != w.Event || got.Data != w.Data || got.Retry != w.Retry || len(got.Comments) != len(w.Comments) {
			t.Fatalf("event %d = %+v, want %+v", i, got, w)
		}
	}
	if _, err := readEvent(r); err != io.EOF {
		t.Fatalf("after the last event: err = %v, want EOF", err)
	}
}
