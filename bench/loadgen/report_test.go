//go:build linux

package main

import (
	"strings"
	"testing"
)

// A target the machine's own floor misses is marked so; one the floor
// meets stays plainly not met.
func TestTargetsShowTheMachinesFloor(t *testing.T) {
	results := []*Result{
		{Scenario: "S2", Name: "S2", Store: "memory:", Reader: "epoll", LatencyP99Ms: 24},
		{Scenario: "S2L", Name: "S2L", Store: "memory:", Reader: "epoll", LatencyP99Ms: 15},
		{Scenario: "S4", Name: "S4-memory", Store: "memory:", Reader: "epoll", AchievedRate: 44000},
		{Scenario: "S4", Name: "S4-floor", Store: floorStore, Reader: "epoll", AchievedRate: 59000},
	}
	cals := []Calibration{
		{FanoutConns: 1000, FanoutReadMs: 10.1},
		{FanoutConns: 1000, FanoutReadMs: 9.5}, // the better one counts
	}
	var b strings.Builder
	writeTargets(&b, results, cals)
	rows := map[string]string{}
	for _, line := range strings.Split(b.String(), "\n") {
		if i := strings.Index(line, ": "); strings.HasPrefix(line, "| S") && i > 0 {
			rows[line[2:strings.Index(line, " |")]] = line
		}
	}
	tests := []struct{ goal, want string }{
		{"S2: delivery p99 under 20 ms", "| **not met** | 9.50 ms: the last byte of one bare write to each of 1,000 streams |"},
		{"S2L: delivery p99 under 8 ms", "| **not met**; the floor misses it too | 9.50 ms: the last byte"},
		{"S4: at least 50,000 publishes/s in memory", "| **not met** | 59,000/s: net/http answering publishes alone |"},
		{"S4: at least 25,000 durable publishes/s in bbolt", "| not measured |  |"},
	}
	for _, tt := range tests {
		if row := rows[tt.goal]; !strings.Contains(row, tt.want) {
			t.Errorf("row %q is %q, want it to contain %q", tt.goal, row, tt.want)
		}
	}
}

// Without calibrations (a report of an older run) the floor column stays
// empty and nothing is judged against it.
func TestTargetsWithoutFloors(t *testing.T) {
	var b strings.Builder
	writeTargets(&b, []*Result{{Scenario: "S2L", Name: "S2L", Store: "memory:", Reader: "epoll", LatencyP99Ms: 15}}, nil)
	if strings.Contains(b.String(), "misses it too") {
		t.Fatalf("judged against a floor that was not measured:\n%s", b.String())
	}
	if !strings.Contains(b.String(), "| S2L: delivery p99 under 8 ms | 15.00 ms | **not met** |  |") {
		t.Fatalf("unexpected S2L row:\n%s", b.String())
	}
}
