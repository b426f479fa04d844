package tests

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
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
	if n := keptStatus(t, srv.URL).Facts; n != 0 {
		t.Fatalf("%d facts stored by refused requests", n)
	}
}

// TestRefusedBodyEndsCleanly: a client sending a body over max_body
// (here 200 KB, more than the connection's buffers hold before the server
// reads) can finish sending it after the 413 comes, and the connection
// then ends with a clean close. The server answers before reading and
// then discards up to 256 KiB of what follows, for a moment: closing on
// unread bytes, as net/http alone does 500 ms after the answer, resets the
// connection under the client's write, and a Go client then reports the
// reset instead of the 413.
func TestRefusedBodyEndsCleanly(t *testing.T) {
	srv := startServer(t, testConfig(t))
	body := `{"info":"` + strings.Repeat("a", 200000) + `"}`
	c := dialRaw(t, srv.Addr)
	c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c.conn, "POST /fact HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
		t.Fatalf("sending the body: %v, want it taken (and discarded)", err)
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		t.Fatalf("reading the answer: %v, want the 413", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("POST of a body over max_body = %d, want 413", resp.StatusCode)
	}
	if _, err := c.r.ReadByte(); err != io.EOF {
		t.Fatalf("after the 413: %v, want the connection closed cleanly (EOF), not reset", err)
	}
}

// rawConn is one client connection written and read by hand, for requests
// no Go client would send.
type rawConn struct {
	tb   testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(tb testing.TB, addr string) *rawConn {
	tb.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return &rawConn{tb: tb, conn: conn, r: bufio.NewReader(conn)}
}

// rawAnswer is an answer read from a rawConn; close is whether it said
// Connection: close (which net/http's reader takes out of the header).
type rawAnswer struct {
	exchange
	close bool
}

// exchange writes request (which may hold several) and reads one answer,
// within 3 s.
func (c *rawConn) exchange(request string) rawAnswer {
	c.tb.Helper()
	c.conn.SetDeadline(time.Now().Add(3 * time.Second))
	if request != "" {
		if _, err := io.WriteString(c.conn, request); err != nil {
			c.tb.Fatal(err)
		}
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		c.tb.Fatalf("no answer within 3 s: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.tb.Fatalf("reading the answer: %v", err)
	}
	return rawAnswer{exchange{status: resp.StatusCode, header: resp.Header, body: string(body)}, resp.Close}
}

// closed reports whether the server closed the connection after what was
// read so far, within 3 s; a further answer fails the test.
func (c *rawConn) closed() bool {
	c.tb.Helper()
	c.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := c.r.Peek(1)
	if err == nil {
		rest, _ := c.r.Peek(c.r.Buffered())
		c.tb.Fatalf("the server answered again on the connection: %q", rest)
	}
	if err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
		c.tb.Logf("reading after the answer: %v", err)
		return false
	}
	return true
}

// postHead is the head of a POST /fact with a JSON body and the framing
// headers given.
func postHead(framing ...string) string {
	head := "POST /fact HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
	for _, h := range framing {
		head += h + "\r\n"
	}
	return head + "\r\n"
}

// plainPost is a complete POST /fact framed by Content-Length.
func plainPost(info string) string {
	body := `{"info":"` + info + `"}`
	return postHead("Content-Length: "+strconv.Itoa(len(body))) + body
}

// TestSmuggledRequestIsNotServed sends a request framed both ways, whose
// chunked body ends at once and whose Content-Length covers a second,
// complete request (what a proxy framing by Content-Length forwards as
// one): the server must refuse it with 400, close the connection and store
// nothing, whatever the order and case of the headers.
func TestSmuggledRequestIsNotServed(t *testing.T) {
	hidden := "0\r\n\r\n" + plainPost("smuggled")
	cl := "Content-Length: " + strconv.Itoa(len(hidden))
	cases := []struct {
		name    string
		before  string // sent first on the same connection, answered 201
		request string
	}{
		{"LengthFirst", "", postHead(cl, "Transfer-Encoding: chunked") + hidden},
		{"EncodingFirstLowerCase", "", postHead("transfer-encoding: Chunked", strings.ToLower(cl)) + hidden},
		{"AfterAKeepAliveRequest", plainPost("first"), postHead(cl, "Transfer-Encoding: chunked") + hidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, testConfig(t))
			c := dialRaw(t, srv.Addr)
			var want uint64
			if tc.before != "" {
				want = 1
				if ex := c.exchange(tc.before); ex.status != http.StatusCreated {
					t.Fatalf("the request before = %d %s", ex.status, ex.body)
				}
			}
			ex := c.exchange(tc.request)
			if ex.status != http.StatusBadRequest || ex.problemType() != "urn:factstream:problem:ambiguous-framing" {
				t.Fatalf("answer %d %s, want 400 ambiguous-framing", ex.status, ex.body)
			}
			if !ex.close {
				t.Error("the answer has no Connection: close")
			}
			if !c.closed() {
				t.Fatal("the connection stayed open")
			}
			checkAnswerDocumented(t, srv.URL, http.MethodPost, "/fact", ex)
			if got := factCount(t, srv.URL, nil); got != want {
				t.Fatalf("%d facts stored, want %d", got, want)
			}
		})
	}
}

// checkAnswerDocumented fails unless ex, the answer to method path, is
// as /openapi.json describes it.
func checkAnswerDocumented(tb testing.TB, base, method, path string, ex rawAnswer) {
	tb.Helper()
	spec := fetchSpec(tb, base)
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	resp := &http.Response{StatusCode: ex.status, Header: ex.header, Body: io.NopCloser(strings.NewReader(ex.body)), Request: req}
	if ok, errs := spec.validator.ValidateHttpResponse(req, resp); !ok {
		tb.Errorf("the %d answer does not match the document (body %s):\n%s", ex.status, ex.body, describe(errs))
	}
}

// TestChunkedRequestClosesItsConnection: a chunked request is served, and
// its connection closed after the answer, so that nothing a proxy might
// have framed otherwise is read after its body.
func TestChunkedRequestClosesItsConnection(t *testing.T) {
	srv := startServer(t, testConfig(t))
	c := dialRaw(t, srv.Addr)
	body := `{"info":"chunked"}`
	chunked := postHead("Transfer-Encoding: chunked") + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)
	ex := c.exchange(chunked + plainPost("pipelined"))
	if ex.status != http.StatusCreated {
		t.Fatalf("chunked POST = %d %s, want 201", ex.status, ex.body)
	}
	if !ex.close {
		t.Error("the answer has no Connection: close")
	}
	if !c.closed() {
		t.Fatal("the connection stayed open")
	}
	if got := factCount(t, srv.URL, nil); got != 1 {
		t.Fatalf("%d facts stored, want 1 (the pipelined request must not be served)", got)
	}
}

// TestKeepAliveRequestsShareAConnection: requests framed by Content-Length
// alone keep their connection, pipelined or one after the other.
func TestKeepAliveRequestsShareAConnection(t *testing.T) {
	srv := startServer(t, testConfig(t))
	c := dialRaw(t, srv.Addr)
	for i, req := range []string{plainPost("one"), plainPost("two") + plainPost("three"), ""} {
		if ex := c.exchange(req); ex.status != http.StatusCreated || ex.close {
			t.Fatalf("POST %d = %d (Connection: close %v) %s, want 201 on an open connection", i+1, ex.status, ex.close, ex.body)
		}
	}
	ex := c.exchange("GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
	var st struct {
		Facts uint64 `json:"facts"`
	}
	if ex.status != http.StatusOK || json.Unmarshal([]byte(ex.body), &st) != nil || st.Facts != 3 {
		t.Fatalf("GET /status on the same connection = %d %s, want 3 facts", ex.status, ex.body)
	}
}

// TestSmuggledRequestIsNotServedOverTLS: over TLS the server does not see
// the raw head (HTTP/2 needs the TLS connection as it is), so the request
// is served as chunked, but its connection still closes after the answer
// and the request hidden in its body is never served.
func TestSmuggledRequestIsNotServedOverTLS(t *testing.T) {
	srv, _, roots := startTLSServer(t, testConfig(t))
	conn, err := tls.Dial("tcp", srv.Addr, &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawConn{tb: t, conn: conn, r: bufio.NewReader(conn)}
	hidden := "0\r\n\r\n" + plainPost("smuggled")
	ex := c.exchange(postHead("Content-Length: "+strconv.Itoa(len(hidden)), "Transfer-Encoding: chunked") + hidden)
	if ex.status/100 != 4 || !ex.close {
		t.Fatalf("answer %d (Connection: close %v) %s, want a 4xx with Connection: close", ex.status, ex.close, ex.body)
	}
	if !c.closed() {
		t.Fatal("the connection stayed open")
	}
	client := tlsClient(roots, false)
	t.Cleanup(client.CloseIdleConnections)
	status := do(t, client, http.MethodGet, srv.URL+"/status", nil, "")
	var st struct {
		Facts *uint64 `json:"facts"`
	}
	if json.Unmarshal([]byte(status.body), &st) != nil || st.Facts == nil || *st.Facts != 0 {
		t.Fatalf("GET /status = %d %s, want no facts", status.status, status.body)
	}
}
