package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"factstream/store"
)

// runCLI runs the built binary with args and no FACTSTREAM_URL or
// FACTSTREAM_TOKEN of the caller's, and returns its exit code and output.
func runCLI(tb testing.TB, args ...string) (code int, stdout, stderr string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = append(os.Environ(), "FACTSTREAM_URL=", "FACTSTREAM_TOKEN=")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); ok {
		return exit.ExitCode(), out.String(), errOut.String()
	}
	if err != nil {
		tb.Fatalf("factstream %s: %v", strings.Join(args, " "), err)
	}
	return 0, out.String(), errOut.String()
}

func TestPostCommandStoresOnce(t *testing.T) {
	srv := startServer(t, testConfig(t))
	code, stdout, stderr := runCLI(t, "post", "--url", srv.URL, "Shark teeth are embedded in the gums.", "--source", "https://en.wikipedia.org/wiki/Shark")
	if code != 0 || stderr != "" {
		t.Fatalf("post exited %d, stderr %q", code, stderr)
	}
	var printed store.Fact
	if err := json.Unmarshal([]byte(stdout), &printed); err != nil || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("post printed %q: %v; want one fact as JSON", stdout, err)
	}
	stored := allFacts(t, srv.URL)
	if len(stored) != 1 || stored[0].ID != printed.ID || stored[0].Seq != 1 ||
		stored[0].Info != "Shark teeth are embedded in the gums." || stored[0].Source != "https://en.wikipedia.org/wiki/Shark" {
		t.Fatalf("stored %+v, printed %+v; want the one fact", stored, printed)
	}
}

func TestPostCommandPrintsTheProblem(t *testing.T) {
	cfg := testConfig(t)
	cfg.PublishTokens = []string{"publish-token-0123456789"}
	srv := startServer(t, cfg)
	tests := []struct {
		name   string
		args   []string
		stderr []string
	}{
		{"EmptyInfo", []string{"post", "--token", "publish-token-0123456789", ""}, []string{"400", "info: "}},
		{"BadSource", []string{"post", "--token", "publish-token-0123456789", "--source", "ftp://example.com", "x"},
			[]string{"400", "source: must be an absolute http or https URL"}},
		{"NoToken", []string{"post", "x"}, []string{"401"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append(tt.args, "--url", srv.URL)...)
			if code != 1 || stdout != "" {
				t.Fatalf("post exited %d with stdout %q, want 1 and nothing", code, stdout)
			}
			for _, want := range tt.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr %q lacks %q", stderr, want)
				}
			}
			if strings.Contains(stderr, "trying again") {
				t.Errorf("retried a request that cannot succeed: %q", stderr)
			}
		})
	}
	var status struct{ Facts int }
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/status", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := jsonDecode(resp, &status); err != nil || status.Facts != 0 {
		t.Fatalf("%d facts stored after rejections (%v)", status.Facts, err)
	}
}

// tailProcess is "factstream tail" running, its lines read as they come.
type tailProcess struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *lockedBuffer
	done   chan error
}

func startTail(tb testing.TB, env []string, args ...string) *tailProcess {
	tb.Helper()
	p := &tailProcess{cmd: exec.Command(binPath, append([]string{"tail"}, args...)...),
		lines: make(chan string, 100), stderr: &lockedBuffer{}, done: make(chan error, 1)}
	p.cmd.Env = append(append(os.Environ(), "FACTSTREAM_URL=", "FACTSTREAM_TOKEN="), env...)
	p.cmd.Stderr = p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.done <- p.cmd.Wait()
	}()
	tb.Cleanup(func() {
		p.cmd.Process.Kill()
		for range p.lines {
		}
		if tb.Failed() {
			tb.Logf("factstream tail stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

// expect reads lines until the fact with seq last, failing unless they
// are the facts from first to last, once each and in order.
func (p *tailProcess) expect(tb testing.TB, first, last uint64) {
	tb.Helper()
	timeout := time.After(20 * time.Second)
	for want := first; want <= last; want++ {
		select {
		case line, ok := <-p.lines:
			if !ok {
				tb.Fatalf("tail exited before seq %d", want)
			}
			var f store.Fact
			if err := json.Unmarshal([]byte(line), &f); err != nil {
				tb.Fatalf("line %q is no fact: %v", line, err)
			}
			if f.Seq != want || f.Info != fmt.Sprintf("fact %d", want) {
				tb.Fatalf("line %q, want fact %d: lost, repeated or out of order", line, want)
			}
		case <-timeout:
			tb.Fatalf("timed out waiting for seq %d", want)
		}
	}
}

func TestTailCommandAcrossARestart(t *testing.T) {
	cfg := testConfig(t)
	cfg.Store = "bolt:" + filepath.Join(t.TempDir(), "facts.db")
	cfg.Retry = 50 * time.Millisecond
	srv := startServer(t, cfg)
	post := func(from, to int) {
		for i := from; i <= to; i++ {
			postFact(t, srv.URL, fmt.Sprintf("fact %d", i))
		}
	}
	post(1, 3)
	proxy := startProxy(t, srv.Addr)
	tail := startTail(t, []string{"FACTSTREAM_URL=" + proxy.URL()})
	tail.expect(t, 1, 3)

	post(4, 5)
	tail.expect(t, 4, 5)
	if proxy.Cut() == 0 {
		t.Fatal("no stream to cut")
	}
	post(6, 7)
	tail.expect(t, 6, 7)

	srv.Stop(t)
	cfg.Addr = srv.Addr
	srv = startServer(t, cfg)
	post(8, 10)
	tail.expect(t, 8, 10)

	tail.cmd.Process.Signal(os.Interrupt)
	select {
	case line, ok := <-tail.lines:
		if ok {
			t.Fatalf("an extra line after the last fact: %q", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tail did not end on SIGINT")
	}
	if err := <-tail.done; err != nil {
		t.Fatalf("tail ended with %v after SIGINT, want exit 0", err)
	}
	if n := strings.Count(tail.stderr.String(), "trying again"); n < 2 {
		t.Fatalf("tail noted %d reconnections, want at least 2 (a cut and a restart):\n%s", n, tail.stderr.String())
	}
}

func TestTailCommandResumesAfter(t *testing.T) {
	srv := startServer(t, testConfig(t))
	for i := 1; i <= 4; i++ {
		postFact(t, srv.URL, fmt.Sprintf("fact %d", i))
	}
	tail := startTail(t, nil, "--url", srv.URL, "--after", "2")
	tail.expect(t, 3, 4)
}

// versionOf runs a binary's "version" and returns the version on its first
// line, checking that "--version" says the same.
func versionOf(tb testing.TB, bin string) (string, string) {
	tb.Helper()
	var outputs []string
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.Command(bin, arg).Output()
		if err != nil {
			tb.Fatalf("%s %s: %v", bin, arg, err)
		}
		outputs = append(outputs, string(out))
	}
	if outputs[0] != outputs[1] {
		tb.Fatalf("version and --version differ:\n%s\n%s", outputs[0], outputs[1])
	}
	first, _, _ := strings.Cut(outputs[0], "\n")
	v, ok := strings.CutPrefix(first, "factstream ")
	if !ok || v == "" || strings.Contains(v, "(devel)") {
		tb.Fatalf("version printed %q", outputs[0])
	}
	return v, outputs[0]
}

func statusVersion(tb testing.TB, bin string) string {
	tb.Helper()
	addr := freePort(tb)
	p := startCommand(tb, tb.TempDir(), addr, []string{bin, "--store=memory:"})
	var status struct{ Version string }
	if code := getJSON(tb, p.URL+"/status", &status); code != http.StatusOK {
		tb.Fatalf("/status = %d", code)
	}
	return status.Version
}

func TestVersionCommandAgreesWithStatus(t *testing.T) {
	v, details := versionOf(t, binPath)
	for _, want := range []string{"revision:", "built:", "go:        go1."} {
		if !strings.Contains(details, want) {
			t.Errorf("version lacks %q:\n%s", want, details)
		}
	}
	if got := statusVersion(t, binPath); got != v {
		t.Fatalf("/status says version %q, factstream version %q", got, v)
	}
}

// TestVersionFromTheLinker builds as the Dockerfile does, without VCS
// information and with the version passed to the linker.
func TestVersionFromTheLinker(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "factstream")
	build := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-o", bin,
		"-ldflags", "-X factstream/buildinfo.version=v9.8.7-test -X factstream/buildinfo.revision=0123456789abcdef -X factstream/buildinfo.buildTime=2026-11-23T08:00:00Z",
		"..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	v, details := versionOf(t, bin)
	if v != "v9.8.7-test" || !strings.Contains(details, "revision:  0123456789abcdef\n") || !strings.Contains(details, "built:     2026-11-23T08:00:00Z\n") {
		t.Fatalf("version printed:\n%s", details)
	}
	if got := statusVersion(t, bin); got != v {
		t.Fatalf("/status says version %q, factstream version %q", got, v)
	}
}

func TestHelpListsCommandsAndSettings(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}} {
		code, stdout, _ := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v exited %d", args, code)
		}
		for _, want := range []string{"\n  serve ", "\n  post ", "\n  tail ", "\n  import ", "\n  healthcheck ", "\n  version ", "--addr (FACTSTREAM_ADDR", "--store"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("factstream %s lacks %q:\n%s", args[0], want, stdout)
			}
		}
	}
	code, stdout, _ := runCLI(t, "serve", "-h")
	if code != 0 || !strings.Contains(stdout, "--addr (FACTSTREAM_ADDR") || strings.Contains(stdout, "\n  tail ") {
		t.Fatalf("serve -h exited %d and printed:\n%s\nwant the settings alone", code, stdout)
	}
}
