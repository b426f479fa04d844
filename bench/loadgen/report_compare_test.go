//go:build linux

package main

import (
	"math"
	"strings"
	"testing"
)

func TestVerdictAgainstTheOtherBuildsSpread(t *testing.T) {
	rateFig := figure{label: "publishes/s", higherBetter: true}
	memFig := figure{label: "RSS per idle stream"}
	base := spread{median: 100, min: 90, max: 110, runs: 3}
	for _, tc := range []struct {
		name      string
		fig       figure
		cur       float64
		want      string
		wantWorse bool
	}{
		{"rate below the lowest run", rateFig, 89, "**worse beyond the spread**", true},
		{"rate lower, within the runs", rateFig, 91, "within the spread", false},
		{"rate equal to the lowest run", rateFig, 90, "within the spread", false},
		{"rate above the highest run", rateFig, 111, "better beyond the spread", false},
		{"memory above the highest run", memFig, 111, "**worse beyond the spread**", true},
		{"memory higher, within the runs", memFig, 109, "within the spread", false},
		{"memory below the lowest run", memFig, 89, "better beyond the spread", false},
		{"some stream never ready", memFig, math.Inf(1), "**worse beyond the spread**", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, worse := verdict(tc.fig, spread{median: tc.cur, min: tc.cur, max: tc.cur, runs: 3}, base)
			if got != tc.want || worse != tc.wantWorse {
				t.Fatalf("verdict = %q, %v; want %q, %v", got, worse, tc.want, tc.wantWorse)
			}
		})
	}
	if got, worse := verdict(rateFig, spread{median: 1, runs: 1}, spread{}); got != "–" || worse {
		t.Fatalf("verdict without the other build's runs = %q, %v; want –, false", got, worse)
	}
}

// compareResults are three rounds of S4 in memory and of S1 for both
// builds, and S1 with the takeover writer off.
func compareResults(newRates, baseRates []float64) []*Result {
	var rs []*Result
	suffix := []string{"", "-run2", "-run3"}
	for i := range newRates {
		rs = append(rs,
			&Result{Scenario: "S4", Name: "S4-memory-new" + suffix[i], Store: "memory:", Reader: "epoll", Publishers: 64, AchievedRate: newRates[i], PublishP99Ms: 5},
			&Result{Scenario: "S4", Name: "S4-memory-base" + suffix[i], Store: "memory:", Reader: "epoll", Publishers: 64, AchievedRate: baseRates[i], PublishP99Ms: 5},
			&Result{Scenario: "S1", Name: "S1-10000-new" + suffix[i], Store: "memory:", Reader: "epoll", Subscribers: 10000, Ready: 10000, RSSPerConnKB: 4, ConnectSeconds: 1},
			&Result{Scenario: "S1", Name: "S1-10000-base" + suffix[i], Store: "memory:", Reader: "epoll", Subscribers: 10000, Ready: 10000, RSSPerConnKB: 4, ConnectSeconds: 1},
			&Result{Scenario: "S1", Name: "S1-10000-takeover-off" + suffix[i], Store: "memory:", Reader: "epoll", Variant: "--stream-takeover=false",
				Subscribers: 10000, Ready: 10000, RSSPerConnKB: 30, ConnectSeconds: 1.5},
		)
	}
	return rs
}

func TestCompareSectionShowsBothBuildsAndJudgesTheMedian(t *testing.T) {
	var b strings.Builder
	writeCompareSection(&b, compareMeta{Title: "Before and after"}, compareResults([]float64{40000, 38000, 41000}, []float64{42000, 39000, 40000}))
	doc := b.String()
	for _, want := range []string{
		"## Before and after\n",
		"**No median of this build is worse than the other build beyond the spread of its runs**",
		"| S4, memory, 64 publishers | publishes/s | **40,000/s** (38,000/s – 41,000/s) | **40,000/s** (39,000/s – 42,000/s) | +0.0% | within the spread |",
		"| S1, 10,000 idle streams | RSS per idle stream | **4.0 KB** (4.0 KB – 4.0 KB) | **4.0 KB** (4.0 KB – 4.0 KB) | +0.0% | within the spread |",
		"### This build with the takeover writer off (`--stream-takeover=false`)",
		"| S1, 10,000 idle streams | RSS per idle stream | **4.0 KB** (4.0 KB – 4.0 KB) | **30.0 KB** (30.0 KB – 30.0 KB) | +650.0% |",
		"| S1-10000-takeover-off-run3 | this build, `--stream-takeover=false` |",
		"| S4-memory-base-run2 | the other build | publishes/s 39,000/s; publish p99 5.00 ms |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("the section does not contain %q:\n%s", want, doc)
		}
	}

	b.Reset()
	writeCompareSection(&b, compareMeta{Title: "Before and after"}, compareResults([]float64{36000, 38000, 37000}, []float64{42000, 39000, 40000}))
	doc = b.String()
	for _, want := range []string{
		"**This build's median is worse than the other build beyond the spread of its runs in 1 figure(s)**",
		"- S4, memory, 64 publishers, publishes/s: 37,000/s against 40,000/s (the other build's runs: 39,000/s to 42,000/s; this build's: 36,000/s to 38,000/s).",
		"| -7.5% | **worse beyond the spread** |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("the section does not contain %q:\n%s", want, doc)
		}
	}
}

// A comparison goes before the scenario tables the first time, in place of
// the old one after that, and the full report keeps it there, after its
// summary and before the targets.
func TestCompareSectionSplicedBeforeTheScenarioTables(t *testing.T) {
	sec := func(body string) string { return compareBegin + "\n" + body + "\n" + compareEnd + "\n" }
	full := "# Benchmarks\n\n## Targets\n\nt\n\n## S1 idle\n\ns1\n\n" + clusterBegin + "\nc\n" + clusterEnd + "\n"
	got := compareMarks.splice(full, "one", scenarioHeadings...)
	want := "# Benchmarks\n\n## Targets\n\nt\n\n" + sec("one") + "\n## S1 idle\n\ns1\n\n" + clusterBegin + "\nc\n" + clusterEnd + "\n"
	if got != want {
		t.Fatalf("first splice = %q, want %q", got, want)
	}
	again := compareMarks.splice(got, "two", scenarioHeadings...)
	if want2 := strings.Replace(want, sec("one"), sec("two"), 1); again != want2 {
		t.Fatalf("second splice = %q, want %q", again, want2)
	}
	if clusterMarks.of(again) != clusterBegin+"\nc\n"+clusterEnd+"\n" {
		t.Fatalf("the cluster section did not survive: %q", again)
	}

	var b strings.Builder
	writeReport(&b, reportMeta{Summary: "in short", Compare: compareMarks.of(again)}, []*Result{
		{Scenario: "S1", Name: "S1-10000", Store: "memory:", Reader: "epoll", Subscribers: 10000, Ready: 10000, RSSPerConnKB: 4},
	})
	doc := b.String()
	short, compare := strings.Index(doc, "## In short\n\nin short\n"), strings.Index(doc, compareBegin)
	s1, targets := strings.Index(doc, "## S1 "), strings.Index(doc, "## Targets")
	if !(short >= 0 && short < compare && compare < s1 && s1 < targets) {
		t.Fatalf("want the summary, the comparison, S1, then the targets; got offsets %d, %d, %d, %d:\n%s", short, compare, s1, targets, doc)
	}
}
