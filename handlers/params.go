package handlers

import (
	"fmt"
	"net/http"
	"strconv"
)

// maxIdempotencyKey is the longest Idempotency-Key accepted.
const maxIdempotencyKey = 255

// lastEventID returns the id a reconnecting client last saw: the
// Last-Event-ID header, or else the lastEventId query parameter for clients
// that cannot set headers. The header wins because a browser reconnecting
// keeps its original URL but sends the newer header. An empty value counts
// as absent, as EventSource itself never sends one.
func lastEventID(r *http.Request) (id uint64, ok bool, err error) {
	raw, field := r.Header.Get("Last-Event-ID"), "Last-Event-ID"
	if raw == "" {
		raw, field = r.URL.Query().Get("lastEventId"), "lastEventId"
	}
	if raw == "" {
		return 0, false, nil
	}
	id, err = parseSeq(raw)
	if err != nil {
		return 0, false, fieldError(field, fmt.Sprintf("%s must be a decimal integer >= 0, got %q", field, truncate(raw, 40)))
	}
	return id, true, nil
}

// parseSeq accepts only plain decimal digits, so that "+1", " 1" or "0x1"
// are refused rather than guessed at.
func parseSeq(s string) (uint64, error) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("not a decimal integer")
		}
	}
	return strconv.ParseUint(s, 10, 64)
}

// page is a validated GET /facts query.
type page struct {
	desc   bool
	after  uint64
	before uint64
	limit  int
}

func parsePage(r *http.Request) (page, error) {
	q := r.URL.Query()
	p := page{limit: 100}
	switch order := q.Get("order"); order {
	case "", "asc":
	case "desc":
		p.desc = true
	default:
		return p, fieldError("order", fmt.Sprintf("order must be asc or desc, got %q", truncate(order, 20)))
	}
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > 1000 {
			return p, fieldError("limit", fmt.Sprintf("limit must be an integer from 1 to 1000, got %q", truncate(v[0], 20)))
		}
		p.limit = n
	}
	for _, f := range []struct {
		name string
		dst  *uint64
		ok   bool
	}{{"after", &p.after, !p.desc}, {"before", &p.before, p.desc}} {
		v, present := q[f.name]
		if !present {
			continue
		}
		if !f.ok {
			return p, fieldError(f.name, fmt.Sprintf("%s does not apply to this order: use after with order=asc, before with order=desc", f.name))
		}
		n, err := parseSeq(v[0])
		if err != nil || v[0] == "" {
			return p, fieldError(f.name, fmt.Sprintf("%s must be a decimal integer >= 0, got %q", f.name, truncate(v[0], 20)))
		}
		*f.dst = n
	}
	return p, nil
}

// idempotencyKey returns the request's Idempotency-Key, "" when absent.
func idempotencyKey(h http.Header) (string, error) {
	values := h.Values("Idempotency-Key")
	if len(values) == 0 {
		return "", nil
	}
	key := values[0]
	bad := len(values) > 1 || len(key) == 0 || len(key) > maxIdempotencyKey
	for i := 0; i < len(key) && !bad; i++ {
		bad = key[i] < 0x20 || key[i] > 0x7e
	}
	if bad {
		return "", fieldError("Idempotency-Key",
			fmt.Sprintf("Idempotency-Key must be one value of 1 to %d printable ASCII characters", maxIdempotencyKey))
	}
	return key, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
