package tests

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"factstream/app"
	"factstream/internal/redistest"
	"factstream/store"
)

const testAdminToken = "admin-0123456789abcdef"

// adminGet gets path from base with the admin token and returns the whole
// answer.
func adminGet(tb testing.TB, base, path, token string) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("GET %s: reading the body: %v", path, err)
	}
	return resp, body
}

// importInto runs the import command in process and returns its exit code
// and standard error.
func importInto(tb testing.TB, spec string, export []byte) (int, string) {
	tb.Helper()
	var out, errOut bytes.Buffer
	code := app.Import(context.Background(), []string{"--store", spec, "-"}, func(string) string { return "" },
		bytes.NewReader(export), &out, &errOut)
	return code, errOut.String()
}

func sameFacts(tb testing.TB, what string, got, want []store.Fact) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%s: %d facts, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			tb.Fatalf("%s: fact %d = %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

// TestExportThenImportMovesEveryFactToBoltAndRedis: an export of a running
// bolt store, imported into a fresh bolt file and a fresh Redis, serves
// the very same facts, field by field, and numbering goes on after them.
func TestExportThenImportMovesEveryFactToBoltAndRedis(t *testing.T) {
	cfg := testConfig(t)
	cfg.Store = "bolt:" + filepath.Join(t.TempDir(), "facts.db")
	cfg.AdminTokens = []string{testAdminToken}
	src := startServer(t, cfg)
	for i := range 40 {
		postFact(t, src.URL, fmt.Sprintf("fact %d <&> \"quoted\" 🦈", i))
	}
	want := allFacts(t, src.URL)
	resp, export := adminGet(t, src.URL, "/admin/export", testAdminToken)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("export: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if n := bytes.Count(export, []byte("\n")); n != len(want) {
		t.Fatalf("export has %d lines, want %d", n, len(want))
	}

	redis := redistest.Start(t)
	for _, spec := range []string{"bolt:" + filepath.Join(t.TempDir(), "restored.db"), redis.URL()} {
		if code, errOut := importInto(t, spec, export); code != 0 {
			t.Fatalf("import into %s: exit %d: %s", spec, code, errOut)
		}
		cfg := testConfig(t)
		cfg.Store = spec
		dst := startServer(t, cfg)
		sameFacts(t, "facts served after the import into "+spec, allFacts(t, dst.URL), want)
		if next := postFact(t, dst.URL, "after the import"); next.Seq != want[len(want)-1].Seq+1 {
			t.Fatalf("%s: the first fact after the import got seq %d, want %d", spec, next.Seq, want[len(want)-1].Seq+1)
		}
		dst.Stop(t)
	}
}

// TestImportCommandStoresNothingFromABadFileOrIntoAFullStore runs the
// built binary, as an operator would.
func TestImportCommandStoresNothingFromABadFileOrIntoAFullStore(t *testing.T) {
	cfg := testConfig(t)
	cfg.AdminTokens = []string{testAdminToken}
	src := startServer(t, cfg)
	for i := range 5 {
		postFact(t, src.URL, fmt.Sprintf("fact %d", i))
	}
	_, export := adminGet(t, src.URL, "/admin/export", testAdminToken)
	lines := strings.SplitAfter(string(export), "\n")
	bad := strings.Join(lines[:3], "") + "{not json\n" + strings.Join(lines[3:], "")

	dir := t.TempDir()
	run := func(db, input string) (int, string) {
		t.Helper()
		in := filepath.Join(dir, "input.ndjson")
		if err := os.WriteFile(in, []byte(input), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(binPath, "import", "--store", "bolt:"+db, in)
		cmd.Env = append(os.Environ(), "FACTSTREAM_STORE=")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("run factstream import: %v", err)
		}
		return code, stderr.String()
	}
	served := func(db string) []store.Fact {
		t.Helper()
		cfg := testConfig(t)
		cfg.Store = "bolt:" + db
		s := startServer(t, cfg)
		defer s.Stop(t)
		return allFacts(t, s.URL)
	}

	empty := filepath.Join(dir, "empty.db")
	if code, stderr := run(empty, bad); code != 1 || !strings.Contains(stderr, "line 4:") || !strings.Contains(stderr, "nothing was stored") {
		t.Fatalf("import of a file with a bad line 4: exit %d, stderr %q", code, stderr)
	}
	if got := served(empty); len(got) != 0 {
		t.Fatalf("a refused import left %d facts", len(got))
	}

	full := filepath.Join(dir, "full.db")
	if code, stderr := run(full, string(export)); code != 0 {
		t.Fatalf("import: exit %d, %s", code, stderr)
	}
	if code, stderr := run(full, string(export)); code != 1 || !strings.Contains(stderr, "not empty") {
		t.Fatalf("import into a store that holds facts: exit %d, stderr %q", code, stderr)
	}
	sameFacts(t, "the store after a second import was refused", served(full), allFacts(t, src.URL))
}

// TestBackupWhilePublishingHoldsEveryAcknowledgedFact: a backup taken
// while 8 publishers run opens as a store holding every fact acknowledged
// (201) before the backup was asked for.
func TestBackupWhilePublishingHoldsEveryAcknowledgedFact(t *testing.T) {
	cfg := testConfig(t)
	cfg.Store = "bolt:" + filepath.Join(t.TempDir(), "facts.db")
	cfg.AdminTokens = []string{testAdminToken}
	srv := startServer(t, cfg)

	var (
		mu    sync.Mutex
		acked []store.Fact
		stop  atomic.Bool
		wg    sync.WaitGroup
		fails atomic.Int64
	)
	for p := range 8 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				var f store.Fact
				status, _ := postJSONQuiet(srv.URL+"/fact", fmt.Sprintf(`{"info":"publisher %d fact %d"}`, p, i), &f)
				if status != http.StatusCreated {
					fails.Add(1)
					continue
				}
				mu.Lock()
				acked = append(acked, f)
				mu.Unlock()
			}
		})
	}
	eventually(t, 10*time.Second, "facts acknowledged", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 200
	})
	mu.Lock()
	before := append([]store.Fact(nil), acked...)
	mu.Unlock()
	resp, backup := adminGet(t, srv.URL, "/admin/backup", testAdminToken)
	stop.Store(true)
	wg.Wait()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/octet-stream" ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), "factstream-") {
		t.Fatalf("backup: %d, headers %v", resp.StatusCode, resp.Header)
	}
	if fails.Load() > 0 {
		t.Fatalf("%d publishes failed during the backup", fails.Load())
	}

	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, backup, 0o600); err != nil {
		t.Fatal(err)
	}
	restored := testConfig(t)
	restored.Store = "bolt:" + path
	kept := map[uint64]store.Fact{}
	for _, f := range allFacts(t, startServer(t, restored).URL) {
		kept[f.Seq] = f
	}
	for _, f := range before {
		if kept[f.Seq] != f {
			t.Fatalf("fact %+v, acknowledged before the backup, is not in it (it has %+v)", f, kept[f.Seq])
		}
	}
	t.Logf("%d facts acknowledged before the backup; it holds %d", len(before), len(kept))
}

// postJSONQuiet posts body and decodes a 2xx answer into out, with no test
// helper calls, so that publisher goroutines can use it.
func postJSONQuiet(url, body string, out *store.Fact) (int, error) {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		if err := jsonDecode(resp, out); err != nil {
			return 0, err
		}
	}
	return resp.StatusCode, nil
}

func TestAdminEndpointsAreOffWithoutAdminTokens(t *testing.T) {
	off := startServer(t, testConfig(t))
	cfg := testConfig(t)
	cfg.AdminTokens = []string{testAdminToken}
	on := startServer(t, cfg)
	for _, path := range []string{"/admin/export", "/admin/backup"} {
		for _, tc := range []struct {
			base, token string
			status      int
		}{
			{off.URL, testAdminToken, http.StatusForbidden},
			{on.URL, "", http.StatusUnauthorized},
			{on.URL, testAdminToken + "-wrong", http.StatusUnauthorized},
		} {
			resp, body := adminGet(t, tc.base, path, tc.token)
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("GET %s with token %q: %d %s %s; want %d problem+json", path, tc.token, resp.StatusCode,
					resp.Header.Get("Content-Type"), body, tc.status)
			}
		}
	}
}
