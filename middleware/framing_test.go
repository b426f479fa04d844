package middleware

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

const testHeadLimit = 1 << 10

// rawPost is a POST head with the given fields, and body.
func rawPost(proto string, fields []string, body string) string {
	return "POST /x " + proto + "\r\nHost: x\r\n" + strings.Join(append(fields, ""), "\r\n") + "\r\n" + body
}

// smuggle is a request framed both ways, its chunked body ending at once,
// its Content-Length covering a second request.
var smuggle = rawPost("HTTP/1.1", []string{"Content-Length: 37", "Transfer-Encoding: chunked"},
	"0\r\n\r\nGET /hidden HTTP/1.1\r\nHost: x\r\n\r\n")

// chunked is a request with a chunked body and no Content-Length.
var chunked = rawPost("HTTP/1.1", []string{"Transfer-Encoding: chunked"}, "3\r\nabc\r\n0\r\n\r\n")

type scanResult struct {
	done, ambiguous bool
	// Where a scan that goes on stands: between requests, or in a
	// head or body.
	between bool
}

func (s *headScanner) result() scanResult {
	return scanResult{done: s.done, ambiguous: s.ambiguous,
		between: !s.done && s.state == scanLead && s.body == 0 && s.n == 0}
}

// TestHeadScannerFollowsNetHTTPFraming feeds connections' bytes to the
// scanner whole, split in two at every byte, and byte by byte: the outcome
// must be the same, and what net/http would conclude.
func TestHeadScannerFollowsNetHTTPFraming(t *testing.T) {
	goOn := scanResult{between: true}
	ambiguous := scanResult{done: true, ambiguous: true}
	stop := scanResult{done: true} // a chunked request, or one net/http refuses
	cases := []struct {
		name   string
		stream string
		want   scanResult
	}{
		{"Get", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", goOn},
		{"LengthAndEncoding", smuggle, ambiguous},
		{"EncodingFirstAnyCase", rawPost("HTTP/1.1", []string{"TRANSFER-ENCODING: chunked", "content-LENGTH: 5"}, ""), ambiguous},
		{"ChunkedAlone", chunked, stop},
		{"ChunkedAfterKeepAliveRequests", rawPost("HTTP/1.1", []string{"Content-Length: 3"}, "abc") + "GET / HTTP/1.1\r\nHost: x\r\n\r\n" + chunked, stop},
		{"AmbiguousAfterKeepAliveRequests", rawPost("HTTP/1.1", []string{"Content-Length: 3"}, "abc") + "GET / HTTP/1.1\r\nHost: x\r\n\r\n" + smuggle, ambiguous},
		{"LengthBodyHidingAHeadIsSkipped", rawPost("HTTP/1.1", []string{"Content-Length: 37"}, "POST / HTTP/1.1\r\nTransfer-Encoding: x"), goOn},
		{"LengthBodyHidingAHeadThenAmbiguous", rawPost("HTTP/1.1", []string{"Content-Length: 37"}, "POST / HTTP/1.1\r\nTransfer-Encoding: x") + smuggle, ambiguous},
		{"HTTP10IgnoresEncoding", rawPost("HTTP/1.0", []string{"Transfer-Encoding: chunked", "Content-Length: 3"}, "abc"), goOn},
		{"HTTP10EncodingWithoutLength", rawPost("HTTP/1.0", []string{"Transfer-Encoding: chunked"}, ""), goOn},
		{"HTTP10LengthBodyThenAmbiguous", rawPost("HTTP/1.0", []string{"Transfer-Encoding: chunked", "Content-Length: 37"}, "0\r\n\r\nGET /hidden HTTP/1.1\r\nHost: x\r\n\r\n") + smuggle, ambiguous},
		{"HTTP12HonoursEncoding", rawPost("HTTP/1.2", []string{"Transfer-Encoding: chunked", "Content-Length: 3"}, ""), ambiguous},
		{"CRLFAfterPostIsDropped", rawPost("HTTP/1.1", []string{"Content-Length: 3"}, "abc") + "\r\n\r\n" + smuggle, ambiguous},
		{"MoreThanFourCRLFAfterPost", rawPost("HTTP/1.1", []string{"Content-Length: 3"}, "abc") + "\r\n\r\n\r\n" + smuggle, stop},
		{"CRLFAfterGetIsNoRequest", "GET / HTTP/1.1\r\nHost: x\r\n\r\n\r\n" + smuggle, stop},
		{"BareLineFeeds", "POST /x HTTP/1.1\nHost: x\nContent-Length: 3\n\nabc" + strings.ReplaceAll(smuggle, "\r\n", "\n"), ambiguous},
		{"FoldedLength", rawPost("HTTP/1.1", []string{"Content-Length:", " \t", "\t37"}, "0\r\n\r\nGET /hidden HTTP/1.1\r\nHost: x\r\n\r\n") + smuggle, ambiguous},
		{"FoldedDigitsAreNoLength", rawPost("HTTP/1.1", []string{"Content-Length: 3", " 7"}, ""), stop},
		{"SpacedLength", rawPost("HTTP/1.1", []string{"Content-Length:  \t 3 \t"}, "abc"), goOn},
		{"EqualLengths", rawPost("HTTP/1.1", []string{"Content-Length: 3", "Content-Length: 3"}, "abc"), goOn},
		{"DifferentLengths", rawPost("HTTP/1.1", []string{"Content-Length: 3", "Content-Length: 4"}, "abc"), stop},
		{"EmptyLength", rawPost("HTTP/1.1", []string{"Content-Length: "}, ""), stop},
		{"SignedLength", rawPost("HTTP/1.1", []string{"Content-Length: +3"}, "abc"), stop},
		{"HugeLength", rawPost("HTTP/1.1", []string{"Content-Length: 9223372036854775808"}, ""), stop},
		{"LargestLength", rawPost("HTTP/1.1", []string{"Content-Length: 9223372036854775807"}, "abc"), scanResult{}},
		{"CRInLength", rawPost("HTTP/1.1", []string{"Content-Length: 3\r"}, "abc"), stop},
		{"SpaceBeforeColonIsAnotherField", rawPost("HTTP/1.1", []string{"Content-Length : 5", "Transfer-Encoding: chunked"}, ""), stop},
		{"LookAlikeFields", rawPost("HTTP/1.1", []string{"X-Transfer-Encoding: chunked", "Transfer-Encodings: chunked", "Content-Lengths: 3", "Content-Length: 3"}, "abc"), goOn},
		// net/http refuses this head; reading on is harmless.
		{"FieldStartingWithCR", rawPost("HTTP/1.1", []string{"\rTransfer-Encoding: chunked", "Content-Length: 3"}, "abc"), goOn},
		{"NotHTTP1", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", stop},
		{"MalformedVersion", "GET / HTTP/1.1 \r\nHost: x\r\n\r\n", stop},
		{"NoVersion", "GET /\r\nHost: x\r\n\r\n", stop},
		{"HeadOverTheLimit", rawPost("HTTP/1.1", []string{"X-Pad: " + strings.Repeat("a", testHeadLimit), "Content-Length: 3", "Transfer-Encoding: chunked"}, ""), stop},
		{"HeadsUnderTheLimit", strings.Repeat(rawPost("HTTP/1.1", []string{"X-Pad: " + strings.Repeat("a", testHeadLimit/2), "Content-Length: 3"}, "abc"), 3), goOn},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.stream)
			whole := &headScanner{limit: testHeadLimit}
			whole.feed(in)
			if got := whole.result(); got != tc.want {
				t.Fatalf("scanned whole: %+v, want %+v", got, tc.want)
			}
			for i := 1; i < len(in); i++ {
				s := &headScanner{limit: testHeadLimit}
				s.feed(in[:i])
				s.feed(in[i:])
				if got := s.result(); got != tc.want {
					t.Fatalf("split after %d bytes (%q): %+v, want %+v", i, in[:i], got, tc.want)
				}
			}
			s := &headScanner{limit: testHeadLimit}
			for i := range in {
				s.feed(in[i : i+1])
			}
			if got := s.result(); got != tc.want {
				t.Fatalf("byte by byte: %+v, want %+v", got, tc.want)
			}
		})
	}
}

// framingServer serves engine over a FramingListener on loopback, as the
// service does, and returns its address.
func framingServer(t *testing.T, engine http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: engine, ConnContext: FramingContext, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(FramingListener(ln, 0))
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// sendRaw writes stream on a new connection and returns the answers read
// until the server closes it (or 3 s pass: closed is then false).
func sendRaw(t *testing.T, addr, stream string) (answers []*http.Response, closed bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(conn, stream); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	for {
		if _, err := r.Peek(1); err != nil {
			return answers, err == io.EOF
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("after %d answers: %v", len(answers), err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		answers = append(answers, resp)
	}
}

// TestFramingOverAServer: through a real server, a request framed both
// ways is refused with 400 before its handler runs, a chunked one is
// served, and either closes the connection; requests framed by
// Content-Length alone keep it.
func TestFramingOverAServer(t *testing.T) {
	var served atomic.Int32
	engine := gin.New()
	engine.Use(Framing(testReject))
	engine.Any("/*path", func(c *gin.Context) {
		served.Add(1)
		io.Copy(io.Discard, c.Request.Body)
		c.String(http.StatusOK, "ok")
	})
	addr := framingServer(t, engine)
	keepAlive := rawPost("HTTP/1.1", []string{"Content-Length: 3"}, "abc")
	cases := []struct {
		name     string
		stream   string
		statuses []int
		closed   bool
		served   int32
	}{
		{"Ambiguous", smuggle, []int{http.StatusBadRequest}, true, 0},
		{"AmbiguousAfterKeepAlive", keepAlive + smuggle, []int{http.StatusOK, http.StatusBadRequest}, true, 1},
		{"Chunked", chunked + keepAlive, []int{http.StatusOK}, true, 1},
		{"AfterCRLF", keepAlive + "\r\n" + smuggle, []int{http.StatusOK, http.StatusBadRequest}, true, 1},
		{"AfterFoldedLength", rawPost("HTTP/1.1", []string{"Content-Length:", " 3"}, "abc") + smuggle,
			[]int{http.StatusOK, http.StatusBadRequest}, true, 1},
		{"AfterBareLineFeeds", strings.ReplaceAll(keepAlive, "\r\n", "\n") + strings.ReplaceAll(smuggle, "\r\n", "\n"),
			[]int{http.StatusOK, http.StatusBadRequest}, true, 1},
		{"AfterHTTP10", rawPost("HTTP/1.0", []string{"Connection: keep-alive", "Transfer-Encoding: chunked", "Content-Length: 3"}, "abc") + smuggle,
			[]int{http.StatusOK, http.StatusBadRequest}, true, 1},
		// The scanner reads "Content-Length " as another field; net/http
		// refuses the name.
		{"SpaceBeforeColon", rawPost("HTTP/1.1", []string{"Content-Length : 37", "Transfer-Encoding: chunked"},
			"0\r\n\r\nGET /hidden HTTP/1.1\r\nHost: x\r\n\r\n"), []int{http.StatusBadRequest}, true, 0},
		{"KeepAlive", keepAlive + keepAlive + "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			[]int{http.StatusOK, http.StatusOK, http.StatusOK}, true, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			served.Store(0)
			answers, closed := sendRaw(t, addr, tc.stream)
			var statuses []int
			for _, a := range answers {
				statuses = append(statuses, a.StatusCode)
			}
			if !slices.Equal(statuses, tc.statuses) || closed != tc.closed || served.Load() != tc.served {
				t.Fatalf("answers %v, closed %v, %d served; want %v, closed %v, %d served",
					statuses, closed, served.Load(), tc.statuses, tc.closed, tc.served)
			}
			last := answers[len(answers)-1]
			if !last.Close {
				t.Errorf("the last answer has no Connection: close")
			}
		})
	}
}

// TestFramingConnKeepsTheSocket: a handler that hijacks the connection
// (as the takeover writer does) still reaches the socket.
func TestFramingConnKeepsTheSocket(t *testing.T) {
	fds := make(chan uintptr, 1)
	engine := gin.New()
	engine.GET("/", func(c *gin.Context) {
		conn, _, err := http.NewResponseController(c.Writer).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		sc, ok := conn.(syscall.Conn)
		if !ok {
			t.Errorf("the hijacked %T has no SyscallConn", conn)
			fds <- 0
			return
		}
		raw, err := sc.SyscallConn()
		if err != nil {
			t.Error(err)
		}
		raw.Control(func(fd uintptr) { fds <- fd })
	})
	addr := framingServer(t, engine)
	sendRaw(t, addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if fd := <-fds; fd == 0 {
		t.Fatal("no socket behind the hijacked connection")
	}
}

// BenchmarkHeadScanner scans the head and body of a typical publish.
func BenchmarkHeadScanner(b *testing.B) {
	in := []byte("POST /fact HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: Go-http-client/1.1\r\n" +
		"Content-Length: 30\r\nAuthorization: Bearer 0123456789abcdef0123456789abcdef\r\n" +
		"Content-Type: application/json\r\nIdempotency-Key: 0192f0c4-6a2e-7c1a-9d5e-3b8c2f1e4a77\r\n" +
		"Accept-Encoding: gzip\r\n\r\n" + `{"info":"a fact worth sharing"}`[:30])
	s := &headScanner{limit: 1 << 20}
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		s.feed(in)
	}
	if s.done {
		b.Fatal("the scanner stopped")
	}
}
