//go:build linux

package takeover

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"factstream/hub"
	"factstream/sse"
)

// Supported reports whether streams can be taken over on this platform.
const Supported = true

// yieldEvery is how many streams the writer serves before it lets other
// goroutines run, and checks whether the network is due its turn.
const yieldEvery = 32

// engine starts the loop with the first stream, and stops it once.
type engine struct {
	mu     sync.Mutex
	closed bool
	loop   *loop
	// writev is the write system call, unix.Writev when nil.
	writev func(fd int, iov [][]byte) (int, error)
}

func (e *engine) attach(h Handoffer, sub *hub.Subscriber, nc net.Conn, st Stream) error {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return ErrUnsupported
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return ErrUnsupported
	}
	l, err := e.start(st.Heartbeat)
	if err != nil {
		return err
	}
	return l.attach(h, sub, nc, raw, st)
}

func (e *engine) start(heartbeat time.Duration) (*loop, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, hub.ErrClosed
	}
	if e.loop == nil {
		l, err := startLoop(heartbeat, e.writev)
		if err != nil {
			return nil, err
		}
		e.loop = l
	}
	return e.loop, nil
}

// failed returns why the writer can take no more streams, if it failed.
func (e *engine) failed() error {
	e.mu.Lock()
	l := e.loop
	e.mu.Unlock()
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

func (e *engine) close() {
	e.mu.Lock()
	e.closed = true
	l := e.loop
	e.loop = nil // a second Close has nothing to stop
	e.mu.Unlock()
	if l != nil {
		l.stop()
	}
}

// loop owns every taken-over connection: one goroutine writes (run), one
// waits on epoll (poll) and one relays the network's turn (netTurn).
type loop struct {
	epfd    int
	eventfd int // wakes the poller at shutdown
	// tickEvery paces keepalives and stall checks.
	tickEvery time.Duration
	writev    func(fd int, iov [][]byte) (int, error)
	wake      chan struct{}
	quit      chan struct{}
	turn      *netTurn
	done      sync.WaitGroup
	conns     map[uint64]*conn // the writer goroutine's alone

	// The writer goroutine's scratch space, shared by the streams it
	// writes one after the other, so that no stream keeps buffers of its
	// own: the events taken from a queue, the chunk's header and trailer,
	// the slices of one writev.
	events   []hub.Event
	hdr      []byte
	chunkEnd []byte
	iov      [][]byte

	// addFD is l.register as a func value, made once: RawConn.Control
	// takes a function, and a closure per stream would be an allocation
	// per stream. attach calls it under mu, with adding set.
	addFD func(fd uintptr)

	// Under mu: what attach, the hub and the poller report to the writer.
	mu       sync.Mutex
	stopped  bool
	nextID   uint64
	attached []*conn
	dirty    []*conn
	gone     []uint64
	writable []uint64
	// failed is set for good when epoll_wait fails: the writer then ends
	// every stream it holds, and refuses new ones.
	failed error
	// adding is the stream attach registers through addFD; addErr is
	// what addFD leaves for it.
	adding *conn
	addErr error
}

// epoll_event's data is a 64-bit union; x/sys/unix splits it in two.
func setID(ev *unix.EpollEvent, id uint64) {
	ev.Fd = int32(uint32(id))
	ev.Pad = int32(uint32(id >> 32))
}

func getID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

func startLoop(heartbeat time.Duration, writev func(int, [][]byte) (int, error)) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, errors.Join(ErrUnsupported, err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, errors.Join(ErrUnsupported, err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setID(&ev, 0) // id 0 is the eventfd
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(efd)
		return nil, errors.Join(ErrUnsupported, err)
	}
	turn, err := newNetTurn()
	if err != nil {
		unix.Close(epfd)
		unix.Close(efd)
		return nil, errors.Join(ErrUnsupported, err)
	}
	if writev == nil {
		writev = unix.Writev
	}
	l := &loop{
		epfd: epfd, eventfd: efd, turn: turn, writev: writev,
		tickEvery: min(max(heartbeat/2, 10*time.Millisecond), time.Second),
		wake:      make(chan struct{}, 1),
		quit:      make(chan struct{}),
		conns:     make(map[uint64]*conn),
		chunkEnd:  []byte(sse.ChunkEnd),
	}
	l.addFD = l.register
	l.done.Add(3)
	go l.poll()
	go l.run()
	go turn.relay(l.done.Done)
	return l, nil
}

// attach hands a stream to the loop. On error the caller still owns the
// connection and the subscription.
func (l *loop) attach(h Handoffer, sub *hub.Subscriber, nc net.Conn, raw syscall.RawConn, st Stream) error {
	c := &conn{loop: l, sub: sub, nc: nc, st: st, cur: sse.Cursor{Last: st.Last}, lastWrite: time.Now()}
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return hub.ErrClosed
	}
	if l.failed != nil {
		l.mu.Unlock()
		return l.failed
	}
	l.nextID++
	c.id = l.nextID
	l.mu.Unlock()
	if err := h.Handoff(sub, c); err != nil {
		return err
	}
	// The hub may wake the loop for c from here on; the loop leaves c
	// alone until it finds it in attached.
	//
	// Under mu, so that the poller cannot report c before the loop learns
	// of it: it reports under mu too, and the loop registers what was
	// attached before it looks at what was reported.
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return hub.ErrClosed
	}
	if l.failed != nil {
		return l.failed
	}
	l.adding = c
	err := raw.Control(l.addFD)
	cerr := l.addErr
	l.adding, l.addErr = nil, nil
	if err != nil || cerr != nil {
		return errors.Join(ErrUnsupported, err, cerr)
	}
	l.attached = append(l.attached, c)
	l.signal()
	return nil
}

// register adds the socket fd of l.adding to epoll, through RawConn.Control
// (as l.addFD), with l.mu held; an error is left in l.addErr.
func (l *loop) register(fd uintptr) {
	c := l.adding
	if c.st.WriteTimeout > 0 {
		// A client that vanished without closing (a pulled cable) never
		// acknowledges the next keepalive: the kernel then reports the
		// connection failed after WriteTimeout instead of after minutes
		// of retransmissions. Best effort.
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(c.st.WriteTimeout.Milliseconds()))
	}
	ev := unix.EpollEvent{Events: unix.EPOLLRDHUP | unix.EPOLLOUT | unix.EPOLLET}
	setID(&ev, c.id)
	l.addErr = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	c.fd = int(fd)
}

// signal wakes the writer; a wake-up already pending is enough.
func (l *loop) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// markDirty queues c for the writer (see conn.Wake). The hub may hold its
// lock.
func (l *loop) markDirty(c *conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	l.dirty = append(l.dirty, c)
	l.signal()
}

// stop ends the writer and the poller and waits for them; the writer ends
// every stream it holds on its way out.
func (l *loop) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	close(l.quit)
	unix.Write(l.eventfd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	l.done.Wait()
	unix.Close(l.epfd)
	unix.Close(l.eventfd)
}

// poll reports connections the client closed, and connections that can
// take more bytes, to the writer.
func (l *loop) poll() {
	defer l.done.Done()
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(l.epfd, events, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		select {
		case <-l.quit:
			return
		default:
		}
		if err != nil {
			// The streams are the writer's: it ends them when it learns
			// of the failure.
			l.mu.Lock()
			l.failed = fmt.Errorf("%w: epoll_wait: %w", ErrUnsupported, err)
			l.mu.Unlock()
			l.signal()
			return
		}
		l.mu.Lock()
		for i := range events[:n] {
			id := getID(&events[i])
			switch {
			case id == 0:
			case events[i].Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0:
				l.gone = append(l.gone, id)
			case events[i].Events&unix.EPOLLOUT != 0:
				l.writable = append(l.writable, id)
			}
		}
		l.mu.Unlock()
		l.signal()
	}
}

// run is the writer: it writes what the hub queued, keepalives, and ends
// streams. It never holds a lock while writing.
func (l *loop) run() {
	defer l.done.Done()
	defer l.turn.close()
	tick := time.NewTicker(l.tickEvery)
	defer tick.Stop()
	var attached, dirty []*conn
	var gone, writable []uint64
	for {
		select {
		case <-l.quit:
			l.endAll()
			return
		case <-l.wake:
		case now := <-tick.C:
			l.tick(now)
		}
		l.mu.Lock()
		attached, l.attached = l.attached, attached[:0]
		dirty, l.dirty = l.dirty, dirty[:0]
		gone, l.gone = l.gone, gone[:0]
		writable, l.writable = l.writable, writable[:0]
		failed := l.failed
		l.mu.Unlock()
		// Register new streams first: the poller may report one of them
		// gone in the same round. Each may hold events already.
		for _, c := range attached {
			c.registered = true
			l.conns[c.id] = c
			dirty = append(dirty, c)
		}
		if failed != nil {
			// Nothing tells of closing clients or writable sockets any
			// more: end every stream, and its client reconnects.
			for _, c := range l.conns {
				l.end(c, failed)
			}
		}
		for _, id := range gone {
			if c := l.conns[id]; c != nil {
				l.end(c, failure(c))
			}
		}
		for _, id := range writable {
			if c := l.conns[id]; c != nil {
				l.flush(c)
			}
		}
		// Streams in the order they were taken over, every round: one is
		// then written to once a round. In the order the hub found them
		// (a map's), one written to early in a round and late in the next
		// made its client wait two rounds.
		slices.SortFunc(dirty, byAttachOrder)
		for i, c := range dirty {
			l.flush(c)
			if i%yieldEvery == yieldEvery-1 {
				// A round over thousands of streams takes milliseconds of
				// system calls: let request handlers (publishes) run.
				if now := time.Now(); l.turn.due(now) {
					l.turn.take(now)
				} else {
					runtime.Gosched()
				}
			}
		}
		clear(attached)
		clear(dirty)
	}
}

func byAttachOrder(a, b *conn) int { return cmp.Compare(a.id, b.id) }

// endAll ends every stream at shutdown.
func (l *loop) endAll() {
	l.mu.Lock()
	attached := l.attached
	l.attached = nil
	l.mu.Unlock()
	for _, c := range attached {
		c.registered = true
		l.conns[c.id] = c
	}
	for _, c := range l.conns {
		l.end(c, hub.ErrClosed)
	}
}
