//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// poster posts facts over one raw keep-alive HTTP/1.1 connection: one
// request in flight, the request written in one call, the response read
// with one buffered reader. It costs far less than net/http's client.
type poster struct {
	addr string
	conn net.Conn
	br   *bufio.Reader
	req  []byte
	body []byte
}

// post sends fact n of publisher pub and returns the response status.
func (p *poster) post(pub int, n int64) (int, error) {
	if err := p.dial(); err != nil {
		return 0, err
	}
	p.body = append(p.body[:0], `{"info":"`...)
	p.body = appendInfo(p.body, pub, n, time.Now().UnixNano())
	p.body = append(p.body, `"}`...)
	p.req = append(p.req[:0], "POST /fact HTTP/1.1\r\nHost: "...)
	p.req = append(p.req, p.addr...)
	p.req = append(p.req, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	p.req = strconv.AppendInt(p.req, int64(len(p.body)), 10)
	p.req = append(p.req, "\r\n\r\n"...)
	p.req = append(p.req, p.body...)
	return p.roundTrip()
}

// get sends GET path and returns the response status.
func (p *poster) get(path string) (int, error) {
	if err := p.dial(); err != nil {
		return 0, err
	}
	p.req = append(p.req[:0], "GET "+path+" HTTP/1.1\r\nHost: "+p.addr+"\r\n\r\n"...)
	return p.roundTrip()
}

func (p *poster) dial() error {
	if p.conn != nil {
		return nil
	}
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", p.addr, err)
	}
	p.conn, p.br = c, bufio.NewReaderSize(c, 4096)
	return nil
}

// roundTrip writes p.req and reads the response.
func (p *poster) roundTrip() (int, error) {
	if _, err := p.conn.Write(p.req); err != nil {
		p.close()
		return 0, fmt.Errorf("send: %w", err)
	}
	status, keep, err := readResponse(p.br)
	if err != nil || !keep {
		p.close()
	}
	if err != nil {
		return 0, fmt.Errorf("read response: %w", err)
	}
	return status, nil
}

func (p *poster) close() {
	if p.conn != nil {
		p.conn.Close()
		p.conn = nil
	}
}

// readResponse reads one response and discards its body; keep says whether
// the connection may carry the next request.
func readResponse(br *bufio.Reader) (status int, keep bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("malformed status line %q", line)
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, false, fmt.Errorf("malformed status line %q", line)
	}
	length, chunked, keep := int64(0), false, true
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, _ := bytes.Cut(line, []byte{':'})
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			length, _ = strconv.ParseInt(string(value), 10, 64)
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			keep = !bytes.EqualFold(value, []byte("close"))
		}
	}
	if chunked {
		return status, keep, discardChunked(br)
	}
	_, err = br.Discard(int(length))
	return status, keep, err
}

func discardChunked(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, err := strconv.ParseInt(string(line), 16, 64)
		if err != nil {
			return fmt.Errorf("malformed chunk size %q", line)
		}
		if size == 0 {
			for { // trailers up to the blank line
				line, err := br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if _, err := br.Discard(int(size) + 2); err != nil {
			return err
		}
	}
}

// publishPlan says what to publish: facts numbers in total (0 for no
// bound), at rate per second overall (0 for as fast as possible), or for
// duration.
type publishPlan struct {
	addr       string
	run        int64 // run number, for publisher ids
	publishers int
	facts      int64
	rate       float64
	duration   time.Duration
}

// publishResult is what the publishers achieved.
type publishResult struct {
	start    time.Time
	lastAck  atomic.Int64 // unix nanos of the latest 201
	acked    []atomic.Uint64
	count    atomic.Int64 // 201 responses
	failures atomic.Int64 // other statuses and errors
	firstErr atomic.Value // string: the first failure, for the report
	latency  histogram
}

// ackedBits returns the acknowledged fact numbers as a bitset.
func (r *publishResult) ackedBits() []uint64 {
	out := make([]uint64, len(r.acked))
	for i := range r.acked {
		out[i] = r.acked[i].Load()
	}
	return out
}

// rate is the achieved publish rate: acknowledged facts per second from
// the first send to the last acknowledgement.
func (r *publishResult) rate() float64 {
	d := time.Duration(r.lastAck.Load() - r.start.UnixNano())
	if d <= 0 {
		return 0
	}
	return float64(r.count.Load()) / d.Seconds()
}

// publish runs the plan's publishers until every fact is sent, the
// duration is over or ctx ends. Fact numbers come from one counter, so
// they are unique across publishers; with a rate, number n is sent no
// earlier than start + n/rate.
func publish(ctx context.Context, plan publishPlan) *publishResult {
	r := &publishResult{start: time.Now()}
	if plan.facts > 0 {
		r.acked = make([]atomic.Uint64, (plan.facts+63)/64)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for pub := range plan.publishers {
		wg.Go(func() {
			p := &poster{addr: plan.addr}
			defer p.close()
			for ctx.Err() == nil {
				n := next.Add(1) - 1
				if !r.due(plan, n) {
					return
				}
				r.send(p, publisherID(plan.run, pub), n)
			}
		})
	}
	wg.Wait()
	return r
}

// due waits until fact n may be sent, and says whether it should be.
func (r *publishResult) due(plan publishPlan, n int64) bool {
	if plan.facts > 0 && n >= plan.facts {
		return false
	}
	if plan.duration > 0 && time.Since(r.start) >= plan.duration {
		return false
	}
	if plan.rate > 0 {
		at := r.start.Add(time.Duration(float64(n) * float64(time.Second) / plan.rate))
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
	}
	return true
}

func (r *publishResult) send(p *poster, pub int, n int64) {
	sent := time.Now()
	status, err := p.post(pub, n)
	done := time.Now()
	if err != nil {
		r.fail(err)
		time.Sleep(10 * time.Millisecond) // the connection broke: do not spin
		return
	}
	if status != 201 {
		r.fail(fmt.Errorf("status %d", status))
		return
	}
	r.latency.Record(done.Sub(sent))
	r.count.Add(1)
	storeMax(&r.lastAck, done.UnixNano())
	if r.acked != nil {
		r.acked[n/64].Or(uint64(1) << (n % 64))
	}
}

func (r *publishResult) fail(err error) {
	r.failures.Add(1)
	r.firstErr.CompareAndSwap(nil, err.Error())
}
