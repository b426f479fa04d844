//go:build linux

package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// ipBindAddressNoPort (IP_BIND_ADDRESS_NO_PORT, linux/in.h) defers the
// choice of the local port from bind to connect, where the kernel can reuse
// a port towards another destination: binding a source address would
// otherwise take a port for good.
const ipBindAddressNoPort = 24

// readerSet connects subscribers and reads their streams until Close.
type readerSet interface {
	// Close ends every connection and returns once no reader touches a
	// subscriber any more.
	Close()
}

// dialOptions say where and how fast subscribers connect.
type dialOptions struct {
	addr     netip.AddrPort // the server
	inflight int            // connections at most waiting for their snapshot
	bufSize  int            // read buffer of each goroutine reader
}

// goroutineReaders reads each subscriber on its own goroutine, through Go's
// network poller, with a small buffer per connection.
type goroutineReaders struct {
	mu      sync.Mutex
	conns   []net.Conn
	closing bool
	wg      sync.WaitGroup
	cancel  context.CancelFunc
}

func startGoroutineReaders(ctx context.Context, o dialOptions, subs []*subscriber) *goroutineReaders {
	ctx, cancel := context.WithCancel(ctx)
	g := &goroutineReaders{cancel: cancel}
	sem := make(chan struct{}, o.inflight)
	req := subscribeRequest(o.addr.String())
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for _, s := range subs {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			g.wg.Add(1)
			go g.serve(ctx, o, req, s, sem)
		}
	}()
	return g
}

// serve connects one subscriber and reads it; it frees its slot in sem
// once the snapshot arrived (or the connection failed).
func (g *goroutineReaders) serve(ctx context.Context, o dialOptions, req []byte, s *subscriber, sem chan struct{}) {
	defer g.wg.Done()
	released := false
	release := func() {
		if !released {
			released = true
			<-sem
		}
	}
	defer release()
	conn, err := dialFrom(ctx, s.src, o.addr)
	if err == nil {
		err = g.track(conn)
	}
	if err == nil {
		_, err = conn.Write(req)
	}
	if err != nil {
		s.end(err)
		return
	}
	buf := make([]byte, o.bufSize)
	for {
		n, rerr := conn.Read(buf)
		if n > 0 {
			got, perr := s.feed(buf[:n], time.Now().UnixNano())
			if got {
				release()
			}
			if perr != nil {
				rerr = perr
			}
		}
		if rerr != nil {
			if !g.isClosing() {
				s.end(rerr)
			}
			return
		}
	}
}

func (g *goroutineReaders) track(c net.Conn) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing {
		c.Close()
		return net.ErrClosed
	}
	g.conns = append(g.conns, c)
	return nil
}

func (g *goroutineReaders) isClosing() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closing
}

// Close implements readerSet.
func (g *goroutineReaders) Close() {
	g.mu.Lock()
	g.closing = true
	conns := g.conns
	g.conns = nil
	g.mu.Unlock()
	g.cancel()
	for _, c := range conns {
		c.Close()
	}
	g.wg.Wait()
}

// dialFrom opens a TCP connection from the local address src.
func dialFrom(ctx context.Context, src netip.Addr, dst netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{
		LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0)),
		Timeout:   10 * time.Second,
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
	conn, err := d.DialContext(ctx, "tcp4", dst.String())
	if err != nil {
		return nil, fmt.Errorf("dial %s from %s: %w", dst, src, err)
	}
	return conn, nil
}
