//go:build linux

package hub

import (
	"cmp"
	"errors"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"factstream/sse"
)

// yieldEvery is how many streams the writer serves before it lets other
// goroutines run, and checks whether the network is due its turn.
const yieldEvery = 32

// maxIovecs stays below the kernel's IOV_MAX (1024) with room for the chunk
// header and trailer.
const maxIovecs = 1000

// directConn is a taken-over stream. Only the writer goroutine uses it,
// except id, which the poller reports.
type directConn struct {
	sub *Subscriber
	raw syscall.RawConn
	// fd is the socket's descriptor, written to directly: only the writer
	// closes the connection, in end, which then sets fd to -1 so that a
	// stray write fails instead of reaching a reused descriptor.
	fd        int
	st        Stream
	id        uint64
	cur       sse.Cursor // the last fact sent
	sent      int
	pending   []byte // bytes accepted for the stream but not yet written
	stuckAt   time.Time
	lastWrite time.Time
	events    []Event
	iov       [][]byte
	hdr       []byte
	ended     bool
}

// writer owns every taken-over connection of a hub.
type writer struct {
	h       *Hub
	epfd    int
	eventfd int // wakes the poller at shutdown
	// tickEvery paces keepalives and stall checks.
	tickEvery time.Duration
	wake      chan struct{}
	quit      chan struct{}
	turn      *netTurn
	done      sync.WaitGroup
	conns     map[uint64]*directConn
	nextID    uint64

	// Under h.mu: what the poller and Publish report to the writer.
	gone     []uint64
	writable []uint64
	dirty    []*Subscriber
}

// CanAttach reports whether this hub can take streams over (it can on
// Linux).
func (h *Hub) CanAttach() bool { return true }

// Attach hands a stream over to the hub's writer. On error the caller
// still owns the connection and the subscription.
func (h *Hub) Attach(sub *Subscriber, st Stream) error {
	sc, ok := st.Conn.(syscall.Conn)
	if !ok {
		return ErrUnsupported
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return ErrUnsupported
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	if _, ok := h.subs[sub]; !ok {
		// Ended while its snapshot was being written.
		if err := sub.Err(); err != nil {
			return err
		}
		return ErrSlow
	}
	if h.w == nil {
		w, err := startWriter(h, st.Heartbeat)
		if err != nil {
			return err
		}
		h.w = w
	}
	w := h.w
	w.nextID++
	dc := &directConn{sub: sub, raw: raw, st: st, id: w.nextID, cur: sse.Cursor{Last: st.Last}, lastWrite: time.Now()}
	ev := unix.EpollEvent{Events: unix.EPOLLRDHUP | unix.EPOLLOUT | unix.EPOLLET}
	setID(&ev, dc.id)
	var cerr error
	err = raw.Control(func(fd uintptr) {
		if st.WriteTimeout > 0 {
			// A client that vanished without closing (a pulled cable)
			// never acknowledges the next keepalive: the kernel then
			// reports the connection failed after WriteTimeout instead of
			// after minutes of retransmissions. Best effort.
			unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(st.WriteTimeout.Milliseconds()))
		}
		cerr = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
		dc.fd = int(fd)
	})
	if err != nil || cerr != nil {
		return errors.Join(ErrUnsupported, err, cerr)
	}
	sub.direct = dc
	w.dirty = append(w.dirty, sub) // it may hold events already
	w.signal()
	return nil
}

// epoll_event's data is a 64-bit union; x/sys/unix splits it in two.
func setID(ev *unix.EpollEvent, id uint64) {
	ev.Fd = int32(uint32(id))
	ev.Pad = int32(uint32(id >> 32))
}

func getID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

func startWriter(h *Hub, heartbeat time.Duration) (*writer, error) {
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
	w := &writer{
		h: h, epfd: epfd, eventfd: efd, turn: turn,
		tickEvery: min(max(heartbeat/2, 10*time.Millisecond), time.Second),
		wake:      make(chan struct{}, 1),
		quit:      make(chan struct{}),
		conns:     make(map[uint64]*directConn),
	}
	w.done.Add(3)
	go w.poll()
	go w.run()
	go turn.relay(w.done.Done)
	return w, nil
}

// signal wakes the writer; a wake-up already pending is enough.
func (w *writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// markDirty is called by Publish, under h.mu, for a taken-over subscriber
// whose queue just became non-empty or that was just dropped.
func (w *writer) markDirty(s *Subscriber) {
	w.dirty = append(w.dirty, s)
	w.signal()
}

// stop ends the writer and the poller and waits for them. The hub has
// ended every subscription already.
func (w *writer) stop() {
	close(w.quit)
	unix.Write(w.eventfd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	w.done.Wait()
	unix.Close(w.epfd)
	unix.Close(w.eventfd)
}

// poll reports connections the client closed, and connections that can
// take more bytes, to the writer.
func (w *writer) poll() {
	defer w.done.Done()
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		select {
		case <-w.quit:
			return
		default:
		}
		if err != nil {
			w.h.mu.Lock()
			for id := range w.conns {
				w.gone = append(w.gone, id)
			}
			w.h.mu.Unlock()
			w.signal()
			return
		}
		w.h.mu.Lock()
		for i := range events[:n] {
			id := getID(&events[i])
			switch {
			case id == 0:
			case events[i].Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0:
				w.gone = append(w.gone, id)
			case events[i].Events&unix.EPOLLOUT != 0:
				w.writable = append(w.writable, id)
			}
		}
		w.h.mu.Unlock()
		w.signal()
	}
}

// run is the writer: it writes what Publish queued, keepalives, and ends
// streams. It never holds the hub's lock while writing.
func (w *writer) run() {
	defer w.done.Done()
	defer w.turn.close()
	tick := time.NewTicker(w.tickEvery)
	defer tick.Stop()
	var dirty []*Subscriber
	var gone, writable []uint64
	for {
		select {
		case <-w.quit:
			w.endAll()
			return
		case <-w.wake:
		case now := <-tick.C:
			w.tick(now)
		}
		w.h.mu.Lock()
		dirty, w.dirty = w.dirty, dirty[:0]
		gone, w.gone = w.gone, gone[:0]
		writable, w.writable = w.writable, writable[:0]
		w.h.mu.Unlock()
		// Register new streams first: the poller may report one of them
		// gone in the same round.
		for _, s := range dirty {
			if dc := s.direct; dc != nil && !dc.ended {
				w.conns[dc.id] = dc
			}
		}
		for _, id := range gone {
			if dc := w.conns[id]; dc != nil {
				w.end(dc, failure(dc))
			}
		}
		for _, id := range writable {
			if dc := w.conns[id]; dc != nil {
				w.flush(dc)
			}
		}
		// Streams in the order they were taken over, every round: one is
		// then written to once a round. In the order Publish found them
		// (a map's), one written to early in a round and late in the next
		// made its client wait two rounds.
		slices.SortFunc(dirty, byAttachOrder)
		for i, s := range dirty {
			if dc := s.direct; dc != nil {
				w.flush(dc)
			}
			if i%yieldEvery == yieldEvery-1 {
				// A round over thousands of streams takes milliseconds of
				// system calls: let request handlers (publishes) run.
				if now := time.Now(); w.turn.due(now) {
					w.turn.take(now)
				} else {
					runtime.Gosched()
				}
			}
		}
		clear(dirty)
	}
}

func byAttachOrder(a, b *Subscriber) int {
	return cmp.Compare(directID(a), directID(b))
}

func directID(s *Subscriber) uint64 {
	if s.direct == nil {
		return 0
	}
	return s.direct.id
}

// flush writes what the stream has waiting: leftover bytes first, then its
// queue, as one chunk per write.
func (w *writer) flush(dc *directConn) {
	if dc.ended {
		return
	}
	select {
	case <-dc.sub.Done():
		w.end(dc, dc.sub.Err())
		return
	default:
	}
	if len(dc.pending) > 0 {
		if err := w.writePending(dc); err != nil || len(dc.pending) > 0 {
			return
		}
	}
	dc.events = dc.sub.Take(dc.events[:0])
	defer clear(dc.events)
	events := dc.events
	for len(events) > 0 {
		n := min(len(events), maxIovecs)
		if err := w.writeChunk(dc, events[:n]); err != nil || len(dc.pending) > 0 {
			if err == nil && n < len(events) {
				// The socket is full: keep the rest as bytes, in order.
				for _, ev := range events[n:] {
					dc.pending = w.appendChunk(dc, dc.pending, ev)
				}
			}
			return
		}
		events = events[n:]
	}
}

// writeChunk writes the events that follow the cursor as one chunk with
// one writev.
func (w *writer) writeChunk(dc *directConn, events []Event) error {
	dc.iov = append(dc.iov[:0], nil)
	size := 0
	for _, ev := range events {
		switch dc.cur.Next(ev.Seq) {
		case sse.Skip:
			continue
		case sse.Gap:
			w.end(dc, ErrGap)
			return ErrGap
		}
		dc.iov = append(dc.iov, ev.Frame)
		size += len(ev.Frame)
	}
	if size == 0 {
		return nil
	}
	count := len(dc.iov) - 1
	dc.hdr = sse.AppendChunkHeader(dc.hdr[:0], size)
	dc.iov[0] = dc.hdr
	dc.iov = append(dc.iov, []byte(sse.ChunkEnd))
	total := size + len(dc.hdr) + 2
	n, err := w.writev(dc, dc.iov)
	dc.sent += count
	w.h.delivered.Add(uint64(count))
	if err != nil {
		w.end(dc, err)
		return err
	}
	if n < total {
		dc.pending = appendUnwritten(dc.pending[:0], dc.iov, n)
		dc.stuckAt = time.Now()
	}
	return nil
}

// appendChunk appends one event as its own chunk, for the pending bytes.
func (w *writer) appendChunk(dc *directConn, dst []byte, ev Event) []byte {
	switch dc.cur.Next(ev.Seq) {
	case sse.Skip:
		return dst
	case sse.Gap:
		return dst // the gap is found, and the stream ended, on the next flush
	}
	dc.sent++
	w.h.delivered.Add(1)
	return sse.AppendChunk(dst, ev.Frame)
}

func appendUnwritten(dst []byte, iov [][]byte, written int) []byte {
	for _, b := range iov {
		if written >= len(b) {
			written -= len(b)
			continue
		}
		dst = append(dst, b[written:]...)
		written = 0
	}
	return dst
}

func (w *writer) writePending(dc *directConn) error {
	n, err := w.writev(dc, [][]byte{dc.pending})
	if err != nil {
		w.end(dc, err)
		return err
	}
	dc.pending = dc.pending[:copy(dc.pending, dc.pending[n:])]
	if len(dc.pending) > 0 {
		return nil
	}
	dc.stuckAt = time.Time{}
	return nil
}

// writev writes without blocking: a full socket buffer is not an error, it
// leaves bytes for the next EPOLLOUT.
func (w *writer) writev(dc *directConn, iov [][]byte) (int, error) {
	// Not through raw.Write: its locking and poller bookkeeping cost as
	// much as the writev itself does in user space.
	n, werr := unix.Writev(dc.fd, iov)
	if errors.Is(werr, unix.EAGAIN) {
		return 0, nil
	}
	if werr != nil {
		return 0, werr
	}
	dc.lastWrite = time.Now()
	return n, nil
}

// tick sends keepalives to idle streams and drops stalled ones.
func (w *writer) tick(now time.Time) {
	for _, dc := range w.conns {
		switch {
		case len(dc.pending) > 0:
			if now.Sub(dc.stuckAt) > dc.st.WriteTimeout && dc.st.WriteTimeout > 0 {
				w.end(dc, ErrStalled)
			}
		case now.Sub(dc.lastWrite) >= dc.st.Heartbeat:
			if _, err := w.writev(dc, [][]byte{[]byte(sse.KeepaliveChunk)}); err != nil {
				w.end(dc, err)
			}
		}
	}
}

// end closes a stream once: the subscription, the connection, the report.
func (w *writer) end(dc *directConn, why error) {
	if dc.ended {
		return
	}
	dc.ended = true
	delete(w.conns, dc.id)
	dc.raw.Control(func(fd uintptr) { unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, int(fd), nil) })
	if len(dc.pending) == 0 {
		switch {
		case errors.Is(why, ErrClosed):
			w.writev(dc, [][]byte{[]byte(sse.LastChunk)})
		case errors.Is(why, ErrReset):
			w.writev(dc, [][]byte{[]byte(sse.ResetChunk), []byte(sse.LastChunk)})
		}
	}
	dc.st.Conn.Close()
	dc.fd = -1
	if errors.Is(why, ErrStalled) {
		dc.sub.Stalled()
	} else {
		dc.sub.Close()
	}
	w.h.mu.Lock()
	dc.sub.direct = nil
	w.h.mu.Unlock()
	if dc.st.OnEnd != nil {
		dc.st.OnEnd(dc.sent, why)
	}
}

// failure tells why the poller found a connection failed. ETIMEDOUT is
// TCP_USER_TIMEOUT: the client acknowledged nothing, or kept its receive
// window shut, for WriteTimeout. That is a stalled client, whichever of the
// kernel and the writer's own tick notices first.
func failure(dc *directConn) error {
	var soErr int
	dc.raw.Control(func(fd uintptr) {
		soErr, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
	})
	if syscall.Errno(soErr) == unix.ETIMEDOUT {
		return ErrStalled
	}
	return ErrClientGone
}

// endAll ends every stream at shutdown.
func (w *writer) endAll() {
	w.h.mu.Lock()
	for _, s := range w.dirty {
		if s.direct != nil {
			w.conns[s.direct.id] = s.direct
		}
	}
	w.h.mu.Unlock()
	for _, dc := range w.conns {
		w.end(dc, ErrClosed)
	}
}
