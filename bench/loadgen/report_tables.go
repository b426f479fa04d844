//go:build linux

package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// target is one goal of the benchmark and how a run measured up to it.
type target struct {
	goal, figure string
	met          bool
	measured     bool
	// floor is what the machine allows any server, when the run measured
	// it; floorMet says whether that floor itself meets the goal.
	floor    string
	floorMet bool
}

// goal is a target judged on one figure of a scenario's runs.
type goal struct {
	kind, store, text string
	value             func(*Result) float64
	show              func(float64) string
	met               func(float64) bool
	// floor, when set, is the same figure with no server work at all.
	floor func(floors) (value float64, label string, ok bool)
}

// floors are the run's measurements of what the machine allows any
// server: bare writes to the fan-out's streams (loadgen calibrate, before
// and after the run), and net/http answering publishes alone (S4-floor).
type floors struct {
	calibrations []Calibration
	publish      []*Result
}

// fanoutFloorOf is the better of the calibrations' fan-out floors: if even
// that misses a latency target, no server that writes each event to each
// stream can meet it on this machine.
func fanoutFloorOf(f floors) (float64, string, bool) {
	best, conns := 0.0, 0
	for _, c := range f.calibrations {
		if c.FanoutConns > 0 && (best == 0 || c.FanoutReadMs < best) {
			best, conns = c.FanoutReadMs, c.FanoutConns
		}
	}
	if best == 0 {
		return 0, "", false
	}
	return best, fmt.Sprintf("%s: the last byte of one bare write to each of %s streams", msec(best), n(int64(conns))), true
}

func publishFloorOf(f floors) (float64, string, bool) {
	if len(f.publish) == 0 {
		return 0, "", false
	}
	v := median(f.publish, func(r *Result) float64 { return r.AchievedRate })
	label := rate(v) + ": net/http answering publishes alone"
	if len(f.publish) > 1 {
		label = fmt.Sprintf("%s (median of %d runs)", label, len(f.publish))
	}
	return v, label, v > 0
}

// floorsOf finds the publish floor's runs among the results.
func floorsOf(results []*Result, calibrations []Calibration) floors {
	return floors{calibrations: calibrations, publish: primaryRuns(results, "S4", floorStore)}
}

// floorStore is the store label of the S4 run against loadgen floor.
const floorStore = "net/http alone"

// figureGoals are the targets that are a bound on one figure.
var figureGoals = []goal{
	{"S2", "", "S2: sustains 200 facts/s", sustainedRate,
		func(v float64) string { return fmt.Sprintf("%.1f/s", v) }, func(v float64) bool { return v >= 0.98*200 }, nil},
	{"S2", "", "S2: delivery p99 under 20 ms", func(r *Result) float64 { return r.LatencyP99Ms },
		msec, func(v float64) bool { return v < 20 }, fanoutFloorOf},
	{"S2L", "", "S2L: delivery p99 under 8 ms", func(r *Result) float64 { return r.LatencyP99Ms },
		msec, func(v float64) bool { return v < 8 }, fanoutFloorOf},
	{"S3", "", "S3: at least 600,000 deliveries/s", func(r *Result) float64 { return r.DeliveriesPerSecond },
		rate, func(v float64) bool { return v >= 600000 }, nil},
	{"S3", "", "S3: at most 1.5 server CPU s per million deliveries", func(r *Result) float64 { return r.ServerCPUPerMillion },
		func(v float64) string { return fmt.Sprintf("%.2f s", v) }, func(v float64) bool { return v > 0 && v <= 1.5 }, nil},
	{"S4", "memory", "S4: at least 50,000 publishes/s in memory", func(r *Result) float64 { return r.AchievedRate },
		rate, func(v float64) bool { return v >= 50000 }, publishFloorOf},
	{"S4", "bolt", "S4: at least 25,000 durable publishes/s in bbolt", func(r *Result) float64 { return r.AchievedRate },
		rate, func(v float64) bool { return v >= 25000 }, nil},
}

// sustainedRate is the achieved publish rate of a run where every publish
// succeeded, else 0.
func sustainedRate(r *Result) float64 {
	if r.PublishFailures > 0 {
		return 0
	}
	return r.AchievedRate
}

// targets evaluates the goals. A figure repeated over several runs
// of a scenario (bench/run.sh runs each three times: the host's speed and
// how publishing and fan-out interleave move them from run to run) is
// judged on the median run; the S3 rerun with the goroutine reader only
// compares generators and does not count, nor do runs with other server
// flags (a variant: the takeover writer off, say).
func targets(results []*Result, f floors) []target {
	var ts []target
	s1 := primaryRuns(results, "S1", "")
	for _, size := range streamCounts(s1) {
		g := goal{
			text:  fmt.Sprintf("S1: at most 8 KB of server RSS per idle stream (%s streams)", n(int64(size))),
			value: rssPerStream,
			show: func(v float64) string {
				if math.IsInf(v, 1) {
					return "not all ready"
				}
				return fmt.Sprintf("%.1f KB", v)
			},
			met: func(v float64) bool { return v <= 8 },
		}
		ts = append(ts, g.evaluate(withStreams(s1, size), f))
	}
	ts = append(ts, readyTarget(s1, f))
	for _, g := range figureGoals {
		ts = append(ts, g.evaluate(primaryRuns(results, g.kind, g.store), f))
	}
	return append(ts, exactlyOnceTarget(results))
}

// rssPerStream is an S1 run's memory per stream; a run where not every
// stream got its snapshot counts as failing the target.
func rssPerStream(r *Result) float64 {
	if r.Ready == 0 || r.Ready < int64(r.Subscribers) {
		return math.Inf(1)
	}
	return r.RSSPerConnKB
}

// streamCounts are the sizes of the S1 runs, smallest first.
func streamCounts(rs []*Result) []int {
	var sizes []int
	for _, r := range rs {
		if !slices.Contains(sizes, r.Subscribers) {
			sizes = append(sizes, r.Subscribers)
		}
	}
	slices.Sort(sizes)
	return sizes
}

func withStreams(rs []*Result, size int) []*Result {
	var out []*Result
	for _, r := range rs {
		if r.Subscribers == size {
			out = append(out, r)
		}
	}
	return out
}

func (g goal) evaluate(rs []*Result, f floors) target {
	t := target{goal: g.text, figure: "not run"}
	if g.floor != nil {
		if v, label, ok := g.floor(f); ok {
			t.floor, t.floorMet = label, g.met(v)
		}
	}
	if len(rs) == 0 {
		return t
	}
	v := median(rs, g.value)
	t.figure, t.met, t.measured = g.show(v), g.met(v), true
	if len(rs) > 1 {
		t.figure = fmt.Sprintf("%s (median of %d runs: %s)", t.figure, len(rs), listOf(rs, g.value, g.show))
	}
	return t
}

// primaryRuns are the runs of a kind (and store prefix) made with the
// default epoll reader and the server's usual flags.
func primaryRuns(results []*Result, kind, store string) []*Result {
	var rs []*Result
	for _, r := range results {
		if r.Scenario == kind && r.Reader == "epoll" && r.Variant == "" && strings.HasPrefix(r.Store, store) {
			rs = append(rs, r)
		}
	}
	return rs
}

// median returns the middle value (the lower middle of an even count).
func median(rs []*Result, value func(*Result) float64) float64 {
	vs := make([]float64, len(rs))
	for i, r := range rs {
		vs[i] = value(r)
	}
	slices.Sort(vs)
	return vs[(len(vs)-1)/2]
}

func listOf(rs []*Result, value func(*Result) float64, show func(float64) string) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = show(value(r))
	}
	return strings.Join(parts, ", ")
}

// readyTarget judges the largest S1 runs on the median time until every
// stream had its snapshot; a run where some never did counts as too slow.
func readyTarget(s1 []*Result, f floors) target {
	sizes := streamCounts(s1)
	if len(sizes) == 0 {
		return target{goal: "S1: all 19,000 streams have their snapshot in under 2 s", figure: "not run"}
	}
	size := sizes[len(sizes)-1]
	g := goal{
		text: "S1: all 19,000 streams have their snapshot in under 2 s",
		value: func(r *Result) float64 {
			if r.Ready < int64(r.Subscribers) {
				return math.Inf(1)
			}
			return r.ConnectSeconds
		},
		show: func(v float64) string {
			if math.IsInf(v, 1) {
				return "not all ready"
			}
			return fmt.Sprintf("%.2f s", v)
		},
		met: func(v float64) bool { return size >= 19000 && v < 2 },
	}
	return g.evaluate(withStreams(s1, size), f)
}

func exactlyOnceTarget(results []*Result) target {
	var missing, dups, runs int64
	for _, r := range results {
		if r.Subscribers > 0 && r.Published > 0 {
			missing += r.Missing
			dups += r.Duplicates + r.Unacked + r.Unknown
			runs++
		}
	}
	return target{
		goal:     "Zero missing and zero duplicate deliveries in every run",
		figure:   fmt.Sprintf("%d missing, %d duplicate or unexpected, over %d runs with subscribers", missing, dups, runs),
		met:      runs > 0 && missing == 0 && dups == 0,
		measured: runs > 0,
	}
}

func writeTargets(w io.Writer, results []*Result, calibrations []Calibration) {
	fmt.Fprint(w, "## Targets\n\n"+
		"The goals the scenarios were designed against. "+
		"The floor is the same figure on this machine with no server work at all (see *Reading the tables*); "+
		"a target the floor itself misses cannot be met here by any server that writes each event to each stream.\n\n"+
		"| target | measured | | this machine's floor |\n| --- | --- | --- | --- |\n")
	for _, t := range targets(results, floorsOf(results, calibrations)) {
		mark := "**not met**"
		switch {
		case !t.measured:
			mark = "not measured"
		case t.met:
			mark = "met"
		case t.floor != "" && !t.floorMet:
			mark = "**not met**; the floor misses it too"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", t.goal, t.figure, mark, t.floor)
	}
	var names []string
	for _, r := range results {
		if disturbed(measuredPhase(r)) {
			names = append(names, r.Name)
		}
	}
	if len(names) > 0 {
		fmt.Fprintf(w, "\n**Something else used the server's core during %s**: those figures understate the server "+
			"(see the notes under each table); rerun on an idle machine (`BENCH_WAIT_QUIET=600 bench/run.sh`).\n",
			strings.Join(names, ", "))
	}
	fmt.Fprintln(w)
}

// scenarioTitles introduce each scenario's table.
var scenarioTitles = map[string]string{
	"S1":  "S1 idle: subscribers connect and stay idle",
	"S2":  "S2 steady fan-out",
	"S2L": "S2L light fan-out",
	"S3":  "S3 burst: facts as fast as the publishers can post",
	"S4":  "S4 publish: no subscribers",
}

func writeScenario(w io.Writer, kind string, rs []*Result) {
	fmt.Fprintf(w, "## %s\n\n", scenarioTitles[kind])
	var head []string
	var row func(*Result) []string
	switch kind {
	case "S1":
		head = []string{"streams", "ready", "failed", "time to all snapshots", "server RSS before → 2 s after → 10 s after", "RSS per stream", "server CPU", "generator CPU"}
		row = func(r *Result) []string {
			return []string{variant(r, n(int64(r.Subscribers))), n(r.Ready), n(r.ConnectFailed), sec(r.ConnectSeconds),
				fmt.Sprintf("%s → %s → %s", mib(r.RSSBeforeKiB), mib(r.RSSAfterKiB), mib(r.RSSIdleKiB)),
				fmt.Sprintf("%.1f KB", r.RSSPerConnKB), serverCPU(r.Connect), genCPU(r.Connect)}
		}
	case "S2", "S2L":
		head = []string{"streams", "facts", "target rate", "achieved rate", "last delivery after", "latency p50", "p99", "max", "publish p99", "missing", "duplicates", "server CPU", "generator CPU"}
		row = func(r *Result) []string {
			return []string{n(int64(r.Subscribers)), n(r.Published), fmt.Sprintf("%.0f/s", r.TargetRate), fmt.Sprintf("%.1f/s", r.AchievedRate), sec(r.DeliverySeconds),
				msec(r.LatencyP50Ms), msec(r.LatencyP99Ms), msec(r.LatencyMaxMs), msec(r.PublishP99Ms),
				n(r.Missing), n(r.Duplicates + r.Unacked + r.Unknown), serverCPU(r.Deliver), genCPU(r.Deliver)}
		}
	case "S3":
		head = []string{"generator reader", "streams", "facts", "publishers", "deliveries", "deliveries/s", "latency p50", "p99", "max", "server CPU s per million", "server core busy s per million", "generator CPU µs per delivery", "missing", "duplicates", "server CPU", "generator CPU"}
		row = func(r *Result) []string {
			return []string{variant(r, r.Reader), n(int64(r.Subscribers)), n(r.Published), n(int64(r.Publishers)), n(r.Deliveries), n(int64(r.DeliveriesPerSecond)),
				msec(r.LatencyP50Ms), msec(r.LatencyP99Ms), msec(r.LatencyMaxMs), fmt.Sprintf("%.2f", r.ServerCPUPerMillion),
				fmt.Sprintf("%.2f", perMillion(r.Deliver.ServerCoreSeconds, r.Deliveries)), fmt.Sprintf("%.2f", perDelivery(r)), n(r.Missing), n(r.Duplicates + r.Unacked + r.Unknown), serverCPU(r.Deliver), genCPU(r.Deliver)}
		}
	case "S4":
		head = []string{"store", "publishers", "duration", "publishes", "failures", "publishes/s", "p50", "p99", "max", "server CPU", "generator CPU"}
		row = func(r *Result) []string {
			return []string{storeCell(r.Store), n(int64(r.Publishers)), sec(r.DurationSeconds), n(r.Published), n(r.PublishFailures), n(int64(r.AchievedRate)),
				msec(r.PublishP50Ms), msec(r.PublishP99Ms), msec(r.PublishMaxMs), serverCPU(r.Deliver), genCPU(r.Deliver)}
		}
	}
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat(" --- |", len(head)))
	for _, r := range rs {
		fmt.Fprintf(w, "| %s |\n", strings.Join(row(r), " | "))
	}
	for _, r := range rs {
		if r.FirstError != "" || r.StreamsEnded > 0 || r.SeqGaps > 0 {
			fmt.Fprintf(w, "\n%s: %d publish failures (first: %s), %d streams ended by the server, %d id gaps.\n",
				r.Name, r.PublishFailures, r.FirstError, r.StreamsEnded, r.SeqGaps)
		}
		if c := measuredPhase(r); disturbed(c) {
			fmt.Fprintf(w, "\n%s: **disturbed**: CPU 0 was %.0f%% busy but the server used %.0f%% of it: "+
				"something else ran there, so these figures understate the server.\n",
				r.Name, c.ServerCoreBusy, serverShare(c))
		}
	}
	fmt.Fprintln(w)
}

// variant marks the first cell of a run made with other server flags.
func variant(r *Result, cell string) string {
	if r.Variant == "" {
		return cell
	}
	return cell + " (`" + r.Variant + "`)"
}

// measuredPhase is the phase a result's figures come from.
func measuredPhase(r *Result) CPU {
	if r.Published+r.PublishFailures > 0 {
		return r.Deliver
	}
	return r.Connect
}

// serverShare is the share of its core the server process used, 0-100.
func serverShare(c CPU) float64 {
	if c.WallSeconds <= 0 {
		return 0
	}
	return 100 * c.ServerSeconds / c.WallSeconds
}

// disturbed tells a phase where the server's core was much busier than the
// server: on an otherwise idle machine the two differ by a few points (the
// softirq work the server's own writes cause), while another process on
// that core shows as a wide gap. Process times are in 10 ms ticks, so a
// short phase is not judged.
func disturbed(c CPU) bool {
	return c.WallSeconds >= 1 && c.ServerCoreBusy-serverShare(c) > 15
}

func perMillion(seconds float64, count int64) float64 {
	if count == 0 {
		return 0
	}
	return seconds * 1e6 / float64(count)
}

func perDelivery(r *Result) float64 {
	if r.Deliveries == 0 {
		return 0
	}
	return r.Deliver.GeneratorSeconds * 1e6 / float64(r.Deliveries)
}

func serverCPU(c CPU) string {
	return fmt.Sprintf("%.2f s (%.0f%%)", c.ServerSeconds, c.ServerCoreBusy)
}
func genCPU(c CPU) string   { return fmt.Sprintf("%.2f s (%.0f%%)", c.GeneratorSeconds, c.GenCoreBusy) }
func sec(s float64) string  { return fmt.Sprintf("%.2f s", s) }
func msec(v float64) string { return fmt.Sprintf("%.2f ms", v) }

// mib formats a reading in KiB as MiB; 0 means it was not read.
func mib(kib int64) string {
	if kib == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f MiB", float64(kib)/1024)
}

func rate(v float64) string { return n(int64(v+0.5)) + "/s" }

// n formats an integer with thousands separators.
func n(v int64) string {
	if v < 0 {
		return "-" + n(-v)
	}
	s := fmt.Sprint(v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// storeCell shows a store setting as code, and the floor's label as text.
func storeCell(store string) string {
	if !strings.Contains(store, ":") {
		return store
	}
	return "`" + store + "`"
}
