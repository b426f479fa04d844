package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"factstream/store"
)

// exampleProc is one of the examples running as a process, its output
// collected line by line. The test owns it: Cleanup ends it.
type exampleProc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // how it exited, once done is closed

	mu     sync.Mutex
	stdout []string
	stderr bytes.Buffer
}

// startExample runs program with args in dir, feeding it stdin.
func startExample(tb testing.TB, name, dir, stdin, program string, args ...string) *exampleProc {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &exampleProc{name: name, cmd: exec.CommandContext(ctx, program, args...), done: make(chan struct{})}
	p.cmd.Dir = dir
	p.cmd.Stdin = strings.NewReader(stdin)
	p.cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		cancel()
		tb.Fatalf("start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.stdout = append(p.stdout, sc.Text())
			p.mu.Unlock()
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		cancel()
		<-p.done
	})
	return p
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// lines returns what the process printed so far.
func (p *exampleProc) lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.stdout)
}

func (p *exampleProc) errors() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// wait waits for the process to exit and fails unless it succeeded.
func (p *exampleProc) wait(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		tb.Fatalf("%s still runs after %v; stderr:\n%s", p.name, timeout, p.errors())
	}
	if p.err != nil {
		tb.Fatalf("%s: %v; stderr:\n%s", p.name, p.err, p.errors())
	}
}

// facts decodes every line printed so far as a fact.
func (p *exampleProc) facts(tb testing.TB) []store.Fact {
	tb.Helper()
	var facts []store.Fact
	for _, line := range p.lines() {
		var f store.Fact
		if err := json.Unmarshal([]byte(line), &f); err != nil {
			tb.Fatalf("%s printed %q, not a fact: %v", p.name, line, err)
		}
		facts = append(facts, f)
	}
	return facts
}

// exampleTool returns the path of a program the examples need; without it
// the test is skipped, except under CI=true.
func exampleTool(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		skipUnlessCI(tb, name+" not found in PATH: the examples' test needs Node 20 with npm, and Python 3.11")
	}
	return path
}

// installNodeExample copies examples/node to a temporary directory and
// installs its locked dependencies there with npm ci.
func installNodeExample(tb testing.TB, npm string) string {
	tb.Helper()
	dir := tb.TempDir()
	for _, name := range []string{"package.json", "package-lock.json", "subscribe.mjs", "publish.mjs"} {
		b, err := os.ReadFile(filepath.Join("..", "examples", "node", name))
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--prefer-offline", "--ignore-scripts")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("npm ci in a copy of examples/node: %v\n%s", err, out)
	}
	return dir
}

// numbered returns the facts from..to of the examples' test, one a line.
func numbered(from, to int) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		fmt.Fprintf(&b, "Example fact %d: ünïcode, <b>not bold</b> & \"quoted\"\n", i)
	}
	return b.String()
}

// TestExamplesAcrossDisconnectsAndARestart runs the Node and Python
// subscribers and publishers against a live server through a proxy that
// cuts every connection once, then across a server restart: each
// subscriber prints every fact exactly once and in order, and every
// published line is stored exactly once.
func TestExamplesAcrossDisconnectsAndARestart(t *testing.T) {
	node, npm, python := exampleTool(t, "node"), exampleTool(t, "npm"), exampleTool(t, "python3")
	nodeDir := installNodeExample(t, npm)
	pyDir, err := filepath.Abs(filepath.Join("..", "examples", "python"))
	if err != nil {
		t.Fatal(err)
	}

	cfg := testConfig(t)
	cfg.Store = "bolt:" + filepath.Join(t.TempDir(), "facts.db") // kept across the restart
	cfg.Retry = 200 * time.Millisecond
	srv := startServer(t, cfg)
	proxy := startProxy(t, srv.Addr)
	base := proxy.URL()

	subs := []*exampleProc{
		startExample(t, "node subscribe.mjs", nodeDir, "", node, "subscribe.mjs", base),
		startExample(t, "python3 subscribe.py", pyDir, "", python, "subscribe.py", base),
	}
	waitStreams(t, srv.URL, len(subs))
	printed := func(n int) {
		t.Helper()
		for _, s := range subs {
			eventually(t, 30*time.Second, fmt.Sprintf("%s to print %d facts (stderr: %s)", s.name, n, s.errors()),
				func() bool { return len(s.lines()) >= n })
		}
	}

	startExample(t, "node publish.mjs", nodeDir, numbered(1, 5), node, "publish.mjs", base).wait(t, time.Minute)
	printed(5)

	if proxy.Cut() == 0 {
		t.Fatal("the proxy had no connection to cut")
	}
	// The subscribers resume through the proxy; the publisher's first
	// request may find its kept-alive connection cut and retry.
	startExample(t, "python3 publish.py", pyDir, numbered(6, 10), python, "publish.py", base).wait(t, time.Minute)
	printed(10)

	srv.Stop(t)
	pub := startExample(t, "python3 publish.py", pyDir, numbered(11, 15), python, "publish.py", base)
	eventually(t, 30*time.Second, "the publisher to retry while the server is down",
		func() bool { return strings.Contains(pub.errors(), "retrying") })
	cfg.Addr = srv.Addr
	srv = startServer(t, cfg)
	pub.wait(t, time.Minute)
	startExample(t, "node publish.mjs", nodeDir, numbered(16, 20), node, "publish.mjs", base).wait(t, time.Minute)
	printed(20)

	want := strings.Split(strings.TrimSuffix(numbered(1, 20), "\n"), "\n")
	stored := allFacts(t, srv.URL)
	checkGapless(t, stored)
	if got := infos(stored); !slices.Equal(got, want) {
		t.Fatalf("the store holds %d facts:\n%s\nwant each published line once, in order", len(got), strings.Join(got, "\n"))
	}
	for _, s := range subs {
		facts := s.facts(t)
		if got := infos(facts); !slices.Equal(got, want) {
			t.Errorf("%s printed %d facts:\n%s\nwant each fact once, in order", s.name, len(got), strings.Join(got, "\n"))
		}
		for i, f := range facts {
			if f.Seq != uint64(i+1) {
				t.Errorf("%s printed seq %d as fact #%d", s.name, f.Seq, i+1)
				break
			}
		}
	}
}

func infos(facts []store.Fact) []string {
	out := make([]string, len(facts))
	for i, f := range facts {
		out[i] = f.Info
	}
	return out
}

// waitStreams waits until n streams are open on the server at base.
func waitStreams(tb testing.TB, base string, n int) {
	tb.Helper()
	eventually(tb, 30*time.Second, fmt.Sprintf("%d open streams", n), func() bool {
		var st struct {
			Clients int `json:"clients"`
		}
		return getJSON(tb, base+"/status", &st) == 200 && st.Clients >= n
	})
}

// snippetMark introduces a code block of the docs copied from an example:
// <!-- docs snippet: examples/node/subscribe.mjs subscribe -->.
var snippetMark = regexp.MustCompile("(?m)^<!-- docs snippet: (\\S+) (\\S+) -->\n```[a-z]*\n((?s:.*?))```\n")

// TestExamplesInTheDocsAreTheExamplesCode keeps the JavaScript and Python
// snippets of the README and docs/clients.md equal to the marked regions
// of the example files that the examples' test runs.
func TestExamplesInTheDocsAreTheExamplesCode(t *testing.T) {
	for _, doc := range []string{"README.md", filepath.Join("docs", "clients.md")} {
		t.Run(doc, func(t *testing.T) {
			found := checkSnippets(t, doc)
			for _, dir := range []string{"examples/node", "examples/python"} {
				if found[dir] == 0 {
					t.Errorf("%s shows no snippet from %s", doc, dir)
				}
			}
		})
	}
}

// checkSnippets compares every marked snippet of doc with its region and
// returns how many it found per example directory.
func checkSnippets(t *testing.T, doc string) map[string]int {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("..", doc))
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]int{}
	for _, m := range snippetMark.FindAllStringSubmatch(string(text), -1) {
		file, name, block := m[1], m[2], m[3]
		src, err := os.ReadFile(filepath.Join("..", file))
		if err != nil {
			t.Errorf("%s snippet from %s: %v", doc, file, err)
			continue
		}
		region, ok := snippetRegion(string(src), name)
		if !ok {
			t.Errorf("%s has no region %q (docs snippet: %s ... docs snippet end)", file, name, name)
			continue
		}
		if block != region {
			t.Errorf("the snippet %s of %s in %s differs from the file; copy the region again:\n%s", name, file, doc, region)
		}
		found[filepath.Dir(file)]++
	}
	return found
}

// snippetRegion returns the lines between "docs snippet: name" and the
// next "docs snippet end" in src, without their common indentation.
func snippetRegion(src, name string) (string, bool) {
	var region []string
	in := false
	for _, line := range strings.Split(src, "\n") {
		mark := strings.TrimLeft(strings.TrimSpace(line), "/# ")
		switch {
		case !in && mark == "docs snippet: "+name:
			in = true
		case in && mark == "docs snippet end":
			return dedent(region), true
		case in:
			region = append(region, line)
		}
	}
	return "", false
}

func dedent(lines []string) string {
	indent := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if n := len(l) - len(strings.TrimLeft(l, " ")); indent < 0 || n < indent {
			indent = n
		}
	}
	var b strings.Builder
	for _, l := range lines {
		if len(l) >= indent && indent > 0 {
			l = l[indent:]
		}
		b.WriteString(strings.TrimRight(l, " ") + "\n")
	}
	return b.String()
}
