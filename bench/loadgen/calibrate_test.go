//go:build linux

package main

import (
	"bytes"
	"regexp"
	"testing"
)

func TestCalibratePrintsBothFigures(t *testing.T) {
	var out bytes.Buffer
	if err := calibrateCommand([]string{"-cpu-a", "0", "-cpu-b", "0", "-rounds", "200"}, &out); err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`^sha256 [1-9][0-9]* MB/s on CPU 0; loopback TCP round trip [0-9]+\.[0-9] µs between CPU 0 and CPU 0\n$`)
	if !want.MatchString(out.String()) {
		t.Fatalf("calibrate printed %q", out.String())
	}
}
