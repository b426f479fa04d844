//go:build linux

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

// The section comparing this build with an earlier one lies between these
// lines, near the top of the scenario tables, so that bench/run.sh compare
// and the full run can be rerun apart without losing each other's figures.
const (
	compareBegin = "<!-- before and after: begin (bench/run.sh compare) -->"
	compareEnd   = "<!-- before and after: end -->"
)

// The runs of a comparison are named <scenario>-<build>[-runN]: the same
// scenario of the build under test and of the one it is compared with, in
// turns; <scenario>-takeover-off runs are this build with the takeover
// writer off.
const (
	newSuffix     = "-new"
	baseSuffix    = "-base"
	takeoverOffSf = "-takeover-off"
)

// compareMeta is what the section says about its run besides the results.
type compareMeta struct {
	Title, Date, Machine, Revision, Baseline, Busy string
	Commands, Notes                                string // contents of files
}

func compareReportCommand(args []string) error {
	var m compareMeta
	var out, commands, notes string
	fs := flag.NewFlagSet("loadgen compare-report", flag.ContinueOnError)
	fs.StringVar(&out, "out", "BENCHMARKS.md", "file whose comparison section to write (the rest is kept)")
	fs.StringVar(&m.Title, "title", "This build beside an earlier one", "title of the section")
	fs.StringVar(&m.Date, "date", "", "date of the run")
	fs.StringVar(&m.Machine, "machine", "", "cores and memory of the machine")
	fs.StringVar(&m.Revision, "revision", "", "revision of the build benchmarked")
	fs.StringVar(&m.Baseline, "baseline", "", "revision of the build it is compared with")
	fs.StringVar(&m.Busy, "busy", "", "how busy the machine was, in words")
	fs.StringVar(&commands, "commands", "", "file holding the commands that were run")
	fs.StringVar(&notes, "notes", "", "file holding remarks on the run (markdown)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("usage: loadgen compare-report [flags] result.json... (in the order they ran)")
	}
	var err error
	for _, f := range []struct {
		path string
		dst  *string
	}{{commands, &m.Commands}, {notes, &m.Notes}} {
		if *f.dst, err = readOptional(f.path); err != nil {
			return err
		}
	}
	results, err := readResults(fs.Args())
	if err != nil {
		return err
	}
	var b strings.Builder
	writeCompareSection(&b, m, results)
	old, err := os.ReadFile(out)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", out, err)
	}
	doc := compareMarks.splice(string(old), b.String(), scenarioHeadings...)
	if err := os.WriteFile(out, []byte(doc), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// scenarioHeadings start the parts of BENCHMARKS.md that a new comparison
// section goes before, the first one found: the scenario tables, else what
// follows them.
var scenarioHeadings = []string{"## S1 ", "## S2 ", "## S3 ", "## S4 ", "## Reading the tables", clusterBegin}

// figure is one compared figure of a scenario.
type figure struct {
	label string
	value func(*Result) float64
	show  func(float64) string
	// higherBetter: deliveries and publishes per second; lower is better
	// for memory, time, CPU and latency.
	higherBetter bool
}

func kb(v float64) string {
	if math.IsInf(v, 1) {
		return "not all ready"
	}
	return fmt.Sprintf("%.1f KB", v)
}

func secOrNotReady(v float64) string {
	if math.IsInf(v, 1) {
		return "not all ready"
	}
	return sec(v)
}

// readySeconds is the time until every stream had its snapshot; a run
// where some never did counts as the slowest possible.
func readySeconds(r *Result) float64 {
	if r.Ready < int64(r.Subscribers) {
		return math.Inf(1)
	}
	return r.ConnectSeconds
}

// figuresOf are the figures compared for a kind of scenario: the ones its
// targets judge, and the cost in CPU and latency beside them.
func figuresOf(kind string) []figure {
	switch kind {
	case "S1":
		return []figure{
			{"RSS per idle stream", rssPerStream, kb, false},
			{"time to all snapshots", readySeconds, secOrNotReady, false},
			{"server CPU to connect them", func(r *Result) float64 { return r.Connect.ServerSeconds }, sec, false},
		}
	case "S3":
		return []figure{
			{"deliveries/s", func(r *Result) float64 { return r.DeliveriesPerSecond }, rate, true},
			{"server CPU s per million deliveries", func(r *Result) float64 { return r.ServerCPUPerMillion },
				func(v float64) string { return fmt.Sprintf("%.2f s", v) }, false},
			{"delivery p99", func(r *Result) float64 { return r.LatencyP99Ms }, msec, false},
		}
	case "S4":
		return []figure{
			{"publishes/s", func(r *Result) float64 { return r.AchievedRate }, rate, true},
			{"publish p99", func(r *Result) float64 { return r.PublishP99Ms }, msec, false},
		}
	}
	return nil
}

// spread is a figure over the runs of one build: its median and range.
type spread struct {
	median, min, max float64
	runs             int
}

func spreadOf(rs []*Result, value func(*Result) float64) spread {
	vs := figures(rs, value)
	if len(vs) == 0 {
		return spread{}
	}
	return spread{median: medianOf(vs), min: slices.Min(vs), max: slices.Max(vs), runs: len(vs)}
}

// show writes a spread as "median (min–max)".
func (s spread) show(f func(float64) string) string {
	if s.runs == 0 {
		return "not run"
	}
	if s.runs == 1 {
		return "**" + f(s.median) + "** (one run)"
	}
	return fmt.Sprintf("**%s** (%s – %s)", f(s.median), f(s.min), f(s.max))
}

// verdict compares this build's median with the other build's runs: it
// is worse (or better) beyond the spread when it lies outside the range
// of those runs on that side; within it, the difference is no larger than
// the runs of one build differ among themselves.
func verdict(fig figure, cur, base spread) (text string, worse bool) {
	if cur.runs == 0 || base.runs == 0 {
		return "–", false
	}
	below, above := cur.median < base.min, cur.median > base.max
	switch {
	case (fig.higherBetter && below) || (!fig.higherBetter && above):
		return "**worse beyond the spread**", true
	case (fig.higherBetter && above) || (!fig.higherBetter && below):
		return "better beyond the spread", false
	}
	return "within the spread", false
}

// change is this build's median against the other's, in percent.
func change(cur, base spread) string {
	if cur.runs == 0 || base.runs == 0 || base.median == 0 || math.IsInf(cur.median, 0) || math.IsInf(base.median, 0) {
		return "–"
	}
	return fmt.Sprintf("%+.1f%%", 100*(cur.median/base.median-1))
}

// compareGroups lists the scenarios compared, as base names without the
// build (S1-10000, S3, S4-memory…), in the order their first run ran.
func compareGroups(results []*Result) []string {
	var out []string
	for _, r := range results {
		name := baseName(r.Name)
		for _, sf := range []string{newSuffix, baseSuffix} {
			if g, ok := strings.CutSuffix(name, sf); ok && !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	return out
}

// groupTitle names a scenario for the tables from one of its runs.
func groupTitle(r *Result) string {
	switch r.Scenario {
	case "S1":
		return fmt.Sprintf("S1, %s idle streams", n(int64(r.Subscribers)))
	case "S3":
		return fmt.Sprintf("S3, %s streams, %s facts from %d publishers", n(int64(r.Subscribers)), n(r.Facts), r.Publishers)
	case "S4":
		store, _, _ := strings.Cut(r.Store, ":")
		if store == "bolt" {
			store = "bbolt"
		}
		return fmt.Sprintf("S4, %s, %d publishers", store, r.Publishers)
	}
	return r.Name
}

// worseFigure is one figure where this build's median lies beyond the
// other build's runs on the bad side.
type worseFigure struct {
	scenario, figure string
	cur, base        spread
	show             func(float64) string
}

func writeCompareSection(w io.Writer, m compareMeta, results []*Result) {
	fmt.Fprintf(w, "## %s\n\n", m.Title)
	fmt.Fprintf(w, "Generated by `bench/run.sh compare` (rerun it rather than edit). S1, S3 and S4 of this build and of the "+
		"build it is compared with, each run on a freshly started server pinned to CPU 0 with the load generator on CPU 1, "+
		"as in the tables below. The two builds run in turns, scenario by scenario (this build first in odd rounds, the "+
		"other first in even ones), so that the host's drift from minute to minute reaches both alike. Each cell is the "+
		"median of the runs in bold, then the lowest and the highest run.\n\n")
	fmt.Fprintf(w, "| | |\n| --- | --- |\n| date | %s |\n| machine | %s |\n| this build | %s |\n| compared with | %s |\n| machine load | %s |\n\n",
		m.Date, m.Machine, m.Revision, m.Baseline, m.Busy)

	type row struct {
		scenario string
		fig      figure
		cur      spread
		base     spread
	}
	var rows []row
	var worse []worseFigure
	for _, g := range compareGroups(results) {
		cur, base := runsOf(results, g+newSuffix), runsOf(results, g+baseSuffix)
		all := append(slices.Clone(cur), base...)
		title := groupTitle(all[0])
		for _, f := range figuresOf(all[0].Scenario) {
			r := row{title, f, spreadOf(cur, f.value), spreadOf(base, f.value)}
			rows = append(rows, r)
			if _, bad := verdict(f, r.cur, r.base); bad {
				worse = append(worse, worseFigure{title, f.label, r.cur, r.base, f.show})
			}
		}
	}
	switch {
	case len(rows) == 0:
		fmt.Fprintf(w, "No runs of both builds to compare.\n\n")
	case len(worse) == 0:
		fmt.Fprintf(w, "**No median of this build is worse than the other build beyond the spread of its runs**: "+
			"wherever this build's median is worse, it still lies within the range of the other build's runs.\n\n")
	default:
		fmt.Fprintf(w, "**This build's median is worse than the other build beyond the spread of its runs in %d figure(s)**:\n\n", len(worse))
		for _, x := range worse {
			fmt.Fprintf(w, "- %s, %s: %s against %s (the other build's runs: %s to %s; this build's: %s to %s).\n",
				x.scenario, x.figure, x.show(x.cur.median), x.show(x.base.median), x.show(x.base.min), x.show(x.base.max),
				x.show(x.cur.min), x.show(x.cur.max))
		}
		fmt.Fprintln(w)
	}
	if len(rows) > 0 {
		fmt.Fprintf(w, "A median is *worse beyond the spread* when it lies outside the range of the other build's runs on the "+
			"bad side (below its lowest rate, above its highest memory, time, CPU or latency).\n\n")
		fmt.Fprintf(w, "| scenario | figure | this build | the other build | change of the median | |\n| --- | --- | --- | --- | ---: | --- |\n")
		for _, r := range rows {
			v, _ := verdict(r.fig, r.cur, r.base)
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", r.scenario, r.fig.label, r.cur.show(r.fig.show), r.base.show(r.fig.show), change(r.cur, r.base), v)
		}
		fmt.Fprintln(w)
		writeCompareChecks(w, results)
	}
	writeTakeoverOff(w, results)
	writeCompareRuns(w, results)
	if m.Notes != "" {
		fmt.Fprintf(w, "### Notes\n\n%s\n\n", m.Notes)
	}
	if m.Commands != "" {
		fmt.Fprintf(w, "### Commands\n\n```sh\n%s\n```\n", m.Commands)
	}
}

// writeCompareChecks says, per build, whether every run delivered every
// fact once, got every snapshot and every publish through.
func writeCompareChecks(w io.Writer, results []*Result) {
	for _, b := range []struct{ suffix, label string }{{newSuffix, "This build"}, {baseSuffix, "The other build"}} {
		var runs, notReady, failed, missing, dups, ended int64
		for _, r := range results {
			if !strings.HasSuffix(baseName(r.Name), b.suffix) {
				continue
			}
			runs++
			notReady += max(0, int64(r.Subscribers)-r.Ready)
			failed += r.PublishFailures
			missing += r.Missing
			dups += r.Duplicates + r.Unacked + r.Unknown
			ended += r.StreamsEnded
		}
		if runs == 0 {
			continue
		}
		fmt.Fprintf(w, "%s, over its %d runs: %s streams without their snapshot, %s failed publishes, %s missing and %s duplicate or unexpected deliveries, %s streams ended by the server.\n",
			b.label, runs, n(notReady), n(failed), n(missing), n(dups), n(ended))
	}
	fmt.Fprintln(w)
}

// writeTakeoverOff sets this build's runs with the takeover writer off
// beside its default runs of the same scenario; nothing is judged on them.
func writeTakeoverOff(w io.Writer, results []*Result) {
	var groups []string
	for _, r := range results {
		if g, ok := strings.CutSuffix(baseName(r.Name), takeoverOffSf); ok && !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	if len(groups) == 0 {
		return
	}
	flags := ""
	for _, r := range results {
		if strings.HasSuffix(baseName(r.Name), takeoverOffSf) && r.Variant != "" {
			flags = r.Variant
			break
		}
	}
	fmt.Fprintf(w, "### This build with the takeover writer off (`%s`)\n\n", flags)
	fmt.Fprintf(w, "Every stream keeps its own goroutine; these runs show what the takeover writer buys, beside this build's "+
		"runs above (same round, same machine). No target is judged on them.\n\n")
	fmt.Fprintf(w, "| scenario | figure | takeover on | takeover off | change of the median |\n| --- | --- | --- | --- | ---: |\n")
	for _, g := range groups {
		on, off := runsOf(results, g+newSuffix), runsOf(results, g+takeoverOffSf)
		for _, f := range figuresOf(off[0].Scenario) {
			a, b := spreadOf(on, f.value), spreadOf(off, f.value)
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", groupTitle(off[0]), f.label, a.show(f.show), b.show(f.show), change(b, a))
		}
	}
	fmt.Fprintln(w)
}

// writeCompareRuns lists every run in the order it ran, with how busy the
// server's core was, so that a run something else disturbed shows.
func writeCompareRuns(w io.Writer, results []*Result) {
	fmt.Fprintf(w, "### Every run, in the order they ran\n\n")
	fmt.Fprintf(w, "*Server core busy* is the share of CPU 0 in use during the measured phase, anything else's included; "+
		"*server* is the share the server process itself used. A gap over 15 points means something else ran on the "+
		"server's core (marked *disturbed*).\n\n")
	fmt.Fprintf(w, "| run | build | figures | server core busy | server | generator core busy |\n| --- | --- | --- | ---: | ---: | ---: |\n")
	var disturbedRuns []string
	for _, r := range results {
		build := "this build"
		switch name := baseName(r.Name); {
		case strings.HasSuffix(name, baseSuffix):
			build = "the other build"
		case strings.HasSuffix(name, takeoverOffSf):
			build = "this build, `" + r.Variant + "`"
		}
		var parts []string
		for _, f := range figuresOf(r.Scenario) {
			parts = append(parts, f.label+" "+f.show(f.value(r)))
		}
		c := measuredPhase(r)
		mark := ""
		if disturbed(c) {
			mark = " (disturbed)"
			disturbedRuns = append(disturbedRuns, r.Name)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.0f%%%s | %.0f%% | %.0f%% |\n", r.Name, build, strings.Join(parts, "; "),
			c.ServerCoreBusy, mark, serverShare(c), c.GenCoreBusy)
	}
	fmt.Fprintln(w)
	if len(disturbedRuns) > 0 {
		fmt.Fprintf(w, "Something else used the server's core during %d of %d runs (%s).\n\n",
			len(disturbedRuns), len(results), strings.Join(disturbedRuns, ", "))
	}
}
