package tests

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"factstream/internal/redistest"
)

// readyz returns /readyz's status and, for a problem, its detail.
func readyz(tb testing.TB, base string) (int, string) {
	tb.Helper()
	var body struct {
		Detail string `json:"detail"`
	}
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		tb.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.Header.Get("Content-Type") != "application/problem+json" {
		tb.Fatalf("/readyz = %d as %q, want problem+json", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if err := jsonDecode(resp, &body); err != nil {
		tb.Fatalf("decode /readyz: %v", err)
	}
	return resp.StatusCode, body.Detail
}

// awaitReadyz waits, without publishing anything, until /readyz answers
// want with a detail that holds cause.
func awaitReadyz(tb testing.TB, base string, want int, cause string) {
	tb.Helper()
	var code int
	var detail string
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, detail = readyz(tb, base)
		if code == want && strings.Contains(detail, cause) {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("/readyz = %d %q after 15s, want %d naming %q", code, detail, want, cause)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReadyzTellsWhenTheDiskIsFull fills a small tmpfs holding the bolt
// file: /readyz must turn 503 naming the full disk before anyone
// publishes, and 200 again once space is freed, without a restart.
func TestReadyzTellsWhenTheDiskIsFull(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt).CombinedOutput(); err != nil {
		skipUnlessCI(t, "cannot mount a tmpfs to fill: "+strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })

	cfg := testConfig(t)
	cfg.Store = "bolt:" + filepath.Join(mnt, "facts.db")
	s := startServer(t, cfg)
	awaitReadyz(t, s.URL, http.StatusOK, "")
	postFact(t, s.URL, "before-the-disk-fills")

	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break // no space left
		}
	}
	f.Close()
	awaitReadyz(t, s.URL, http.StatusServiceUnavailable, "disk full")
	batch := make([]map[string]string, 15)
	for i := range batch {
		batch[i] = map[string]string{"info": strings.Repeat("x", 4000)}
	}
	if status, body := postJSON(t, s.URL+"/facts", batch, nil); status != http.StatusServiceUnavailable {
		t.Fatalf("POST /facts on a full disk = %d %s, want 503", status, body)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	awaitReadyz(t, s.URL, http.StatusOK, "")
	postFact(t, s.URL, "after-space-was-freed")
}

// TestReadyzTellsWhenTheFileIsReadOnly makes the bolt file immutable under
// a running server: the probe's write fails, /readyz says why, and it
// recovers when the file is writable again.
func TestReadyzTellsWhenTheFileIsReadOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chattr +i needs root")
	}
	if _, err := exec.LookPath("chattr"); err != nil {
		skipUnlessCI(t, "chattr (e2fsprogs) is not installed")
	}
	path := filepath.Join(t.TempDir(), "facts.db")
	cfg := testConfig(t)
	cfg.Store = "bolt:" + path
	s := startServer(t, cfg)
	postFact(t, s.URL, "before")
	if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		skipUnlessCI(t, "chattr +i: "+strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", path).Run() })
	awaitReadyz(t, s.URL, http.StatusServiceUnavailable, "permission denied")

	if out, err := exec.Command("chattr", "-i", path).CombinedOutput(); err != nil {
		t.Fatalf("chattr -i: %v %s", err, out)
	}
	awaitReadyz(t, s.URL, http.StatusOK, "")
	postFact(t, s.URL, "after")
}

// TestReadyzTellsWhenRedisIsOutOfMemory lowers Redis' maxmemory under a
// running server: Redis still answers PING but refuses every write, and
// /readyz must say so; then Redis goes away and comes back.
func TestReadyzTellsWhenRedisIsOutOfMemory(t *testing.T) {
	redis := redistest.Start(t)
	cfg := testConfig(t)
	cfg.Store = redis.URL()
	s := startServer(t, cfg)
	awaitReadyz(t, s.URL, http.StatusOK, "")
	postFact(t, s.URL, "before")

	rdb := goredis.NewClient(&goredis.Options{Addr: redis.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	awaitReadyz(t, s.URL, http.StatusServiceUnavailable, "Redis out of memory")
	if err := rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	awaitReadyz(t, s.URL, http.StatusOK, "")
	postFact(t, s.URL, "after-memory")

	redis.Stop()
	awaitReadyz(t, s.URL, http.StatusServiceUnavailable, "unreachable")
	redis.Restart()
	awaitReadyz(t, s.URL, http.StatusOK, "")
}

// TestPublishTimeoutDuringABusyRedisSaysTheOutcomeIsUnknown keeps Redis busy
// in a 3-second script: a publish then times out after its call was sent,
// Redis runs it once the script ends, and the 503 must not say that
// nothing was stored. Its retry with the same key must not store twice.
func TestPublishTimeoutDuringABusyRedisSaysTheOutcomeIsUnknown(t *testing.T) {
	redis := redistest.Start(t)
	cfg := testConfig(t)
	cfg.Store = redis.URL()
	s := startServer(t, cfg)
	postFact(t, s.URL, "before")

	rdb := goredis.NewClient(&goredis.Options{Addr: redis.Addr(), ReadTimeout: 10 * time.Second})
	defer rdb.Close()
	busy := make(chan error, 1)
	go func() {
		busy <- rdb.Eval(context.Background(), `
local t = redis.call('TIME')
local start = t[1] * 1000000 + t[2]
repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start > 3000000
return 1`, nil).Err()
	}()
	time.Sleep(300 * time.Millisecond) // let the script start

	post := func() (int, string) {
		req, err := http.NewRequest(http.MethodPost, s.URL+"/fact", strings.NewReader(`{"info":"during the script"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "busy-redis-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p struct {
			Detail string `json:"detail"`
		}
		jsonDecode(resp, &p)
		return resp.StatusCode, p.Detail
	}
	code, detail := post()
	if code != http.StatusServiceUnavailable {
		t.Fatalf("POST /fact while Redis is busy = %d %q, want 503", code, detail)
	}
	if strings.Contains(detail, "nothing was stored") || !strings.Contains(detail, "same Idempotency-Key") {
		t.Errorf("503 detail %q: want the outcome unknown and a retry with the same Idempotency-Key", detail)
	}
	if err := <-busy; err != nil {
		t.Fatalf("the busy script: %v", err)
	}
	eventually(t, 10*time.Second, "the retry to succeed", func() bool {
		code, _ := post()
		return code == http.StatusCreated
	})
	if n := keptStatus(t, s.URL).Facts; n != 2 {
		t.Fatalf("%d facts stored, want 2: the retry stored a second copy or none was stored", n)
	}
}
