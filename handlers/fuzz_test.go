package handlers

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeJSONDrafts feeds arbitrary bodies to the JSON decoder. It must
// never panic, and whatever it accepts must be valid and survive a round
// trip through encoding/json unchanged.
func FuzzDecodeJSONDrafts(f *testing.F) {
	for _, seed := range []string{
		`{"info":"Shark teeth","source":"https://en.wikipedia.org/wiki/Shark"}`,
		`[{"info":"a"},{"info":"b","source":null}]`,
		`{"info":"a","info":"b"}`, `{"Info":"x"}`, `{"info":"\ud83e\udd88"}`, `{"info":"\ud800"}`,
		`{"info":"x"} {}`, `[]`, `[1]`, `"x"`, `{"info":"\u0000"}`, "{\"info\":\"\xff\"}", `{"info":"\\\ud800"}`,
	} {
		f.Add([]byte(seed), true)
		f.Add([]byte(seed), false)
	}
	f.Fuzz(func(t *testing.T, body []byte, allowBatch bool) {
		drafts, batch, err := decodeJSONDrafts(body, allowBatch)
		if err != nil {
			if asAPIError(err).status != http.StatusBadRequest {
				t.Fatalf("decode error maps to %d, want 400", asAPIError(err).status)
			}
			return
		}
		if batch && !allowBatch || len(drafts) == 0 || len(drafts) > MaxBatch {
			t.Fatalf("accepted %d drafts, batch=%v allowBatch=%v", len(drafts), batch, allowBatch)
		}
		if !utf8.Valid(body) {
			t.Fatal("accepted invalid UTF-8")
		}
		if err := validateDrafts(drafts, batch); err != nil {
			return // decoded, but refused by the fact rules: fine
		}
		for _, d := range drafts {
			if !utf8.ValidString(d.Info) || strings.ContainsRune(d.Info, 0) {
				t.Fatalf("accepted info %q", d.Info)
			}
			again, _, err := decodeJSONDrafts(mustJSON(t, map[string]string{"info": d.Info, "source": d.Source}), false)
			if err != nil || again[0] != d {
				t.Fatalf("round trip of %+v gave %+v, %v", d, again, err)
			}
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzDecodeFormDraft does the same for form bodies.
func FuzzDecodeFormDraft(f *testing.F) {
	for _, seed := range []string{"info=a&source=https%3A%2F%2Fx.org", "info=%zz", "info=a&info=b", "x=1", "info=%00", "info=%ff"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		drafts, err := decodeFormDraft(body)
		if err != nil {
			return
		}
		if len(drafts) != 1 || !utf8.ValidString(drafts[0].Info) || !utf8.ValidString(drafts[0].Source) {
			t.Fatalf("accepted %+v", drafts)
		}
		if validateDrafts(drafts, false) == nil {
			again, err := decodeFormDraft([]byte(url.Values{"info": {drafts[0].Info}, "source": {drafts[0].Source}}.Encode()))
			if err != nil || again[0] != drafts[0] {
				t.Fatalf("round trip of %+v gave %+v, %v", drafts[0], again, err)
			}
		}
	})
}

// FuzzRequestParameters covers Last-Event-ID and the paging parameters:
// anything accepted is a plain decimal number in range.
func FuzzRequestParameters(f *testing.F) {
	for _, seed := range []string{"0", "42", "-1", "+1", "1.5", "0x10", " 7", "18446744073709551616", "", "007"} {
		f.Add(seed, seed, "asc")
	}
	f.Add("1", "1000", "desc")
	f.Fuzz(func(t *testing.T, id, limit, order string) {
		r := &http.Request{Header: http.Header{}, URL: &url.URL{}}
		r.Header.Set("Last-Event-ID", id)
		if got, ok, err := lastEventID(r); err == nil && ok {
			if strings.TrimLeft(id, "0123456789") != "" || id == "" {
				t.Fatalf("accepted Last-Event-ID %q as %d", id, got)
			}
		}
		q := url.Values{"limit": {limit}, "order": {order}, "after": {id}}
		if order == "desc" {
			q = url.Values{"limit": {limit}, "order": {order}, "before": {id}}
		}
		r.URL.RawQuery = q.Encode()
		p, err := parsePage(r)
		if err != nil {
			return
		}
		if p.limit < 1 || p.limit > 1000 || p.desc != (order == "desc") {
			t.Fatalf("accepted page %+v from limit %q order %q", p, limit, order)
		}
	})
}

// FuzzIdempotencyKey: an accepted key is 1 to 255 printable ASCII bytes.
func FuzzIdempotencyKey(f *testing.F) {
	for _, seed := range []string{"order-1", "", " ", "ключ", strings.Repeat("k", 256), "a\tb"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, key string) {
		got, err := idempotencyKey(http.Header{"Idempotency-Key": {key}})
		if err != nil {
			return
		}
		if got != key || len(key) == 0 || len(key) > 255 {
			t.Fatalf("accepted key %q", key)
		}
		for i := 0; i < len(key); i++ {
			if key[i] < 0x20 || key[i] > 0x7e {
				t.Fatalf("accepted key %q with byte %#x", key, key[i])
			}
		}
	})
}

// FuzzSimpleDraftAgrees checks the one-pass decoder of simple bodies against
// the general decoder: wherever the fast one succeeds, the general one must
// accept the body and decode the same fact.
func FuzzSimpleDraftAgrees(f *testing.F) {
	for _, seed := range []string{
		`{"info":"Shark teeth","source":"https://en.wikipedia.org/wiki/Shark"}`,
		` {"source" : null, "info":"a"} `, `{"info":"\ud83e\udd88 \"q\" \\ \/ \b\f\n\r\t \u00e9"}`,
		`{"info":"\ud800"}`, `{"info":"\udc00x"}`, `{"info":"a","info":"b"}`, `{"info":"x"} {}`,
		`{"info":"x",}`, `{"info":1}`, `{"\u0069nfo":"x"}`, "{\"info\":\"\xff\"}", "{\"info\":\"a\tb\"}",
		`{"source":"s"}`, `{}`, `{"info":"é","source":"nullx"}`, `{"info":"x"`, `{"info":"\u12"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := decodeSimpleDraft(body)
		if !ok {
			return
		}
		drafts, batch, err := decodeAnyJSONDrafts(body, false)
		if err != nil {
			t.Fatalf("fast path accepted %q as %+v; the general decoder says %v", body, fast, err)
		}
		if batch || len(drafts) != 1 || drafts[0] != fast {
			t.Fatalf("fast path decoded %q as %+v; the general decoder as %+v", body, fast, drafts)
		}
	})
}
