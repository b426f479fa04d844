package tests

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"factstream/store"
	"factstream/store/bolt"
)

// TestStartupStoreProblemsEndInOneLine starts the binary on bolt files it
// cannot use. Each start must end with a non-zero status and one line that
// names the file and the cause, never a panic trace.
func TestStartupStoreProblemsEndInOneLine(t *testing.T) {
	cases := []struct {
		name  string
		spoil func(t *testing.T, path string)
		want  string
	}{
		{"ZeroedAfterMeta", func(t *testing.T, path string) {
			rewrite(t, path, func(b []byte) []byte { clear(b[2*pageSize(b):]); return b })
		}, "corrupt or truncated"},
		{"TruncatedToHalf", func(t *testing.T, path string) {
			rewrite(t, path, func(b []byte) []byte { return b[:len(b)/2] })
		}, "corrupt or truncated"},
		{"RootPageOverwritten", func(t *testing.T, path string) {
			rewrite(t, path, func(b []byte) []byte {
				ps := pageSize(b)
				// The meta page's root bucket pgid follows its 16-byte
				// page header and four uint32 fields.
				for _, meta := range []int{0, ps} {
					root := int(binary.LittleEndian.Uint64(b[meta+32:]))
					for i := root * ps; i < (root+1)*ps; i++ {
						b[i] = 0xff
					}
				}
				return b
			})
		}, "corrupt or truncated"},
		{"ShorterThanItsHeader", func(t *testing.T, path string) {
			rewrite(t, path, func(b []byte) []byte { return b[:3000] })
		}, "corrupt or truncated"},
		{"NotABoltFile", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(strings.Repeat("not a database\n", 1000)), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "corrupt or truncated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "facts.db")
			makeBoltFile(t, path, 200)
			tc.spoil(t, path)
			out := startMustFail(t, dir, "--store", "bolt:facts.db")
			checkOneLine(t, out, `"facts.db"`, tc.want)
		})
	}

	t.Run("LockedByAnotherProcess", func(t *testing.T) {
		dir := t.TempDir()
		startProcess(t, dir, freePort(t), "--store", "bolt:facts.db")
		out := startMustFail(t, dir, "--store", "bolt:facts.db")
		checkOneLine(t, out, `"facts.db"`, "locked by another process")
	})

	t.Run("DirectoryNotWritable", func(t *testing.T) {
		dir := t.TempDir()
		data := filepath.Join(dir, "data")
		if err := os.Mkdir(data, 0o755); err != nil {
			t.Fatal(err)
		}
		readOnlyDir(t, data)
		for _, spec := range []string{"bolt:data/facts.db", "bolt:data/sub/facts.db"} {
			out := startMustFail(t, dir, "--store", spec)
			file := strings.TrimPrefix(spec, "bolt:")
			cause := "operation not permitted"
			if os.Geteuid() != 0 {
				cause = "permission denied"
			}
			checkOneLine(t, out, file, cause)
		}
	})
}

// makeBoltFile writes a bolt store of n facts at path.
func makeBoltFile(tb testing.TB, path string, n int) {
	tb.Helper()
	s, err := bolt.Open(path, store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	for range n {
		req := store.AppendRequest{Drafts: []store.Draft{{Info: strings.Repeat("x", 1000)}}}
		if _, err := s.Append(context.Background(), req); err != nil {
			tb.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
}

func rewrite(tb testing.TB, path string, change func([]byte) []byte) {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, change(b), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// pageSize reads the page size from a bolt file's first meta page.
func pageSize(b []byte) int { return int(binary.LittleEndian.Uint32(b[16+8:])) }

// readOnlyDir makes dir refuse new entries, for root too (which ignores
// permission bits): then through the immutable attribute.
func readOnlyDir(tb testing.TB, dir string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { os.Chmod(dir, 0o755) })
		return
	}
	if _, err := exec.LookPath("chattr"); err != nil {
		skipUnlessCI(tb, "running as root without chattr: no way to make a directory read-only")
	}
	if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		skipUnlessCI(tb, "chattr +i: "+strings.TrimSpace(string(out)))
	}
	tb.Cleanup(func() { exec.Command("chattr", "-i", dir).Run() })
}

// startMustFail runs the binary in dir with args, expects it to exit with
// a non-zero status within 20 s and returns what it printed.
func startMustFail(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FACTSTREAM_ADDR="+freePort(tb))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || ctx.Err() != nil {
		tb.Fatalf("factstream %v: %v, want a non-zero exit; output:\n%s", args, err, out)
	}
	return string(out)
}

// checkOneLine fails unless out is a single line holding every want.
func checkOneLine(tb testing.TB, out string, want ...string) {
	tb.Helper()
	if strings.Contains(out, "goroutine ") || strings.Contains(out, "panic") {
		tb.Fatalf("a panic trace instead of one line:\n%s", out)
	}
	if lines := strings.Split(strings.TrimRight(out, "\n"), "\n"); len(lines) != 1 {
		tb.Fatalf("%d lines, want one:\n%s", len(lines), out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			tb.Errorf("the line does not say %q:\n%s", w, out)
		}
	}
}

// TestStartupNeverPrintsAStorePassword gives Redis URLs that cannot be used:
// the line that stops start-up must not show their password.
func TestStartupNeverPrintsAStorePassword(t *testing.T) {
	for _, spec := range []string{
		"redis://:s3cret-pw@127.0.0.1:notaport/0",
		"redis://app:s3cret-pw@127.0.0.1:6379/0?key_prefix=",
	} {
		out := startMustFail(t, t.TempDir(), "--store", spec)
		checkOneLine(t, out, "xxxxx")
		if strings.Contains(out, "s3cret-pw") {
			t.Errorf("the password is printed:\n%s", out)
		}
	}
}
