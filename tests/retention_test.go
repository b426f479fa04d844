package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// retentionStatus is what /status says about the facts kept.
type retentionStatus struct {
	Facts    uint64 `json:"facts"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
}

func keptStatus(tb testing.TB, base string) retentionStatus {
	tb.Helper()
	var st retentionStatus
	if code := getJSON(tb, base+"/status", &st); code != http.StatusOK {
		tb.Fatalf("GET /status = %d", code)
	}
	return st
}

// postBatch posts n facts in one POST /facts.
func postBatch(tb testing.TB, base string, n int, prefix string) {
	drafts := make([]map[string]string, n)
	for i := range drafts {
		drafts[i] = map[string]string{"info": fmt.Sprintf("%s %d %s", prefix, i, strings.Repeat("x", 64)),
			"source": "https://example.com/retention"}
	}
	body, err := json.Marshal(drafts)
	if err != nil {
		tb.Error(err)
		return
	}
	resp, err := http.Post(base+"/facts", "application/json", bytes.NewReader(body))
	if err != nil {
		tb.Errorf("POST /facts: %v", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		tb.Errorf("POST /facts = %d", resp.StatusCode)
	}
}

// With retention_facts=1000, 100,000 facts posted through the real binary
// leave a bbolt file of a few MiB: the pages of removed facts are reused,
// so the file stops growing once retention applies.
func TestBoltFileStaysSmallUnderRetention(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	p := startProcess(t, dir, addr, "--store=bolt:"+filepath.Join(dir, "facts.db"),
		"--retention-facts=1000", "--max-body=1MiB", "--log-level=warn")
	const workers, batches, batch = 4, 25, 1000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for b := range batches {
				postBatch(t, p.URL, batch, fmt.Sprintf("w%d-b%d", w, b))
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	const total = workers * batches * batch
	st := keptStatus(t, p.URL)
	if st.Facts != 1000 || st.LastSeq != total || st.FirstSeq != total-999 {
		t.Fatalf("status = %+v, want the newest 1000 of %d facts", st, total)
	}
	if facts := allFacts(t, p.URL); len(facts) != 1000 || facts[0].Seq != total-999 {
		t.Fatalf("GET /facts pages hold %d facts from seq %d, want the newest 1000", len(facts), facts[0].Seq)
	}
	fi, err := os.Stat(filepath.Join(dir, "facts.db"))
	if err != nil {
		t.Fatal(err)
	}
	const limit = 10 << 20
	if fi.Size() >= limit {
		t.Fatalf("bolt file is %d bytes after %d facts with 1000 kept, want under %d", fi.Size(), total, limit)
	}
	t.Logf("bolt file: %.1f MiB after %d facts, 1000 kept", float64(fi.Size())/(1<<20), total)
}
