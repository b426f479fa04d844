package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestClientStaysLight: a program that imports the client does not pull
// in the server (gin, bbolt, go-redis, prometheus) or anything beyond the
// standard library and google/uuid.
func TestClientStaysLight(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "factstream/client").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg != "factstream/client" && pkg != "github.com/google/uuid" {
			t.Errorf("factstream/client depends on %s", pkg)
		}
	}
}
