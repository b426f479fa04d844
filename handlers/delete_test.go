package handlers_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"

	"factstream/handlers"
	"factstream/hub"
	"factstream/store"
	"factstream/store/memory"
	"factstream/store/storetest"
)

// DELETE /facts/:id is an admin endpoint: off (403) without admin tokens,
// 401 without the right one, then 204 once and 404 from then on.
func TestDeleteNeedsAnAdminToken(t *testing.T) {
	const token = "admin-token-0123456789"
	for _, tc := range []struct {
		name        string
		adminTokens []string
		auth        string
		id          func(f store.Fact) string
		wantStatus  int
		wantProblem string
		wantGone    bool
	}{
		{"admin disabled", nil, "Bearer " + token, factID, http.StatusForbidden, "admin-disabled", false},
		{"no token", []string{token}, "", factID, http.StatusUnauthorized, "token-required", false},
		{"wrong token", []string{token}, "Bearer wrong-token-0123456789", factID, http.StatusUnauthorized, "token-invalid", false},
		{"token in the wrong place", []string{token}, "Basic " + token, factID, http.StatusUnauthorized, "token-invalid", false},
		{"deleted", []string{token}, "Bearer " + token, factID, http.StatusNoContent, "", true},
		{"unknown id", []string{token}, "Bearer " + token, func(store.Fact) string { return uuid.Must(uuid.NewV7()).String() }, http.StatusNotFound, "not-found", false},
		{"malformed id", []string{token}, "Bearer " + token, func(store.Fact) string { return "not-an-id" }, http.StatusNotFound, "not-found", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rm := &storetest.Removals{}
			st := memory.New(store.Options{OnRemove: rm.OnRemove})
			h := hub.New(hub.Options{Buffer: 8, MaxSubscribers: 2})
			srv := httptest.NewServer(handlers.Routes(handlers.Deps{
				Logger:  slog.New(slog.DiscardHandler),
				Store:   st,
				Hub:     h,
				Stream:  handlers.StreamOptions{Retry: time.Second, Heartbeat: time.Minute, WriteTimeout: time.Second},
				MaxBody: 1 << 10,
				Access:  handlers.Access{AdminTokens: tc.adminTokens},
			}))
			t.Cleanup(func() { srv.Close(); h.Close(); st.Close() })
			e := &env{srv: srv, store: st, hub: h}
			f := storetest.MustAppend(t, st, store.AppendRequest{Drafts: storetest.Drafts(1, "doomed")}).Facts[0]

			header := map[string]string{}
			if tc.auth != "" {
				header["Authorization"] = tc.auth
			}
			r := e.do(t, http.MethodDelete, "/facts/"+tc.id(f), "", "", header)
			if r.status != tc.wantStatus {
				t.Fatalf("status = %d (%s), want %d", r.status, r.body, tc.wantStatus)
			}
			if tc.wantProblem != "" {
				if p := decodeProblem(t, r); p.Type != "urn:factstream:problem:"+tc.wantProblem {
					t.Fatalf("problem type = %s, want %s", p.Type, tc.wantProblem)
				}
			} else if r.body != "" {
				t.Fatalf("body of a 204: %q", r.body)
			}
			get := e.do(t, http.MethodGet, "/facts/"+f.ID, "", "", nil)
			if gone := get.status == http.StatusNotFound; gone != tc.wantGone {
				t.Fatalf("GET after the request = %d, want the fact gone: %v", get.status, tc.wantGone)
			}
			if got, want := rm.Count(store.RemovedDeleted), map[bool]int{true: 1}[tc.wantGone]; got != want {
				t.Fatalf("deletions counted = %d, want %d", got, want)
			}
			if tc.wantGone {
				if again := e.do(t, http.MethodDelete, "/facts/"+f.ID, "", "", header); again.status != http.StatusNotFound {
					t.Fatalf("second DELETE = %d, want 404", again.status)
				}
			}
		})
	}
}

func factID(f store.Fact) string { return f.ID }
