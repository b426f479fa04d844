//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

func TestCalibratePrintsEveryFigure(t *testing.T) {
	var out bytes.Buffer
	path := filepath.Join(t.TempDir(), "calibration.json")
	args := []string{"-cpu-a", "0", "-cpu-b", "0", "-rounds", "200", "-fanout", "50", "-fanout-rounds", "3", "-json", path}
	if err := calibrateCommand(args, &out); err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`^sha256 [1-9][0-9]* MB/s on CPU 0; loopback TCP round trip [0-9]+\.[0-9] µs between CPU 0 and CPU 0; ` +
		`fan-out floor: one 230-byte write to each of 50 connections takes [0-9]+\.[0-9] ms \([0-9]+\.[0-9] µs a write\), ` +
		`the last byte is read [0-9]+\.[0-9] ms after the first write\n$`)
	if !want.MatchString(out.String()) {
		t.Fatalf("calibrate printed %q", out.String())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c Calibration
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if c.SHA256MBps <= 0 || c.RoundTripUs <= 0 || c.FanoutConns != 50 || c.FanoutWriteMs <= 0 || c.FanoutReadMs <= 0 {
		t.Fatalf("calibrate wrote %+v", c)
	}
}

func TestCalibrateWithoutFanOut(t *testing.T) {
	var out bytes.Buffer
	if err := calibrateCommand([]string{"-cpu-a", "0", "-cpu-b", "0", "-rounds", "20", "-fanout", "0"}, &out); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out.Bytes(), []byte("fan-out")) {
		t.Fatalf("calibrate printed %q, want no fan-out floor", out.String())
	}
}
