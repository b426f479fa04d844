package tests

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

const adminToken = "admin-0123456789abcdef"

// deleteFact sends DELETE /facts/:id with the given Authorization header
// (none when empty) and returns the status and the problem type, if any.
func deleteFact(tb testing.TB, base, id, auth string) (int, string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodDelete, base+"/facts/"+id, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("DELETE: %v", err)
	}
	defer resp.Body.Close()
	var p struct {
		Type string `json:"type"`
	}
	if resp.StatusCode != http.StatusNoContent {
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			tb.Fatalf("DELETE = %d with Content-Type %q, want problem+json", resp.StatusCode, ct)
		}
		if err := jsonDecode(resp, &p); err != nil {
			tb.Fatal(err)
		}
	}
	return resp.StatusCode, strings.TrimPrefix(p.Type, "urn:factstream:problem:")
}

// The admin endpoint, through the whole service: off without admin tokens,
// 401 without the right one, 204 then 404; /status and /metrics follow.
func TestDeleteThroughTheService(t *testing.T) {
	off := startServer(t, testConfig(t))
	f := postFact(t, off.URL, "kept")
	if code, typ := deleteFact(t, off.URL, f.ID, "Bearer "+adminToken); code != http.StatusForbidden || typ != "admin-disabled" {
		t.Fatalf("without admin tokens: %d %s, want 403 admin-disabled", code, typ)
	}

	cfg := testConfig(t)
	cfg.AdminTokens = []string{adminToken}
	s := startServer(t, cfg)
	first, second := postFact(t, s.URL, "first"), postFact(t, s.URL, "second")
	for _, tc := range []struct {
		name, id, auth string
		want           int
		problem        string
	}{
		{"no token", first.ID, "", http.StatusUnauthorized, "token-required"},
		{"wrong token", first.ID, "Bearer wrong-0123456789abcdef", http.StatusUnauthorized, "token-invalid"},
		{"deleted", first.ID, "Bearer " + adminToken, http.StatusNoContent, ""},
		{"deleted already", first.ID, "Bearer " + adminToken, http.StatusNotFound, "not-found"},
		{"malformed id", "nope", "Bearer " + adminToken, http.StatusNotFound, "not-found"},
	} {
		if code, typ := deleteFact(t, s.URL, tc.id, tc.auth); code != tc.want || typ != tc.problem {
			t.Fatalf("%s: %d %q, want %d %q", tc.name, code, typ, tc.want, tc.problem)
		}
	}
	resp, err := http.Get(s.URL + "/facts/" + first.ID)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET a deleted fact = %d, want 404", resp.StatusCode)
	}
	if st := keptStatus(t, s.URL); st.Facts != 1 || st.FirstSeq != second.Seq || st.LastSeq != second.Seq {
		t.Fatalf("status = %+v, want the second fact alone", st)
	}
	if facts := allFacts(t, s.URL); len(facts) != 1 || facts[0].ID != second.ID {
		t.Fatalf("GET /facts = %+v, want the second fact alone", facts)
	}
	resp, err = http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `factstream_facts_removed_total{reason="deleted"} 1`) {
		t.Fatalf("/metrics does not count the deletion:\n%s", body)
	}
}
