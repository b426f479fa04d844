//go:build linux

package main

import (
	"fmt"
	"net"
	"runtime"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// fanoutFloor measures the least one round of fan-out can take on this
// machine: a thread on cpuA writes one event of size bytes to each of
// conns loopback TCP connections in turn, with blocking system calls and
// nothing else, while one epoll loop on cpuB reads them all, as the
// generator does. Rounds start 20 ms apart, so the reader is asleep when a
// round begins, as in S2L. It returns the median round (first write to
// last write) and the median time from a round's start to the reader's
// last byte of it.
func fanoutFloor(cpuA, cpuB, conns, rounds, size int) (written, read time.Duration, err error) {
	writers, readers, err := loopbackPairs(conns)
	defer closeAll(writers)
	defer closeAll(readers)
	if err != nil {
		return 0, 0, err
	}
	starts := make(chan time.Time, rounds)
	finished := make(chan []time.Duration, 1)
	failed := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		d, err := readRounds(cpuB, readers, rounds, size, starts)
		if err != nil {
			failed <- err
			return
		}
		finished <- d
	}()

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := pin(cpuA); err != nil {
		return 0, 0, err
	}
	event := make([]byte, size)
	var wrote []time.Duration
	for range rounds {
		time.Sleep(20 * time.Millisecond)
		start := time.Now()
		starts <- start
		for _, fd := range writers {
			if n, err := unix.Write(fd, event); err != nil || n != size {
				return 0, 0, fmt.Errorf("fan-out write: %d bytes, %v", n, err)
			}
		}
		wrote = append(wrote, time.Since(start))
	}
	select {
	case d := <-finished:
		return medianDuration(wrote), medianDuration(d), nil
	case err := <-failed:
		return 0, 0, err
	case <-time.After(30 * time.Second):
		return 0, 0, fmt.Errorf("fan-out reader did not finish")
	}
}

// readRounds reads every round from fds with one epoll loop and returns,
// per round, the time from its start to its last byte.
func readRounds(cpu int, fds []int, rounds, size int, starts <-chan time.Time) ([]time.Duration, error) {
	if err := pin(cpu); err != nil {
		return nil, err
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	defer unix.Close(ep)
	for _, fd := range fds {
		if err := unix.SetNonblock(fd, true); err != nil {
			return nil, err
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return nil, err
		}
	}
	perRound := len(fds) * size
	events := make([]unix.EpollEvent, 256)
	buf := make([]byte, 64<<10)
	var got int
	var out []time.Duration
	for len(out) < rounds {
		n, err := unix.EpollWait(ep, events, 5000)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("fan-out reader: nothing for 5 s after %d rounds", len(out))
		}
		for _, ev := range events[:n] {
			for {
				m, err := unix.Read(int(ev.Fd), buf)
				if err == unix.EAGAIN || m == 0 {
					break
				}
				if err != nil {
					return nil, err
				}
				got += m
			}
		}
		for got >= perRound {
			got -= perRound
			out = append(out, time.Since(<-starts))
		}
	}
	return out, nil
}

// loopbackPairs connects n loopback TCP connections and returns both ends
// of each as blocking file descriptors: the accepted (server) ends and the
// dialed (client) ends.
func loopbackPairs(n int) (accepted, dialed []int, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return accepted, dialed, err
		}
		s, err := ln.Accept()
		if err != nil {
			c.Close()
			return accepted, dialed, err
		}
		a, errA := blockingFD(s)
		d, errD := blockingFD(c)
		if a >= 0 {
			accepted = append(accepted, a)
		}
		if d >= 0 {
			dialed = append(dialed, d)
		}
		if errA != nil || errD != nil {
			return accepted, dialed, fmt.Errorf("loopback pair: %v %v", errA, errD)
		}
	}
	return accepted, dialed, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

func medianDuration(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
