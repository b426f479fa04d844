package tests

import (
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"factstream/store"
)

// TestFullDiskRefusesWritesAndKeepsServing runs the binary with a file size
// limit, so the bbolt file cannot grow past it, as on a full disk. Writes
// must then get 503 (never a 201, never a crash) with a clear log line,
// while reads and open streams keep working.
func TestFullDiskRefusesWritesAndKeepsServing(t *testing.T) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		skipUnlessCI(t, "prlimit (util-linux) is not installed")
	}
	dir := t.TempDir()
	addr := freePort(t)
	p := startCommand(t, dir, addr, []string{"prlimit", "--fsize=1048576", binPath, "--store", "bolt:facts.db"})
	stream := openStream(t, p.URL+"/events", nil)

	text := strings.Repeat("A fact that fills the disk. ", 100)
	var acked []store.Fact
	refused := 0
	for i := 0; refused < 3; i++ {
		if i == 2000 {
			t.Fatal("2,000 facts of 2.8 KB fit in a 1 MiB file limit: the limit is not in force")
		}
		resp, err := http.Post(p.URL+"/fact", "application/json", strings.NewReader(fmt.Sprintf(`{"info":"%d %s"}`, i, text)))
		if err != nil {
			t.Fatalf("post %d: %v (did the server crash?)", i, err)
		}
		switch resp.StatusCode {
		case http.StatusCreated:
			var f store.Fact
			decodeBody(t, resp, &f)
			acked = append(acked, f)
		case http.StatusServiceUnavailable:
			decodeBody(t, resp, &map[string]any{})
			if resp.Header.Get("Content-Type") != "application/problem+json" || resp.Header.Get("Retry-After") == "" {
				t.Fatalf("503 without problem+json and Retry-After: %v", resp.Header)
			}
			refused++
		default:
			t.Fatalf("post %d = %d", i, resp.StatusCode)
		}
	}
	if len(acked) == 0 {
		t.Fatal("no fact was stored before the disk filled")
	}
	if !strings.Contains(p.logs.String(), "file too large") {
		t.Errorf("no log line names the cause:\n%s", p.logs.String())
	}
	// Reads: every acknowledged fact, and nothing else.
	stored := allFacts(t, p.URL)
	checkGapless(t, stored)
	if len(stored) != len(acked) {
		t.Fatalf("%d facts stored, %d acknowledged", len(stored), len(acked))
	}
	// The stream stayed open and delivered exactly the acknowledged facts.
	var c tutorialClient
	for c.seen() < uint64(len(acked)) {
		ev, err := stream.Next(5 * time.Second)
		if err != nil {
			t.Fatalf("stream after the disk filled: %v", err)
		}
		if ev.Data != "" {
			c.facts = append(c.facts, factsOf(t, ev)...)
			c.lastID = ev.ID
		}
	}
	c.checkOnce(t, stored)
	if resp, err := http.Get(p.URL + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz after disk full: %v", err)
	}
}

func decodeBody(t *testing.T, resp *http.Response, out any) {
	t.Helper()
	defer resp.Body.Close()
	if err := jsonDecode(resp, out); err != nil {
		t.Fatalf("decode: %v", err)
	}
}
