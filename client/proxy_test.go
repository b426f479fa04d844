package client_test

import (
	"io"
	"net"
	"sync"
	"testing"
)

// proxy is a TCP proxy that fails the way networks do: it cuts every live
// connection at once, refuses connections while it is down, and can lose
// an answer after the server got the request.
type proxy struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	down     bool
	loseNext bool
	accepted int
	wg       sync.WaitGroup
}

func startProxy(tb testing.TB, target string) *proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.close)
	return p
}

func (p *proxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down, lose := p.down, p.loseNext
		p.loseNext = false
		p.accepted++
		p.mu.Unlock()
		if down {
			client.Close()
			continue
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns[client], p.conns[server] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(server, client)
		if lose {
			go p.loseAnswer(client, server)
		} else {
			go p.pipe(client, server)
		}
	}
}

// pipe copies src to dst until either side ends, then closes both.
func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	io.Copy(dst, src)
	p.drop(dst, src)
}

// loseAnswer waits for the server's first byte of answer, which comes
// only once the request was processed, and cuts both sides without
// passing it on.
func (p *proxy) loseAnswer(client, server net.Conn) {
	defer p.wg.Done()
	server.Read(make([]byte, 1))
	p.drop(client, server)
}

func (p *proxy) drop(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		c.Close()
		delete(p.conns, c)
	}
}

// Cut closes every live connection and returns how many there were.
func (p *proxy) Cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns) / 2
	for c := range p.conns {
		c.Close()
	}
	return n
}

// SetDown makes the proxy refuse (accept and close) new connections, or
// forward them again.
func (p *proxy) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

// LoseNextAnswer makes the next connection lose the server's answer.
func (p *proxy) LoseNextAnswer() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.loseNext = true
}

// Accepted is the number of connections clients opened.
func (p *proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

func (p *proxy) close() {
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}
