//go:build linux

package main

import (
	"bytes"
	"errors"
	"math"
	"strconv"
)

// A published fact's info is "<publisher>:<number>:<send unix nanos>".
// Numbers are unique across the publishers of a run (0, 1, 2, ...), so a
// subscriber checks exactly-once delivery with one bit per number.
// Publisher ids are run*pubsPerRun + index, with a random run number, so
// facts left by another run are told apart from duplicates.

// pubsPerRun bounds the publishers of one run.
const pubsPerRun = 1000

// publisherID returns the id of publisher index i of run.
func publisherID(run int64, i int) int { return int(run)*pubsPerRun + i }

// appendInfo appends the info of fact n sent by publisher pub at sentNanos.
func appendInfo(dst []byte, pub int, n int64, sentNanos int64) []byte {
	dst = strconv.AppendInt(dst, int64(pub), 10)
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, n, 10)
	dst = append(dst, ':')
	return strconv.AppendInt(dst, sentNanos, 10)
}

// factInfo is what a received fact's info says.
type factInfo struct {
	Pub       int
	N         int64
	SentNanos int64
}

var errBadInfo = errors.New("info is not <publisher>:<number>:<nanos>")

// parseInfo parses an info written by appendInfo.
func parseInfo(b []byte) (factInfo, error) {
	var f factInfo
	var fields [3]int64
	for i := range fields {
		end := bytes.IndexByte(b, ':')
		if i == len(fields)-1 {
			end = len(b)
		}
		if end <= 0 {
			return f, errBadInfo
		}
		v, ok := atoi(b[:end])
		if !ok {
			return f, errBadInfo
		}
		fields[i] = v
		b = b[min(end+1, len(b)):]
	}
	f.Pub, f.N, f.SentNanos = int(fields[0]), fields[1], fields[2]
	return f, nil
}

// atoi parses a non-negative decimal int64 without allocating.
func atoi(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0') // 19 digits cannot overflow a uint64
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

var infoKey = []byte(`"info"`)

// nextInfo finds the next info string value in JSON data and returns it and
// the data after it. In valid JSON a quote inside a string is always
// escaped, so "info" followed by a colon can only be that key. The infos
// this generator writes hold no escapes, so the value ends at the next quote.
func nextInfo(data []byte) (info, rest []byte, ok bool) {
	for {
		i := bytes.Index(data, infoKey)
		if i < 0 {
			return nil, nil, false
		}
		data = skipSpace(data[i+len(infoKey):])
		if len(data) == 0 || data[0] != ':' {
			continue // "info" was a value, not a key
		}
		data = skipSpace(data[1:])
		if len(data) == 0 || data[0] != '"' {
			continue
		}
		data = data[1:]
		end := bytes.IndexByte(data, '"')
		if end < 0 {
			return nil, nil, false
		}
		return data[:end], data[end+1:], true
	}
}

func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}
