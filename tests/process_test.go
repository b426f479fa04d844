package tests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"factstream/store"
)

// proc is the factstream binary running as a child process.
type proc struct {
	cmd  *exec.Cmd
	URL  string
	logs *lockedBuffer
	done chan error
}

// lockedBuffer collects a child's output for failure messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startProcess runs the binary in dir with args and waits for /healthz on
// addr.
func startProcess(tb testing.TB, dir, addr string, args ...string) *proc {
	tb.Helper()
	return startCommand(tb, dir, addr, append([]string{binPath}, args...))
}

// startCommand is startProcess for a command line that runs the binary
// through a wrapper (such as prlimit).
func startCommand(tb testing.TB, dir, addr string, argv []string) *proc {
	tb.Helper()
	p := &proc{
		cmd:  exec.Command(argv[0], argv[1:]...),
		URL:  "http://" + addr,
		logs: &lockedBuffer{},
		done: make(chan error, 1),
	}
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), "FACTSTREAM_ADDR="+addr)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start factstream: %v", err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	tb.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if tb.Failed() {
			tb.Logf("factstream output:\n%s", p.logs.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(p.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			return p
		}
		select {
		case err := <-p.done:
			p.done <- err
			tb.Fatalf("factstream exited at start: %v\n%s", err, p.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("factstream not healthy within 10s\n%s", p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait returns the process's exit error once it has exited.
func (p *proc) wait(tb testing.TB) error {
	tb.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(20 * time.Second):
		tb.Fatal("factstream did not exit within 20s")
		return nil
	}
}

// tutorialURL is where the README's curl commands find the service.
const tutorialURL = "http://localhost:3000"

// atPort is a tutorial command line with its URLs moved to the port the
// test was given (addr is host:port): the commands are the README's, only
// the port differs, so the test runs beside a service already on 3000.
func atPort(t *testing.T, addr string, argv ...string) []string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(argv))
	moved := false
	for i, a := range argv {
		out[i] = strings.ReplaceAll(a, tutorialURL, "http://localhost:"+port)
		moved = moved || out[i] != a
	}
	if !moved {
		// Otherwise the command would reach whatever listens on 3000.
		t.Fatalf("tutorial command %q has no %s URL to move", argv, tutorialURL)
	}
	return out
}

// TestTutorialCurlFlow runs the tutorial's commands against the binary
// started as the README starts it (no flags, so its default store), on a
// free loopback port given through FACTSTREAM_ADDR.
func TestTutorialCurlFlow(t *testing.T) {
	for _, tool := range []string{"curl", "stdbuf"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipUnlessCI(t, tool+" is not installed: the tutorial's commands need it (scripts/test-deps.sh installs curl)")
		}
	}
	dir := t.TempDir()
	addr := freePort(t)
	cmd := exec.Command(binPath)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FACTSTREAM_ADDR="+addr)
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("factstream output:\n%s", logs.String())
		}
	}()
	waitHealthy(t, "http://"+addr)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// stdbuf makes curl write each line as it comes, as it does on a
	// terminal; the curl command itself is the tutorial's.
	follow := atPort(t, addr, "curl", "-H", "Accept:text/event-stream", tutorialURL+"/events")
	listen := exec.CommandContext(ctx, "stdbuf", append([]string{"-o0"}, follow...)...)
	out, err := listen.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := listen.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); listen.Wait() }()
	lines := bufio.NewScanner(out)
	waitLine := func(pred func(string) bool, what string) string {
		t.Helper()
		for lines.Scan() {
			if pred(lines.Text()) {
				return lines.Text()
			}
		}
		t.Fatalf("curl output ended before %s", what)
		return ""
	}
	waitLine(func(l string) bool { return l == "data: []" }, "data: []")

	post := atPort(t, addr, "curl", "-X", "POST",
		"-H", "Content-Type: application/json",
		"-d", `{"info": "Shark teeth are embedded in the gums rather than directly affixed to the jaw, and are constantly replaced throughout life.", "source": "https://en.wikipedia.org/wiki/Shark"}`,
		"-s", tutorialURL+"/fact")
	posted, err := exec.Command(post[0], post[1:]...).Output()
	if err != nil || !strings.Contains(string(posted), `"seq":1`) {
		t.Fatalf("tutorial POST = %s, %v", posted, err)
	}
	live := waitLine(func(l string) bool { return strings.HasPrefix(l, "data: {") }, "the posted fact")
	if !strings.Contains(live, "Shark teeth") || !strings.Contains(live, `"source":"https://en.wikipedia.org/wiki/Shark"`) {
		t.Fatalf("live event = %s", live)
	}

	statusCmd := atPort(t, addr, "curl", "-s", tutorialURL+"/status")
	st, err := exec.Command(statusCmd[0], statusCmd[1:]...).Output()
	if err != nil || !strings.Contains(string(st), `"clients":1`) || !strings.Contains(string(st), `"facts":1`) {
		t.Fatalf("tutorial status = %s, %v; want one client and one fact", st, err)
	}

	second := atPort(t, addr, "curl", "-s", "-m", "1", "-H", "Accept:text/event-stream", tutorialURL+"/events")
	again, err := exec.Command(second[0], second[1:]...).Output()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 28) { // 28: our -m timeout
		t.Fatalf("second curl: %v", err)
	}
	if !strings.Contains(string(again), "data: [{") || !strings.Contains(string(again), "Shark teeth") {
		t.Fatalf("a new connection got %q, want the array holding the fact", again)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "facts.db")); err != nil {
		t.Fatalf("default store file: %v", err)
	}
}

func skipUnlessCI(tb testing.TB, why string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s (CI=true: this test must run)", why)
	}
	tb.Skip(why)
}

// publishUntilStopped runs 16 publishers against base until stop closes or
// their requests start failing, and returns every fact that got a 201.
func publishUntilStopped(base string, stop <-chan struct{}, acked chan<- store.Fact) {
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for w := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"info":"w%d-%d"}`, w, i)
				resp, err := client.Post(base+"/fact", "application/json", strings.NewReader(body))
				if err != nil {
					return // the server is gone
				}
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					var f store.Fact
					if err := f.UnmarshalJSON(data); err == nil {
						acked <- f
					}
				}
			}
		})
	}
	wg.Wait()
	close(acked)
}

// checkAckedSurvive restarts on the store file and checks that every fact
// that got a 201 is there, with its seq, and that seqs are gapless.
func checkAckedSurvive(t *testing.T, dir string, acked []store.Fact) {
	t.Helper()
	addr := freePort(t)
	p := startProcess(t, dir, addr, "--store", "bolt:facts.db")
	stored := allFacts(t, p.URL)
	checkGapless(t, stored)
	for _, a := range acked {
		if a.Seq == 0 || a.Seq > uint64(len(stored)) || stored[a.Seq-1].ID != a.ID {
			t.Fatalf("fact %s acknowledged with seq %d is missing after restart (%d stored)", a.ID, a.Seq, len(stored))
		}
	}
	t.Logf("%d facts acknowledged, %d stored", len(acked), len(stored))
}

func TestKillNineLosesNoAcknowledgedFact(t *testing.T) {
	testAbruptStop(t, syscall.SIGKILL)
}

func TestSIGTERMExitsCleanlyAndKeepsFacts(t *testing.T) {
	testAbruptStop(t, syscall.SIGTERM)
}

func testAbruptStop(t *testing.T, sig syscall.Signal) {
	dir := t.TempDir()
	addr := freePort(t)
	p := startProcess(t, dir, addr, "--store", "bolt:facts.db")
	// A subscriber is open during the stop: SIGTERM must end it, not wait.
	openStream(t, p.URL+"/events", nil)
	stop := make(chan struct{})
	ackc := make(chan store.Fact, 1024)
	go publishUntilStopped(p.URL, stop, ackc)
	var acked []store.Fact
	for f := range ackc {
		acked = append(acked, f)
		if len(acked) == 300 {
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
		}
		if len(acked) == 5000 { // the process ignored the signal
			close(stop)
		}
	}
	err := p.wait(t)
	if sig == syscall.SIGTERM && err != nil {
		t.Fatalf("after SIGTERM: %v, want exit status 0\n%s", err, p.logs.String())
	}
	checkAckedSurvive(t, dir, acked)
}
