//go:build linux

package main

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// calibrateCommand measures how fast the machine is at the moment, so that
// runs on the same machine at different times, or on different machines,
// can be told apart: a CPU-bound loop on one core, a loopback TCP ping pong
// between the two cores (system calls, the TCP path and cross-core
// wake-ups: what fan-out and publishing spend most of their time on), and
// the fan-out floor: how long one write to each of 1,000 connections takes
// with nothing but the system calls, which bounds S2 and S2L's latency
// from below for any server.
func calibrateCommand(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("loadgen calibrate", flag.ContinueOnError)
	cpuA := fs.Int("cpu-a", 0, "core of the CPU loop and of one ping-pong end")
	cpuB := fs.Int("cpu-b", 1, "core of the other ping-pong end")
	rounds := fs.Int("rounds", 20000, "ping-pong round trips")
	fanout := fs.Int("fanout", 1000, "connections of the fan-out floor (0 leaves it out)")
	fanoutRounds := fs.Int("fanout-rounds", 50, "rounds of the fan-out floor")
	jsonOut := fs.String("json", "", "file to write the figures to as well, for the report")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var c Calibration
	mbps, err := hashSpeed(*cpuA)
	if err != nil {
		return err
	}
	rtt, err := pingPong(*cpuA, *cpuB, *rounds)
	if err != nil {
		return err
	}
	c.SHA256MBps, c.RoundTripUs = mbps, float64(rtt.Nanoseconds())/1000
	fmt.Fprintf(stdout, "sha256 %.0f MB/s on CPU %d; loopback TCP round trip %.1f µs between CPU %d and CPU %d",
		mbps, *cpuA, c.RoundTripUs, *cpuA, *cpuB)
	if *fanout > 0 {
		wrote, read, err := fanoutFloor(*cpuA, *cpuB, *fanout, *fanoutRounds, fanoutEvent)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "; fan-out floor: one %d-byte write to each of %d connections takes %.1f ms (%.1f µs a write), the last byte is read %.1f ms after the first write",
			fanoutEvent, *fanout, ms(wrote), float64(wrote.Nanoseconds())/1000/float64(*fanout), ms(read))
		c.FanoutConns, c.FanoutWriteMs, c.FanoutReadMs = *fanout, ms(wrote), ms(read)
	}
	fmt.Fprintln(stdout)
	if *jsonOut != "" {
		b, err := json.MarshalIndent(c, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write calibration: %w", err)
		}
	}
	return nil
}

// Calibration is what calibrate measured, as the report reads it.
type Calibration struct {
	SHA256MBps  float64 `json:"sha256_mbps"`
	RoundTripUs float64 `json:"round_trip_us"`
	// FanoutConns is 0 when the fan-out floor was left out.
	FanoutConns int `json:"fanout_conns"`
	// FanoutWriteMs is the median round of bare writes, one to each
	// connection; FanoutReadMs the median time from a round's first write
	// to the reader's last byte of it.
	FanoutWriteMs float64 `json:"fanout_write_ms"`
	FanoutReadMs  float64 `json:"fanout_read_ms"`
}

// fanoutEvent is the size of one fact's event in the benchmark's streams.
const fanoutEvent = 230

// pin binds the calling goroutine's thread to one core; the caller must
// have locked it to its thread.
func pin(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin to CPU %d: %w", cpu, err)
	}
	return nil
}

// hashSpeed hashes 256 MiB on one core and returns MB per second.
func hashSpeed(cpu int) (float64, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := pin(cpu); err != nil {
		return 0, err
	}
	block := make([]byte, 1<<20)
	h := sha256.New()
	start := time.Now()
	for range 256 {
		h.Write(block)
	}
	h.Sum(nil)
	return 256 * (1 << 20) / 1e6 / time.Since(start).Seconds(), nil
}

// pingPong sends 64 bytes back and forth over a loopback TCP connection
// whose ends run on two cores, and returns the mean round trip.
func pingPong(cpuA, cpuB, rounds int) (time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	echoed := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		echoed <- echo(ln, cpuA, rounds)
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := pin(cpuB); err != nil {
		return 0, err
	}
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	fd, err := blockingFD(conn)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	msg := make([]byte, 64)
	start := time.Now()
	for range rounds {
		if err := exchange(fd, msg, true); err != nil {
			return 0, err
		}
	}
	elapsed := time.Since(start)
	if err := <-echoed; err != nil {
		return 0, err
	}
	return elapsed / time.Duration(rounds), nil
}

func echo(ln net.Listener, cpu, rounds int) error {
	if err := pin(cpu); err != nil {
		return err
	}
	conn, err := ln.Accept()
	if err != nil {
		return err
	}
	fd, err := blockingFD(conn)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	msg := make([]byte, 64)
	for i := range rounds {
		if err := exchange(fd, msg, false); err != nil {
			return fmt.Errorf("echo round %d: %w", i, err)
		}
	}
	return nil
}

// blockingFD returns a blocking duplicate of conn's socket and closes conn,
// so that the round trips are plain read and write system calls on pinned
// threads, without Go's poller in between.
func blockingFD(conn net.Conn) (int, error) {
	defer conn.Close()
	f, err := conn.(*net.TCPConn).File() // a duplicate, in blocking mode
	if err != nil {
		return -1, err
	}
	defer f.Close()
	return unix.Dup(int(f.Fd()))
}

// exchange writes msg then reads it back whole (writeFirst), or the other
// way round.
func exchange(fd int, msg []byte, writeFirst bool) error {
	if !writeFirst {
		if err := readFull(fd, msg); err != nil {
			return err
		}
	}
	if n, err := unix.Write(fd, msg); err != nil || n != len(msg) {
		return errors.Join(errors.New("short write"), err)
	}
	if writeFirst {
		return readFull(fd, msg)
	}
	return nil
}

func readFull(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Read(fd, b)
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrUnexpectedEOF
		}
		b = b[n:]
	}
	return nil
}
