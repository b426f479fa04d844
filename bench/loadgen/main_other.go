//go:build !linux

// Command loadgen is factstream's load generator. It runs on Linux only (it
// reads /proc and drives epoll directly); elsewhere it builds, so that
// "go build ./..." works on every system, and says so when run.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "loadgen: runs on Linux only (it reads /proc and drives epoll directly)")
	os.Exit(2)
}
