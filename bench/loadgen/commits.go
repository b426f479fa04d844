//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// storeCommits reads the group-commit counters from the /metrics of the
// server at addr; a server without them reports zero.
func storeCommits(ctx context.Context, addr string) (commits, appends int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("read metrics: %w", err)
	}
	defer resp.Body.Close()
	return parseCommits(io.LimitReader(resp.Body, 4<<20))
}

// parseCommits finds the two counters in the Prometheus text format.
func parseCommits(r io.Reader) (commits, appends int64, err error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		var dst *int64
		switch name {
		case "factstream_store_commits_total":
			dst = &commits
		case "factstream_store_committed_appends_total":
			dst = &appends
		default:
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return 0, 0, fmt.Errorf("metric %s: %w", name, err)
		}
		*dst = int64(v)
	}
	return commits, appends, sc.Err()
}
