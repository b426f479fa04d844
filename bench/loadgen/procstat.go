//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is USER_HZ, the unit of the CPU times in /proc: 100 on every
// Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// processCPU returns the user plus system CPU time a process has used,
// from fields 14 and 15 of /proc/<pid>/stat (proc(5)).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read cpu time: %w", err)
	}
	// The command name (field 2) may hold spaces; fields restart after ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// processRSS returns a process's resident set size in KiB (VmRSS).
func processRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read rss: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// coreTimes is one CPU's busy and total time from /proc/stat.
type coreTimes struct {
	Busy, Total time.Duration
}

// readCore returns the times of CPU n; busy is everything but idle and
// iowait.
func readCore(n int) (coreTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return coreTimes{}, fmt.Errorf("read /proc/stat: %w", err)
	}
	prefix := "cpu" + strconv.Itoa(n) + " "
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		var t coreTimes
		for i, s := range strings.Fields(rest) {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return coreTimes{}, fmt.Errorf("malformed /proc/stat line %q", line)
			}
			d := time.Duration(v) * clockTick
			t.Total += d
			if i != 3 && i != 4 && i < 7 { // not idle, iowait, steal; guest time is in user already
				t.Busy += d
			}
			if i >= 8 {
				t.Total -= d
			}
		}
		return t, nil
	}
	return coreTimes{}, fmt.Errorf("no cpu%d in /proc/stat", n)
}

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit, since
// every subscriber is one descriptor, and returns the new limit.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("get RLIMIT_NOFILE: %w", err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("set RLIMIT_NOFILE to %d: %w", lim.Max, err)
	}
	return lim.Cur, nil
}

// usage samples the CPU of the server, of this process and of the two
// cores they are pinned to, so a phase can report who was busy.
type usage struct {
	at                   time.Time
	server, self         time.Duration
	serverCore, selfCore coreTimes
}

func sampleUsage(serverPID, serverCPU, selfCPU int) (usage, error) {
	u := usage{at: time.Now()}
	var err error
	if serverPID > 0 {
		if u.server, err = processCPU(serverPID); err != nil {
			return u, err
		}
	}
	if u.self, err = processCPU(os.Getpid()); err != nil {
		return u, err
	}
	if serverCPU >= 0 {
		if u.serverCore, err = readCore(serverCPU); err != nil {
			return u, err
		}
	}
	if selfCPU >= 0 {
		if u.selfCore, err = readCore(selfCPU); err != nil {
			return u, err
		}
	}
	return u, nil
}

// CPU is the CPU use of one phase.
type CPU struct {
	WallSeconds      float64 `json:"wall_seconds"`
	ServerSeconds    float64 `json:"server_cpu_seconds"`
	GeneratorSeconds float64 `json:"generator_cpu_seconds"`
	ServerCoreBusy   float64 `json:"server_core_busy_pct"`    // busy share of the server's core, 0-100
	GenCoreBusy      float64 `json:"generator_core_busy_pct"` // busy share of the generator's core
	// Busy seconds of each core: unlike the process times they include
	// the softirq work of loopback TCP done on that core.
	ServerCoreSeconds float64 `json:"server_core_busy_seconds"`
	GenCoreSeconds    float64 `json:"generator_core_busy_seconds"`
}

// since returns the CPU use from u to end.
func (u usage) since(end usage) CPU {
	pct := func(a, b coreTimes) float64 {
		if b.Total <= a.Total {
			return 0
		}
		return 100 * float64(b.Busy-a.Busy) / float64(b.Total-a.Total)
	}
	return CPU{
		WallSeconds:       end.at.Sub(u.at).Seconds(),
		ServerSeconds:     (end.server - u.server).Seconds(),
		GeneratorSeconds:  (end.self - u.self).Seconds(),
		ServerCoreBusy:    pct(u.serverCore, end.serverCore),
		GenCoreBusy:       pct(u.selfCore, end.selfCore),
		ServerCoreSeconds: (end.serverCore.Busy - u.serverCore.Busy).Seconds(),
		GenCoreSeconds:    (end.selfCore.Busy - u.selfCore.Busy).Seconds(),
	}
}
