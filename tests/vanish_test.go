package tests

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// nftBinary finds nft, which may sit in an sbin directory off the PATH.
func nftBinary() string {
	if p, err := exec.LookPath("nft"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/nft", "/sbin/nft"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// dropTo makes every packet sent to the given loopback ports vanish, as if
// those clients had lost their network without closing; the rule goes at
// cleanup.
func dropTo(t *testing.T, ports []int) {
	t.Helper()
	nft := nftBinary()
	if nft == "" || os.Geteuid() != 0 {
		skipUnlessCI(t, "dropping packets needs root and nft (nftables)")
	}
	table := fmt.Sprintf("factstream_test_%d", os.Getpid())
	set := make([]string, len(ports))
	for i, p := range ports {
		set[i] = fmt.Sprint(p)
	}
	script := fmt.Sprintf(`table inet %s {
	chain out {
		type filter hook output priority 0; policy accept;
		ip daddr 127.0.0.1 tcp dport { %s } drop
	}
}`, table, strings.Join(set, ", "))
	cmd := exec.Command(nft, "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		skipUnlessCI(t, fmt.Sprintf("nft cannot add a rule here: %v %s", err, out))
	}
	t.Cleanup(func() { exec.Command(nft, "delete", "table", "inet", table).Run() })
}

// TestVanishedClientsAreReleased has streams whose clients disappear
// without closing: their packets are dropped, so the server's keepalives
// are never acknowledged. The server must notice, end those streams and
// give back their goroutines and files, while a live stream goes on.
func TestVanishedClientsAreReleased(t *testing.T) {
	cfg := testConfig(t)
	cfg.Heartbeat = 200 * time.Millisecond
	cfg.WriteTimeout = 500 * time.Millisecond
	srv := startServer(t, cfg)
	live := openStream(t, srv.URL+"/events", nil)
	live.Next(2 * time.Second) // retry
	live.Next(2 * time.Second) // snapshot
	baseGoroutines := runtime.NumGoroutine()

	var ports []int
	for range 20 {
		conn, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close() // never closed before the server gives up
		conn.Write([]byte("GET /events HTTP/1.1\r\nHost: x\r\n\r\n"))
		r := bufio.NewReader(conn)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(line, "data: ") {
				break
			}
		}
		ports = append(ports, conn.LocalAddr().(*net.TCPAddr).Port)
	}
	if got := clients(t, srv.URL); got != 21 {
		t.Fatalf("%d streams open, want 21", got)
	}
	dropTo(t, ports)

	eventually(t, 30*time.Second, "the vanished clients' streams to end", func() bool { return clients(t, srv.URL) == 1 })
	f := postFact(t, srv.URL, "still live")
	if ev, err := live.Next(5 * time.Second); err != nil || factsOf(t, ev)[0].ID != f.ID {
		t.Fatalf("the live stream got %+v, %v", ev, err)
	}
	if g := runtime.NumGoroutine(); g > baseGoroutines+5 {
		t.Errorf("goroutines: %d after the vanished streams ended, baseline %d", g, baseGoroutines)
	}
}
