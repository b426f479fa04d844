package tests

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"factstream/store"
)

// Bounds of one snapshot or catch-up array event (SPEC section 8).
const (
	arrayMaxFacts = 1000
	arrayMaxBytes = 256 << 10
)

// maxFactBatch is n facts of the largest size a fact may have.
func maxFactBatch(n, from int) []map[string]string {
	batch := make([]map[string]string, n)
	for i := range batch {
		head := fmt.Sprintf("fact %d ", from+i)
		batch[i] = map[string]string{
			"info":   head + strings.Repeat("i", store.MaxInfoLen-len(head)),
			"source": "https://example.com/" + strings.Repeat("s", store.MaxSourceLen-len("https://example.com/")),
		}
	}
	return batch
}

// readArrays reads array events from r until one carries id upTo, checks
// every bound and the order, and returns the facts.
func readArrays(tb testing.TB, r *bufio.Reader, after, upTo uint64) []store.Fact {
	tb.Helper()
	var facts []store.Fact
	for {
		ev, err := readEvent(r)
		if err != nil {
			tb.Fatalf("after %d facts: %v", len(facts), err)
		}
		if ev.Data == "" {
			continue // retry line or keepalive
		}
		if len(ev.Data) > arrayMaxBytes {
			tb.Fatalf("an array of %d bytes of data, over %d", len(ev.Data), arrayMaxBytes)
		}
		batch, err := decodeFacts(ev.Data)
		if err != nil {
			tb.Fatal(err)
		}
		if len(batch) > arrayMaxFacts {
			tb.Fatalf("an array of %d facts, over %d", len(batch), arrayMaxFacts)
		}
		if len(batch) > 0 && ev.ID != strconv.FormatUint(batch[len(batch)-1].Seq, 10) {
			tb.Fatalf("array ending with seq %d has id %q", batch[len(batch)-1].Seq, ev.ID)
		}
		for _, f := range batch {
			if want := after + uint64(len(facts)) + 1; f.Seq != want {
				tb.Fatalf("fact with seq %d where %d was due", f.Seq, want)
			}
			facts = append(facts, f)
		}
		if ev.ID == strconv.FormatUint(upTo, 10) {
			return facts
		}
	}
}

// TestSnapshotAndCatchUpArraysAreBounded fills the store with small and
// maximum-size facts: a fresh snapshot and a long catch-up must both come
// as arrays of at most 1,000 facts and 256 KiB, each with its last id.
func TestSnapshotAndCatchUpArraysAreBounded(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxBody = 8 << 20
	srv := startServer(t, cfg)
	small := make([]map[string]string, 1000)
	for i := range small {
		small[i] = map[string]string{"info": fmt.Sprintf("small %d", i)}
	}
	for _, batch := range [][]map[string]string{small, small, small[:500], maxFactBatch(1000, 0), small[:100]} {
		if code, body := postJSON(t, srv.URL+"/facts", batch, nil); code != http.StatusCreated {
			t.Fatalf("POST /facts = %d %.200s", code, body)
		}
	}
	const head = 3600
	for _, after := range []uint64{0, 10} {
		t.Run(fmt.Sprint("After", after), func(t *testing.T) {
			header := http.Header{}
			if after > 0 {
				header.Set("Last-Event-ID", fmt.Sprint(after))
			}
			s := openRawStream(t, srv.URL+"/events", header)
			if facts := readArrays(t, s, after, head); len(facts) != head-int(after) {
				t.Fatalf("%d facts, want %d", len(facts), head-after)
			}
		})
	}
}

// openRawStream opens a stream and returns its body to read directly.
func openRawStream(tb testing.TB, url string, header http.Header) *bufio.Reader {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s = %d", url, resp.StatusCode)
	}
	return bufio.NewReaderSize(resp.Body, 1<<20)
}

// TestSnapshotMemoryIsBoundedAndSlowReadersLoadIt is the real binary on a
// memory store of 10,000 maximum-size facts (a 62 MB snapshot). Sixteen
// streams that never read must add less than 64 MiB of RSS, and a client
// reading 2 MB/s must load the whole snapshot.
func TestSnapshotMemoryIsBoundedAndSlowReadersLoadIt(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 62 MB at 2 MB/s")
	}
	addr := freePort(t)
	p := startProcess(t, t.TempDir(), addr, "--store", "memory:", "--max-body", "8MiB")
	for i := range 10 {
		data, err := json.Marshal(maxFactBatch(1000, i*1000))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(p.URL+"/facts", "application/json", bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST /facts #%d = %d", i, resp.StatusCode)
		}
	}
	pid := p.cmd.Process.Pid
	before := rss(t, pid)

	conns := make([]net.Conn, 16)
	for i := range conns {
		conns[i] = dialUnread(t, addr)
	}
	// Sample until every stream was cut as too slow (write_timeout,
	// 10 s by default) or for 15 s.
	peak, most := before, 0
	start := time.Now()
	for time.Since(start) < 15*time.Second {
		peak = max(peak, rss(t, pid))
		n := clients(t, p.URL)
		most = max(most, n)
		if n == 0 && most > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if most != len(conns) {
		t.Fatalf("at most %d of the %d unread streams were open at once", most, len(conns))
	}
	for _, c := range conns {
		c.Close()
	}
	rise := int64(peak) - int64(before)
	t.Logf("RSS %.1f MiB with 10,000 maximum-size facts; peak %.1f MiB with 16 streams that never read, cut after %v: +%.1f MiB",
		mib(before), mib(peak), time.Since(start).Round(time.Second), float64(rise)/(1<<20))
	if rise >= 64<<20 {
		t.Errorf("16 unread streams raised RSS by %.1f MiB, want under 64 MiB", float64(rise)/(1<<20))
	}

	// A client that reads 2 MB/s.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /events HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	start = time.Now()
	r := bufio.NewReader(&rateLimited{r: conn, rate: 2 << 20, start: start})
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	// No resp.Body.Close: it would read the endless stream to its end;
	// closing conn ends it.
	body := bufio.NewReaderSize(resp.Body, 1<<20)
	facts := readArrays(t, body, 0, 10000)
	t.Logf("a client reading 2 MB/s loaded the snapshot of %d facts in %v", len(facts), time.Since(start).Round(time.Second))
}

// rateLimited reads no faster than rate bytes per second on average.
type rateLimited struct {
	r     io.Reader
	rate  float64
	start time.Time
	n     int64
}

func (l *rateLimited) Read(p []byte) (int, error) {
	if len(p) > 32<<10 {
		p = p[:32<<10]
	}
	due := l.start.Add(time.Duration(float64(l.n) / l.rate * float64(time.Second)))
	time.Sleep(time.Until(due))
	n, err := l.r.Read(p)
	l.n += int64(n)
	return n, err
}

// dialUnread sends GET /events on a socket with a 4 KiB receive buffer and
// never reads it.
func dialUnread(tb testing.TB, addr string) net.Conn {
	tb.Helper()
	return dialUnreadPath(tb, addr, "/events")
}

// rss is the resident set size of process pid, in bytes.
func rss(tb testing.TB, pid int) uint64 {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatal("no VmRSS in /proc status")
	return 0
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// rawExchange sends head (and body) on a new connection and returns the
// status line of the answer, and whether the server closed the connection
// after it, all within 3 s.
func rawExchange(tb testing.TB, addr, request string) (status int, closed bool) {
	tb.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		tb.Fatal(err)
	}
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		tb.Fatalf("no answer within 3 s: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_, err = r.ReadByte()
	return resp.StatusCode, err == io.EOF
}

// TestRequestBoundsAnswerAtOnce sends requests over a bound: each must be
// refused at once, before the server reads what the client announced.
func TestRequestBoundsAnswerAtOnce(t *testing.T) {
	srv := startServer(t, testConfig(t))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"info":"compressed"}`))
	zw.Close()
	cases := []struct {
		name    string
		request string
		status  int
	}{
		{"HugeHead", "GET /facts HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("a", 100<<10) + "\r\n\r\n",
			http.StatusRequestHeaderFieldsTooLarge},
		{"DeclaredBodyTooLarge", "POST /fact HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 70000\r\n\r\n{",
			http.StatusRequestEntityTooLarge},
		{"Gzip", fmt.Sprintf("POST /fact HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s", gz.Len(), gz.String()),
			http.StatusUnsupportedMediaType},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, closed := rawExchange(t, srv.Addr, tc.request)
			if status != tc.status || !closed {
				t.Fatalf("status %d, connection closed %v; want %d and closed", status, closed, tc.status)
			}
		})
	}
	var st struct {
		Facts uint64 `json:"facts"`
	}
	getJSON(t, srv.URL+"/status", &st)
	if st.Facts != 0 {
		t.Fatalf("%d facts stored by refused requests", st.Facts)
	}
}
