//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

// epollReaders serves every subscriber from one goroutine: non-blocking
// sockets of its own (not Go's poller, which would be woken for each of
// them too), one epoll instance and one shared read buffer. A connection
// then costs its parser state and nothing else.
type epollReaders struct {
	epfd    int
	o       dialOptions
	req     []byte
	subs    []*subscriber // yet to connect, in order
	byFD    []*epollConn  // indexed by descriptor: they are small integers
	pending int           // connections without their snapshot yet
	buf     []byte
	stop    atomic.Bool
	done    chan struct{}
}

// epollConn is one subscriber's socket.
type epollConn struct {
	fd         int
	sub        *subscriber
	connecting bool
	ready      bool // snapshot received
}

func startEpollReaders(o dialOptions, subs []*subscriber) (*epollReaders, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	e := &epollReaders{
		epfd: epfd, o: o, req: subscribeRequest(o.addr.String()), subs: subs,
		buf: make([]byte, 64<<10), done: make(chan struct{}),
	}
	go e.loop()
	return e, nil
}

// Close implements readerSet.
func (e *epollReaders) Close() {
	e.stop.Store(true)
	<-e.done
}

func (e *epollReaders) loop() {
	// The loop blocks in epoll_wait outside the Go scheduler: give it a
	// thread of its own so it never waits for a P to come back.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(e.done)
	defer e.closeAll()
	events := make([]syscall.EpollEvent, 4096)
	for !e.stop.Load() {
		e.connectMore()
		timeout := 50
		if len(e.subs) > 0 {
			timeout = 5
		}
		n, err := syscall.EpollWait(e.epfd, events, timeout)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			fmt.Fprintf(os.Stderr, "loadgen: epoll_wait: %v\n", err)
			return
		}
		for _, ev := range events[:n] {
			if fd := int(ev.Fd); fd < len(e.byFD) && e.byFD[fd] != nil {
				e.handle(e.byFD[fd])
			}
		}
	}
}

// connectMore starts connections while fewer than inflight wait for their
// snapshot, so the server's accept queue never overflows (a dropped SYN
// costs a one-second retransmission).
func (e *epollReaders) connectMore() {
	for e.pending < e.o.inflight && len(e.subs) > 0 {
		s := e.subs[0]
		e.subs = e.subs[1:]
		fd, err := e.connect(s)
		if err != nil {
			s.end(err)
			continue
		}
		if fd >= len(e.byFD) {
			e.byFD = append(e.byFD, make([]*epollConn, fd+1-len(e.byFD))...)
		}
		e.byFD[fd] = &epollConn{fd: fd, sub: s, connecting: true}
		e.pending++
	}
}

// connect starts a non-blocking connect from the subscriber's source
// address and registers the socket for writability, which says the
// connection is established.
func (e *epollReaders) connect(s *subscriber) (int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	err = syscall.SetsockoptInt(fd, syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	if err == nil {
		err = syscall.Bind(fd, &syscall.SockaddrInet4{Addr: s.src.As4()})
	}
	if err == nil {
		err = syscall.Connect(fd, &syscall.SockaddrInet4{Addr: e.o.addr.Addr().As4(), Port: int(e.o.addr.Port())})
		if errors.Is(err, syscall.EINPROGRESS) {
			err = nil
		}
	}
	if err == nil {
		ev := syscall.EpollEvent{Events: syscall.EPOLLOUT, Fd: int32(fd)}
		err = syscall.EpollCtl(e.epfd, syscall.EPOLL_CTL_ADD, fd, &ev)
	}
	if err != nil {
		syscall.Close(fd)
		return -1, fmt.Errorf("connect %s from %s: %w", e.o.addr, s.src, err)
	}
	return fd, nil
}

func (e *epollReaders) handle(c *epollConn) {
	if c.connecting {
		if err := e.established(c); err != nil {
			e.drop(c, err)
		}
		return
	}
	n, err := syscall.Read(c.fd, e.buf)
	switch {
	case errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR):
		return
	case err != nil:
		e.drop(c, fmt.Errorf("read: %w", err))
		return
	case n == 0:
		e.drop(c, errors.New("connection closed by the server"))
		return
	}
	got, err := c.sub.feed(e.buf[:n], time.Now().UnixNano())
	if got {
		c.ready = true
		e.pending--
	}
	if err != nil {
		e.drop(c, err)
	}
}

// established finishes a connect: it checks the outcome, sends the request
// and switches the socket to readability.
func (e *epollReaders) established(c *epollConn) error {
	soErr, err := syscall.GetsockoptInt(c.fd, syscall.SOL_SOCKET, syscall.SO_ERROR)
	if err == nil && soErr != 0 {
		err = syscall.Errno(soErr)
	}
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	n, err := syscall.Write(c.fd, e.req)
	if err == nil && n != len(e.req) {
		err = errors.New("short write")
	}
	if err != nil {
		return fmt.Errorf("send request: %w", err)
	}
	c.connecting = false
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(c.fd)}
	if err := syscall.EpollCtl(e.epfd, syscall.EPOLL_CTL_MOD, c.fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// drop ends a connection that failed or that the server closed.
func (e *epollReaders) drop(c *epollConn, err error) {
	c.sub.end(err)
	if !c.ready {
		e.pending--
	}
	e.byFD[c.fd] = nil
	syscall.Close(c.fd) // closing also removes it from the epoll set
}

func (e *epollReaders) closeAll() {
	for fd, c := range e.byFD {
		if c != nil {
			syscall.Close(fd)
		}
	}
	e.byFD = nil
	syscall.Close(e.epfd)
}
