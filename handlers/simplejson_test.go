package handlers

import (
	"testing"

	"factstream/store"
)

// TestSimpleBodiesTakeTheFastPath keeps the one-pass decoder in use for the
// bodies publishers send, escapes and all, and out of the way of the rest.
func TestSimpleBodiesTakeTheFastPath(t *testing.T) {
	for _, tc := range []struct {
		body string
		fast bool
		want store.Draft
	}{
		{`{"info":"Shark teeth","source":"https://en.wikipedia.org/wiki/Shark"}`, true,
			store.Draft{Info: "Shark teeth", Source: "https://en.wikipedia.org/wiki/Shark"}},
		{"\r\n { \"source\" : null ,\t\"info\" : \"x\" } \n", true, store.Draft{Info: "x"}},
		{`{"info":"\ud83e\udd88 \"q\" \u00e9\n"}`, true, store.Draft{Info: "🦈 \"q\" é\n"}},
		{`{"info":"héllo"}`, true, store.Draft{Info: "héllo"}},
		{`{"info":"a","info":"b"}`, false, store.Draft{}},
		{`{"info":"\ud800"}`, false, store.Draft{}},
		{`{"\u0069nfo":"x"}`, false, store.Draft{}},
		{`{"info":"x","extra":1}`, false, store.Draft{}},
		{`{"info":"x"} {}`, false, store.Draft{}},
		{`{"source":"x"}`, false, store.Draft{}},
		{`[{"info":"x"}]`, false, store.Draft{}},
		{"{\"info\":\"\xff\"}", false, store.Draft{}},
	} {
		got, ok := decodeSimpleDraft([]byte(tc.body))
		if ok != tc.fast || got != tc.want {
			t.Errorf("decodeSimpleDraft(%q) = %+v, %v; want %+v, %v", tc.body, got, ok, tc.want, tc.fast)
		}
	}
}
