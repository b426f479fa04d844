package handlers_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"factstream/handlers"
	"factstream/hub"
	"factstream/store"
	"factstream/store/bolt"
	"factstream/store/memory"
	"factstream/store/storetest"
)

const adminToken = "admin-token-0123456789"

// adminEnv serves the API over st with adminTokens.
func adminEnv(tb testing.TB, st handlers.Store, adminTokens []string, writeTimeout time.Duration) *httptest.Server {
	tb.Helper()
	h := hub.New(hub.Options{Buffer: 64, MaxSubscribers: 10})
	srv := httptest.NewServer(handlers.Routes(handlers.Deps{
		Logger:   slog.New(slog.DiscardHandler),
		Store:    st,
		Hub:      h,
		Stream:   handlers.StreamOptions{Retry: time.Second, Heartbeat: time.Minute, WriteTimeout: writeTimeout, SnapshotMax: 100},
		MaxBody:  64 << 10,
		Instance: handlers.Instance{ID: "t", StoreKind: "memory", Version: "test", Started: time.Now()},
		Access:   handlers.Access{AdminTokens: adminTokens},
	}))
	tb.Cleanup(func() {
		h.Close()
		srv.Close()
	})
	return srv
}

func get(tb testing.TB, url string, header map[string]string) response {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(data)}
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

func memoryWith(tb testing.TB, n int) *memory.Store {
	tb.Helper()
	st := memory.New(store.Options{})
	tb.Cleanup(func() { st.Close() })
	for n > 0 {
		k := min(n, 1000)
		storetest.MustAppend(tb, st, store.AppendRequest{Drafts: storetest.Drafts(k, "fact"), Batch: true})
		n -= k
	}
	return st
}

func TestAdminRoutesNeedTheAdminToken(t *testing.T) {
	st := memoryWith(t, 1)
	off := adminEnv(t, st, nil, time.Second)
	on := adminEnv(t, st, []string{adminToken}, time.Second)
	for _, path := range []string{"/admin/export", "/admin/backup"} {
		for _, tc := range []struct {
			name   string
			srv    *httptest.Server
			query  string
			header map[string]string
			status int
			code   string
		}{
			{"no admin tokens set", off, "", bearer(adminToken), http.StatusForbidden, "admin-disabled"},
			{"no token", on, "", nil, http.StatusUnauthorized, "token-required"},
			{"wrong token", on, "", bearer(adminToken + "x"), http.StatusUnauthorized, "token-invalid"},
			{"token in the query", on, "?access_token=" + adminToken, nil, http.StatusUnauthorized, "token-required"},
			{"token in a cookie", on, "", map[string]string{"Cookie": "factstream_token=" + adminToken}, http.StatusUnauthorized, "token-required"},
		} {
			t.Run(path+" "+tc.name, func(t *testing.T) {
				r := get(t, tc.srv.URL+path+tc.query, tc.header)
				p := decodeProblem(t, r)
				if r.status != tc.status || !strings.HasSuffix(p.Type, ":"+tc.code) {
					t.Fatalf("status %d, type %q; want %d %s", r.status, p.Type, tc.status, tc.code)
				}
			})
		}
	}
	if r := get(t, on.URL+"/admin/export", bearer(adminToken)); r.status != http.StatusOK {
		t.Fatalf("export with the admin token: %d %s", r.status, r.body)
	}
}

// exportLines parses an export body.
func exportLines(tb testing.TB, body string) []store.Fact {
	tb.Helper()
	var out []store.Fact
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		f, err := store.ParseFactLine(sc.Bytes())
		if err != nil {
			tb.Fatalf("export line %d: %v", line, err)
		}
		out = append(out, f)
	}
	return out
}

func TestExportWritesEveryFactInSeqOrder(t *testing.T) {
	const n = 1234 // more than one page
	st := memoryWith(t, n)
	srv := adminEnv(t, st, []string{adminToken}, time.Second)
	all, err := st.Range(t.Context(), 0, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		query string
		want  []store.Fact
	}{
		{"", all},
		{"?after=0", all},
		{"?after=1000", all[1000:]},
		{"?after=1234", nil},
		{"?after=99999", nil},
	} {
		t.Run(tc.query, func(t *testing.T) {
			r := get(t, srv.URL+"/admin/export"+tc.query, bearer(adminToken))
			if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/x-ndjson" {
				t.Fatalf("status %d, Content-Type %q", r.status, r.header.Get("Content-Type"))
			}
			got := exportLines(t, r.body)
			if len(got) != len(tc.want) {
				t.Fatalf("%d facts exported, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("line %d = %+v, want %+v", i+1, got[i], tc.want[i])
				}
			}
		})
	}
	for _, bad := range []string{"-1", "x", "", "1.5"} {
		r := get(t, srv.URL+"/admin/export?after="+bad, bearer(adminToken))
		if p := decodeProblem(t, r); r.status != http.StatusBadRequest || !p.names("after") {
			t.Fatalf("after=%q: status %d, problem %+v", bad, r.status, p.Problem)
		}
	}
}

// growingStore commits more facts while an export reads its first page.
type growingStore struct {
	handlers.Store
	once sync.Once
	tb   testing.TB
}

func (g *growingStore) Range(ctx context.Context, after, upTo uint64, limit int) ([]store.Fact, error) {
	g.once.Do(func() {
		if _, err := g.Append(ctx, store.AppendRequest{Drafts: storetest.Drafts(600, "later"), Batch: true}); err != nil {
			g.tb.Errorf("append during the export: %v", err)
		}
	})
	return g.Store.Range(ctx, after, upTo, limit)
}

func TestExportEndsAtTheHeadOfItsRequest(t *testing.T) {
	st := memoryWith(t, 700)
	srv := adminEnv(t, &growingStore{Store: st, tb: t}, []string{adminToken}, time.Second)
	got := exportLines(t, get(t, srv.URL+"/admin/export", bearer(adminToken)).body)
	if len(got) != 700 || got[699].Seq != 700 {
		t.Fatalf("export of a store at seq 700 that grew meanwhile: %d facts; want the 700 of the request's moment", len(got))
	}
}

// countingStore counts the pages read from it.
type countingStore struct {
	handlers.Store
	reads atomic.Int64
}

func (c *countingStore) Range(ctx context.Context, after, upTo uint64, limit int) ([]store.Fact, error) {
	c.reads.Add(1)
	return c.Store.Range(ctx, after, upTo, limit)
}

// TestExportCutsAClientThatStopsReading: an export to a client that takes
// nothing stops reading the store after the write timeout and ends the
// connection, instead of reading the whole store into buffers.
func TestExportCutsAClientThatStopsReading(t *testing.T) {
	const n = 20_000 // pages of ~100 KiB: far more than socket buffers hold
	st := memoryWith(t, 0)
	big := strings.Repeat("x", 4000)
	for i := 0; i < n; i += 1000 {
		drafts := make([]store.Draft, 1000)
		for j := range drafts {
			drafts[j] = store.Draft{Info: fmt.Sprintf("%d %s", i+j, big)}
		}
		storetest.MustAppend(t, st, store.AppendRequest{Drafts: drafts, Batch: true})
	}
	cs := &countingStore{Store: st}
	srv := adminEnv(t, cs, []string{adminToken}, 200*time.Millisecond)
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /admin/export HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", adminToken)
	// Wait until the reads stop: the handler gave up on the client.
	last := int64(-1)
	for deadline := time.Now().Add(10 * time.Second); ; {
		time.Sleep(500 * time.Millisecond)
		now := cs.reads.Load()
		if now == last && now > 0 {
			break
		}
		last = now
		if time.Now().After(deadline) {
			t.Fatalf("the export still reads the store (%d pages) from a client that reads nothing", now)
		}
	}
	if pages := (n + 499) / 500; last >= int64(pages) {
		t.Fatalf("the export read all %d pages for a client that read nothing", last)
	}
	// The connection was cut: reading it now ends before the export does.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.Copy(io.Discard, conn)
	if got >= int64(n*len(big)) {
		t.Fatalf("the client got %d bytes, the whole export, after it stopped reading", got)
	}
}

func TestBackupIsABoltFileHoldingEveryFact(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "facts.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	storetest.MustAppend(t, st, store.AppendRequest{Drafts: storetest.Drafts(30, "kept"), Batch: true})
	srv := adminEnv(t, st, []string{adminToken}, time.Second)
	r := get(t, srv.URL+"/admin/backup", bearer(adminToken))
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/octet-stream" ||
		!strings.HasPrefix(r.header.Get("Content-Disposition"), `attachment; filename="factstream-`) {
		t.Fatalf("backup: status %d, headers %v", r.status, r.header)
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, []byte(r.body), 0o600); err != nil {
		t.Fatal(err)
	}
	cp, err := bolt.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("the backup does not open as a bolt store: %v", err)
	}
	defer cp.Close()
	want, _ := st.Range(t.Context(), 0, 0, 100)
	got, err := cp.Range(t.Context(), 0, 0, 100)
	if err != nil || len(got) != 30 || len(want) != 30 {
		t.Fatalf("the backup holds %d facts (%v), want 30", len(got), err)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("fact %d of the backup = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestBackupOfAStoreThatIsNotOneFileSaysToExport(t *testing.T) {
	srv := adminEnv(t, memoryWith(t, 1), []string{adminToken}, time.Second)
	r := get(t, srv.URL+"/admin/backup", bearer(adminToken))
	p := decodeProblem(t, r)
	if r.status != http.StatusNotImplemented || !strings.HasSuffix(p.Type, ":backup-unsupported") || !strings.Contains(p.Detail, "/admin/export") {
		t.Fatalf("backup of a memory store: %d %+v", r.status, p.Problem)
	}
}
