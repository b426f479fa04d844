package store

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzAppendJSONMatchesEncodingJSON: the hand-written encoder must write
// exactly what encoding/json writes for the same fact, whatever the text.
func FuzzAppendJSONMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{"Shark teeth", `<script>"x"&'y'</script>`, "tab\tnl\ncr\r\x00\x1f\x7f", "\u2028\u2029\ufffd🦈", "\xff\xfe bad", "\\\"", ""} {
		f.Add(s, s, uint64(7), int64(1e18))
	}
	f.Fuzz(func(t *testing.T, info, source string, seq uint64, nanos int64) {
		fact := Fact{ID: "0192f0c4-6a2e-7c1a-9d5e-3b8c2f1e4a77", Seq: seq, Info: info, Source: source,
			CreatedAt: time.Unix(0, nanos).UTC().Truncate(time.Microsecond)}
		want, err := json.Marshal(factJSON{ID: fact.ID, Seq: seq, Info: info, Source: source,
			CreatedAt: fact.CreatedAt.Format(TimeLayout)})
		if err != nil {
			t.Fatal(err)
		}
		if got := fact.AppendJSON(nil); string(got) != string(want) {
			t.Fatalf("AppendJSON = %s\nencoding/json = %s", got, want)
		}
	})
}

func TestAppendJSONArray(t *testing.T) {
	if got := string(AppendJSONArray(nil, nil)); got != "[]" {
		t.Fatalf("empty array = %s", got)
	}
	facts := []Fact{{ID: "a", Seq: 1, Info: "x"}, {ID: "b", Seq: 2, Info: "y"}}
	var back []Fact
	if err := json.Unmarshal(AppendJSONArray(nil, facts), &back); err != nil || len(back) != 2 || back[1].ID != "b" {
		t.Fatalf("round trip = %+v, %v", back, err)
	}
}
