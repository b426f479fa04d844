package tests

import (
	"debug/elf"
	"errors"
	"os/exec"
	"runtime"
	"testing"
)

// TestStaticBuildAndHealthcheck builds the binary as the Dockerfile does
// (CGO_ENABLED=0) and checks that it is static, so it runs on a distroless
// image with no libc, and that its healthcheck subcommand, which the
// container health check runs, tells a live instance from a dead one.
func TestStaticBuildAndHealthcheck(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("checks an ELF binary")
	}
	bin := binPath // TestMain builds it with CGO_ENABLED=0, as the Dockerfile does
	checkStatic(t, bin)

	srv := startServer(t, testConfig(t))
	if code := runHealthcheck(t, bin, "--addr="+srv.Addr); code != 0 {
		t.Fatalf("healthcheck of a live instance exited %d, want 0", code)
	}
	// The container sets the address through the environment only.
	hc := exec.Command(bin, "healthcheck")
	hc.Env = []string{"FACTSTREAM_ADDR=" + srv.Addr}
	if out, err := hc.CombinedOutput(); err != nil {
		t.Fatalf("healthcheck with FACTSTREAM_ADDR: %v\n%s", err, out)
	}
	srv.Stop(t)
	if code := runHealthcheck(t, bin, "--addr="+srv.Addr); code != 1 {
		t.Fatalf("healthcheck of a stopped instance exited %d, want 1", code)
	}
}

func checkStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("binary has a %v program header: it is dynamically linked", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("binary needs shared libraries %v", libs)
	}
}

func runHealthcheck(t *testing.T, bin string, args ...string) int {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"healthcheck"}, args...)...)
	cmd.Env = []string{} // no FACTSTREAM_* from the test's environment
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		t.Logf("healthcheck %v: %s", args, out)
		return exit.ExitCode()
	default:
		t.Fatalf("run healthcheck: %v", err)
		return -1
	}
}
