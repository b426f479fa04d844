//go:build linux

package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The cluster section of BENCHMARKS.md lies between these lines, so that
// the cluster scenarios and the single-instance ones can be rerun apart
// without losing each other's figures.
const (
	clusterBegin = "<!-- cluster scenarios: begin (bench/run.sh cluster) -->"
	clusterEnd   = "<!-- cluster scenarios: end -->"
)

// clusterMeta is what the section says about its run besides the results.
type clusterMeta struct {
	Date, Machine, Revision, Baseline, Busy string
	Commands, Notes                         string // contents of files
}

// redisFloor is one redis-benchmark run, from its --csv output.
type redisFloor struct {
	Name          string
	RPS, P50, P99 float64
}

func clusterReportCommand(args []string) error {
	var m clusterMeta
	var out, commands, notes string
	var floors []redisFloor
	fs := flag.NewFlagSet("loadgen cluster-report", flag.ContinueOnError)
	fs.StringVar(&out, "out", "BENCHMARKS.md", "file whose cluster section to write (the rest is kept)")
	fs.StringVar(&m.Date, "date", "", "date of the run")
	fs.StringVar(&m.Machine, "machine", "", "cores and memory of the machine")
	fs.StringVar(&m.Revision, "revision", "", "revision of the build benchmarked")
	fs.StringVar(&m.Baseline, "baseline", "", "revision of the build it is compared with")
	fs.StringVar(&m.Busy, "busy", "", "how busy the machine was, in words")
	fs.StringVar(&commands, "commands", "", "file holding the commands that were run")
	fs.StringVar(&notes, "notes", "", "file holding remarks on the run (markdown)")
	fs.Func("floor", "name=file: redis-benchmark --csv output of one floor run (repeatable)", func(v string) error {
		name, path, ok := strings.Cut(v, "=")
		if !ok {
			return fmt.Errorf("-floor %q: want name=file", v)
		}
		f, err := readRedisFloor(name, path)
		if err == nil {
			floors = append(floors, f)
		}
		return err
	})
	if err := fs.Parse(args); err != nil {
		return err
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
	paths := fs.Args()
	slices.SortFunc(paths, func(a, b string) int { return strings.Compare(runOrder(a), runOrder(b)) })
	results, err := readResults(paths)
	if err != nil {
		return err
	}
	var b strings.Builder
	writeClusterSection(&b, m, results, floors)
	old, err := os.ReadFile(out)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", out, err)
	}
	if err := os.WriteFile(out, []byte(clusterMarks.splice(string(old), b.String())), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// marked is a section of BENCHMARKS.md between two marker lines: one mode
// of bench/run.sh writes it, and the others keep it as it is.
type marked struct{ begin, end string }

var (
	clusterMarks = marked{clusterBegin, clusterEnd}
	compareMarks = marked{compareBegin, compareEnd}
)

// splice puts section between the markers in doc, in place of what was
// there; when doc has none, before the first line that starts with one of
// before, else at the end.
func (m marked) splice(doc, section string, before ...string) string {
	section = m.begin + "\n" + strings.TrimSpace(section) + "\n" + m.end + "\n"
	i := strings.Index(doc, m.begin)
	j := strings.Index(doc, m.end)
	if i >= 0 && j > i {
		return doc[:i] + section + strings.TrimPrefix(doc[j+len(m.end):], "\n")
	}
	if k := lineStarting(doc, before); k >= 0 {
		return doc[:k] + section + "\n" + doc[k:]
	}
	if doc != "" && !strings.HasSuffix(doc, "\n\n") {
		doc = strings.TrimRight(doc, "\n") + "\n\n"
	}
	return doc + section
}

// lineStarting is the offset of the first line of doc that starts with
// one of prefixes, or -1.
func lineStarting(doc string, prefixes []string) int {
	off := 0
	for line := range strings.SplitAfterSeq(doc, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(line, p) {
				return off
			}
		}
		off += len(line)
	}
	return -1
}

// of returns the section of doc, markers included, or "" when it has
// none.
func (m marked) of(doc string) string {
	i := strings.Index(doc, m.begin)
	j := strings.Index(doc, m.end)
	if i < 0 || j < i {
		return ""
	}
	return doc[i:j+len(m.end)] + "\n"
}

func readRedisFloor(name, path string) (redisFloor, error) {
	f, err := os.Open(path)
	if err != nil {
		return redisFloor{}, fmt.Errorf("read floor: %w", err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 2 {
		return redisFloor{}, fmt.Errorf("read floor %s: want a header and a row of redis-benchmark --csv, %v", path, err)
	}
	col := func(want string) float64 {
		for i, h := range rows[0] {
			if h == want && i < len(rows[1]) {
				v, _ := strconv.ParseFloat(rows[1][i], 64)
				return v
			}
		}
		return 0
	}
	return redisFloor{Name: name, RPS: col("rps"), P50: col("p50_latency_ms"), P99: col("p99_latency_ms")}, nil
}

var runSuffix = regexp.MustCompile(`-run\d+$`)

// runOrder sorts a result file's runs as they ran: the first run has no
// suffix, the next ones -run2, -run3.
func runOrder(path string) string {
	name := strings.TrimSuffix(path, ".json")
	if !runSuffix.MatchString(name) {
		name += "-run1"
	}
	return name
}

// baseName is a run's name without its repeat suffix.
func baseName(name string) string { return runSuffix.ReplaceAllString(name, "") }

func medianOf(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// runsOf groups results by base name, in the order of names.
func runsOf(results []*Result, name string) []*Result {
	var out []*Result
	for _, r := range results {
		if baseName(r.Name) == name {
			out = append(out, r)
		}
	}
	return out
}

func figures(rs []*Result, f func(*Result) float64) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

func joinFigures(vs []float64, format string) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprintf(format, v)
	}
	return strings.Join(parts, " / ")
}

func writeClusterSection(w io.Writer, m clusterMeta, results []*Result, floors []redisFloor) {
	fmt.Fprintf(w, "## Cluster: two instances on one Redis\n\n")
	fmt.Fprintf(w, "Generated by `bench/run.sh cluster` (rerun it rather than edit). One `redis-server` "+
		"started by the script on a free loopback port with the AOF on, `appendfsync always` and then `everysec`, "+
		"fresh for every run; two factstream instances (A and B) on it, both pinned to CPU 0; the load generator "+
		"and Redis pinned to CPU 1. Every figure is the median of 3 runs (all three after it).\n\n")
	fmt.Fprintf(w, "| | |\n| --- | --- |\n| date | %s |\n| machine | %s |\n| build | %s |\n| compared with | %s |\n| machine load | %s |\n\n",
		m.Date, m.Machine, m.Revision, m.Baseline, m.Busy)

	fmt.Fprintf(w, "### Publishes per second through Redis (64 concurrent publishers to B, no subscribers, 10 s)\n\n")
	fmt.Fprintf(w, "| build | appendfsync | publishes/s | runs | publish p50 ms | publish p99 ms | runs (p99) | failed | commits | appends per commit |\n")
	fmt.Fprintf(w, "| --- | --- | ---: | --- | ---: | ---: | --- | ---: | ---: | ---: |\n")
	rates := map[string]float64{}
	p99s := map[string]float64{}
	for _, c := range []struct{ name, build, fsync string }{
		{"C3-new-always", "this build", "always"},
		{"C3-base-always", "before group commit", "always"},
		{"C3-new-everysec", "this build", "everysec"},
		{"C3-base-everysec", "before group commit", "everysec"},
	} {
		rs := runsOf(results, c.name)
		if len(rs) == 0 {
			continue
		}
		rate := figures(rs, func(r *Result) float64 { return r.AchievedRate })
		p99 := figures(rs, func(r *Result) float64 { return r.PublishP99Ms })
		rates[c.name], p99s[c.name] = medianOf(rate), medianOf(p99)
		var failed int64
		for _, r := range rs {
			failed += r.PublishFailures
		}
		commits := figures(rs, func(r *Result) float64 { return float64(r.StoreCommits) })
		appends := figures(rs, func(r *Result) float64 { return float64(r.StoreAppends) })
		commitCol, perCommit := "–", "–"
		if medianOf(commits) > 0 {
			commitCol = fmt.Sprintf("%.0f", medianOf(commits))
			perCommit = fmt.Sprintf("%.1f", medianOf(appends)/medianOf(commits))
		}
		fmt.Fprintf(w, "| %s | %s | **%.0f** | %s | %.2f | %.2f | %s | %d | %s | %s |\n", c.build, c.fsync,
			medianOf(rate), joinFigures(rate, "%.0f"),
			medianOf(figures(rs, func(r *Result) float64 { return r.PublishP50Ms })), medianOf(p99), joinFigures(p99, "%.2f"),
			failed, commitCol, perCommit)
	}
	fmt.Fprintln(w)
	for _, fsync := range []string{"always", "everysec"} {
		n, b := rates["C3-new-"+fsync], rates["C3-base-"+fsync]
		if n > 0 && b > 0 {
			target := ""
			if fsync == "always" {
				target = " (the target: 2.6×)"
			}
			fmt.Fprintf(w, "With `appendfsync %s` this build publishes **%.2f×** as many facts per second as the build before it%s, "+
				"with a publish p99 of %.2f ms against %.2f ms.\n\n", fsync, n/b, target, p99s["C3-new-"+fsync], p99s["C3-base-"+fsync])
		}
	}

	fmt.Fprintf(w, "### Fan-out: 1,000 subscribers on A, 200 facts/s (2,000 facts, 16 publishers)\n\n")
	fmt.Fprintf(w, "| facts posted to | appendfsync | delivery p50 ms | delivery p99 ms | runs (p99) | max ms | publish p99 ms | missing | duplicates | seq gaps | streams ended |\n")
	fmt.Fprintf(w, "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, c := range []struct{ name, where, fsync string }{
		{"C1-always", "B (across instances)", "always"},
		{"C2-always", "A (the same instance)", "always"},
		{"C1-everysec", "B (across instances)", "everysec"},
		{"C2-everysec", "A (the same instance)", "everysec"},
	} {
		rs := runsOf(results, c.name)
		if len(rs) == 0 {
			continue
		}
		p99 := figures(rs, func(r *Result) float64 { return r.LatencyP99Ms })
		var missing, dups, gaps, ended int64
		for _, r := range rs {
			missing += r.Missing
			dups += r.Duplicates
			gaps += r.SeqGaps
			ended += r.StreamsEnded
		}
		fmt.Fprintf(w, "| %s | %s | %.2f | **%.2f** | %s | %.2f | %.2f | %d | %d | %d | %d |\n", c.where, c.fsync,
			medianOf(figures(rs, func(r *Result) float64 { return r.LatencyP50Ms })), medianOf(p99), joinFigures(p99, "%.2f"),
			medianOf(figures(rs, func(r *Result) float64 { return r.LatencyMaxMs })),
			medianOf(figures(rs, func(r *Result) float64 { return r.PublishP99Ms })), missing, dups, gaps, ended)
	}
	fmt.Fprintln(w)

	if len(floors) > 0 {
		fmt.Fprintf(w, "### The floor: Redis alone (`redis-benchmark`, 64 clients, `XADD` of one 100-byte field)\n\n")
		fmt.Fprintf(w, "| appendfsync | pipeline | XADD/s | runs | p50 ms | p99 ms |\n| --- | ---: | ---: | --- | ---: | ---: |\n")
		var names []string
		for _, f := range floors {
			if n := baseName(f.Name); !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
		for _, n := range names {
			var rps, p50, p99 []float64
			for _, f := range floors {
				if baseName(f.Name) == n {
					rps, p50, p99 = append(rps, f.RPS), append(p50, f.P50), append(p99, f.P99)
				}
			}
			fsync, depth := floorLabels(n)
			fmt.Fprintf(w, "| %s | %s | **%.0f** | %s | %.2f | %.2f |\n", fsync, depth, medianOf(rps), joinFigures(rps, "%.0f"), medianOf(p50), medianOf(p99))
		}
		fmt.Fprintln(w)
	}
	if m.Notes != "" {
		fmt.Fprintf(w, "### Notes\n\n%s\n\n", m.Notes)
	}
	if m.Commands != "" {
		fmt.Fprintf(w, "### Commands\n\n```sh\n%s\n```\n", m.Commands)
	}
}

// floorLabels reads "floor-<fsync>-P<depth>".
func floorLabels(name string) (fsync, depth string) {
	parts := strings.Split(name, "-")
	if len(parts) != 3 {
		return name, "?"
	}
	return parts[1], strings.TrimPrefix(parts[2], "P")
}
