//go:build linux

package takeover

import (
	"net"
	"runtime"
	"testing"
	"time"
)

// An idle taken-over stream is what a server with many streams holds most
// of, so what each one keeps is bounded: its subscription (the subscriber,
// 96 bytes, and its two channels) and the writer's state for it (176
// bytes), about 500 bytes in four objects besides the connection itself.
// A closure made per stream, a buffer of its own, or a field that takes a
// struct into the next size class of Go's allocator shows here first: each
// costs an object, or 16 bytes or more, per stream. Taking a stream over
// allocates little more than that (the connection's RawConn besides): what
// is thrown away at once still raises the heap's peak while thousands of
// clients connect.
func TestIdleTakenOverStreamHoldsLittle(t *testing.T) {
	const (
		// Streams taken over before the measure, so that the maps of the
		// hub and the writer have grown to 1,024 slots: the measured ones
		// then stay below 7/8 of that and never grow them.
		before = 460
		n      = 400
	)
	f := newFixture(t, 0)
	conns := serverConns(t, before+n)
	st := Stream{Heartbeat: time.Hour, WriteTimeout: time.Second}
	take := func(conn net.Conn) {
		sub, err := f.h.Subscribe("")
		if err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		f.w.Attach(conn, sub, st)
		// One at a time: the writer's lists of new streams keep the
		// length they had before.
		f.waitTaken()
	}
	for _, c := range conns[:before] {
		take(c)
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.GC() // sync.Pools keep their objects until a second one
	runtime.ReadMemStats(&m0)
	for _, c := range conns[before:] {
		take(c)
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	if got, want := f.h.Subscribers(), before+n; got != want || f.w.NotTakenOver() != 0 {
		t.Fatalf("%d streams taken over and live, want %d", got, want)
	}
	bytes := float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / n
	objects := float64(int64(m1.HeapObjects)-int64(m0.HeapObjects)) / n
	allocs := float64(m1.Mallocs-m0.Mallocs) / n
	t.Logf("an idle taken-over stream holds %.1f bytes in %.2f objects; %.2f allocations to take it over", bytes, objects, allocs)
	// The bounds leave room for what the runtime allocates meanwhile (a
	// thread started, say): a few kilobytes, over all the streams.
	if bytes > 540 || objects > 4.5 {
		t.Errorf("an idle taken-over stream holds %.1f bytes in %.2f objects, want about 500 in 4", bytes, objects)
	}
	if allocs > 5.5 {
		t.Errorf("%.2f allocations to subscribe and take a stream over, want 5", allocs)
	}
}

// waitTaken waits until the writer has taken every stream attached so far.
func (f *fixture) waitTaken() {
	f.w.eng.mu.Lock()
	l := f.w.eng.loop
	f.w.eng.mu.Unlock()
	for l != nil {
		l.mu.Lock()
		waiting := len(l.attached)
		l.mu.Unlock()
		if waiting == 0 {
			return
		}
		runtime.Gosched()
	}
}

// serverConns returns the server ends of n loopback TCP connections.
func serverConns(t *testing.T, n int) []net.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	servers := make([]net.Conn, 0, n)
	clients := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range append(servers, clients...) {
			c.Close()
		}
	})
	for range n {
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, client)
		server, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, server)
	}
	return servers
}
