package tests

import (
	"bufio"
	"bytes"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"factstream/hub/fanout"
	"factstream/store"
)

// FuzzSSEFraming encodes arbitrary facts as the server does and parses the
// bytes back with the spec-following parser: every fact must come back
// whole, with its seq as the event id, whatever its text holds (line
// breaks, "data:" look-alikes, NULs, invalid UTF-8).
func FuzzSSEFraming(f *testing.F) {
	f.Add("Shark teeth", "https://en.wikipedia.org/wiki/Shark", uint64(1))
	f.Add("line\nbreak\r\nand\rreturns", "", uint64(42))
	f.Add("\n\ndata: injected\nid: 999\n\n", "http://x/\nid: 5", uint64(7))
	f.Add(": not a comment", "", uint64(18446744073709551615))
	f.Add("\x00\xff\u2028\u2029", "", uint64(3))
	f.Fuzz(func(t *testing.T, info, source string, seq uint64) {
		seq = seq%(1<<62) + 1 // a real seq: positive, and seq+1 fits
		in := []store.Fact{
			{ID: "0192f0c4-6a2e-7c1a-9d5e-3b8c2f1e4a77", Seq: seq, Info: info, Source: source, CreatedAt: time.Unix(1e9, 123456000).UTC()},
			{ID: "0192f0c4-6a2e-7c1a-9d5e-3b8c2f1e4a78", Seq: seq + 1, Info: "next", CreatedAt: time.Unix(1e9, 0).UTC()},
		}
		var wire bytes.Buffer
		for _, ev := range fanout.Events(in) {
			wire.Write(ev.Frame)
		}
		r := bufio.NewReader(&wire)
		for _, want := range in {
			ev, err := readEvent(r)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if ev.ID != strconv.FormatUint(want.Seq, 10) || ev.Event != "" {
				t.Fatalf("event id %q name %q, want id %d", ev.ID, ev.Event, want.Seq)
			}
			got, err := decodeFacts(ev.Data)
			if err != nil || len(got) != 1 {
				t.Fatalf("data %q: %v", ev.Data, err)
			}
			if got[0].Seq != want.Seq || got[0].ID != want.ID || !got[0].CreatedAt.Equal(want.CreatedAt) {
				t.Fatalf("got %+v, want %+v", got[0], want)
			}
			// encoding/json turns invalid UTF-8 into U+FFFD (the API
			// refuses such text anyway): compare the text only when valid.
			if utf8.ValidString(want.Info) && utf8.ValidString(want.Source) && (got[0].Info != want.Info || got[0].Source != want.Source) {
				t.Fatalf("text came back as %q %q, want %q %q", got[0].Info, got[0].Source, want.Info, want.Source)
			}
		}
		if _, err := readEvent(r); err == nil {
			t.Fatal("the parser found an extra event")
		}
	})
}
