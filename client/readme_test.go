package client_test

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeShowsTheExample keeps the README's Go snippet a copy of
// Example's code, from "ctx := context.Background()" to its output.
func TestReadmeShowsTheExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n### Go\n")
	_, block, ok2 := strings.Cut(section, "```go\n")
	block, _, ok3 := strings.Cut(block, "```\n")
	if !ok || !ok2 || !ok3 {
		t.Fatal("README.md has no Go block under a \"### Go\" heading")
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := strings.Cut(string(src), "\nfunc Example() {\n")
	start := strings.Index(body, "\tctx := context.Background()\n")
	end := strings.Index(body, "\t// Output:")
	if start < 0 || end < start {
		t.Fatal("Example has no code from ctx := context.Background() to // Output:")
	}
	var want []string
	for _, line := range strings.Split(strings.TrimRight(body[start:end], "\n"), "\n") {
		want = append(want, strings.TrimPrefix(line, "\t"))
	}
	got := strings.Split(strings.TrimRight(block, "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("the README's snippet has %d lines, Example %d:\n%s", len(got), len(want), strings.Join(want, "\n"))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("README line %d of the snippet is\n%q\nExample has\n%q", i+1, got[i], want[i])
		}
	}
}
