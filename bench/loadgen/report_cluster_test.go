//go:build linux

package main

import (
	"strings"
	"testing"
)

func TestSpliceSectionKeepsTheRest(t *testing.T) {
	sec := func(body string) string { return clusterBegin + "\n" + body + "\n" + clusterEnd + "\n" }
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"empty file", "", sec("new")},
		{"no section yet", "# Benchmarks\n\ntext\n", "# Benchmarks\n\ntext\n\n" + sec("new")},
		{"replaces the old one", "# B\n\n" + sec("old") + "\n## After\n", "# B\n\n" + sec("new") + "\n## After\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := clusterMarks.splice(tc.doc, "new\n")
			if got != tc.want {
				t.Fatalf("splice = %q, want %q", got, tc.want)
			}
			if s := clusterMarks.of(got); s != sec("new") {
				t.Fatalf("of = %q, want the new section", s)
			}
		})
	}
}

func TestParseCommits(t *testing.T) {
	text := strings.Join([]string{
		"# HELP factstream_store_commits_total Commits the store made.",
		"# TYPE factstream_store_commits_total counter",
		"factstream_store_commits_total 1234",
		"factstream_store_committed_appends_total 5.6789e+04",
		"factstream_facts_total 9",
	}, "\n")
	c, a, err := parseCommits(strings.NewReader(text))
	if err != nil || c != 1234 || a != 56789 {
		t.Fatalf("parseCommits = %d, %d, %v; want 1234, 56789", c, a, err)
	}
}
