package client

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func readAll(t *testing.T, r io.Reader, max int) ([]sseEvent, error) {
	t.Helper()
	sr := newSSEReader(r, max, nil)
	var out []sseEvent
	for {
		ev, err := sr.next()
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

func TestSSEReaderFollowsTheStandard(t *testing.T) {
	type want struct {
		name, data, id string
		hasID          bool
		retry          int64
	}
	tests := []struct {
		name  string
		input string
		want  []want
	}{
		{"LineFeeds", "id: 1\ndata: [1]\n\n", []want{{data: "[1]", id: "1", hasID: true, retry: -1}}},
		{"CarriageReturnLineFeeds", "id: 2\r\ndata: x\r\n\r\n", []want{{data: "x", id: "2", hasID: true, retry: -1}}},
		{"CarriageReturns", "id: 3\rdata: y\r\r", []want{{data: "y", id: "3", hasID: true, retry: -1}}},
		{"DataLinesJoined", "data: a\ndata:b\n\n", []want{{data: "a\nb", retry: -1}}},
		{"BareDataFieldIsAnEmptyLine", "data: a\ndata\n\n", []want{{data: "a\n", retry: -1}}},
		{"KeepalivesSkipped", ": keepalive\n\n: another\n\nretry: 3000\n\n", []want{{retry: 3000}}},
		{"ResetFrameHasAnEmptyID", "id:\n\n", []want{{hasID: true, retry: -1}}},
		{"BareIDFieldIsEmpty", "id\n\n", []want{{hasID: true, retry: -1}}},
		{"IDWithNULIgnored", "id: 1\x002\ndata: z\n\n", []want{{data: "z", retry: -1}}},
		{"NamedEvent", "event: truncated\ndata: {}\n\n", []want{{name: "truncated", data: "{}", retry: -1}}},
		{"RetryNotDigitsIgnored", "retry: 3s\ndata: r\n\n", []want{{data: "r", retry: -1}}},
		{"ByteOrderMarkStripped", "\xEF\xBB\xBFdata: b\n\n", []want{{data: "b", retry: -1}}},
		{"OnlyFirstSpaceStripped", "data:  two\n\n", []want{{data: " two", retry: -1}}},
		{"UnterminatedEventDropped", "data: whole\n\ndata: cut", []want{{data: "whole", retry: -1}}},
		{"UnterminatedBlankLineDropped", "data: whole\n\ndata: cut\n", []want{{data: "whole", retry: -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One byte at a time too: a CR and its LF may arrive apart.
			for _, r := range []io.Reader{strings.NewReader(tt.input), iotest.OneByteReader(strings.NewReader(tt.input))} {
				got, err := readAll(t, r, 1024)
				if !errors.Is(err, io.EOF) {
					t.Fatalf("err = %v, want io.EOF", err)
				}
				if len(got) != len(tt.want) {
					t.Fatalf("%d events %+v, want %d", len(got), got, len(tt.want))
				}
				for i, w := range tt.want {
					g := got[i]
					if g.name != w.name || string(g.data) != w.data || g.id != w.id || g.hasID != w.hasID || g.retry != w.retry {
						t.Errorf("event %d = {name:%q data:%q id:%q hasID:%v retry:%d}, want %+v",
							i, g.name, g.data, g.id, g.hasID, g.retry, w)
					}
				}
			}
		})
	}
}

func TestSSEReaderBoundsEvents(t *testing.T) {
	for name, input := range map[string]string{
		"LongLine":        "data: " + strings.Repeat("x", 200) + "\n\n",
		"ManyShortLines":  strings.Repeat("data: "+strings.Repeat("y", 30)+"\n", 10) + "\n",
		"LineWithoutEnd":  strings.Repeat("z", 500),
		"LongCommentLine": ": " + strings.Repeat("c", 300) + "\n\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := readAll(t, strings.NewReader(input), 100); !errors.Is(err, ErrEventTooLarge) {
				t.Fatalf("err = %v, want ErrEventTooLarge", err)
			}
		})
	}
	t.Run("AtTheBound", func(t *testing.T) {
		got, err := readAll(t, strings.NewReader("data: "+strings.Repeat("x", 99)+"\n\n"), 100)
		if !errors.Is(err, io.EOF) || len(got) != 1 || len(got[0].data) != 99 {
			t.Fatalf("%d events, err %v; want one of 99 bytes", len(got), err)
		}
	})
}
