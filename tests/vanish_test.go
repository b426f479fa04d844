package tests

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
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

// nftMissing says why packets cannot be dropped with nft here, or "".
func nftMissing() string {
	if nftBinary() == "" || os.Geteuid() != 0 {
		return "dropping packets needs root and nft (nftables)"
	}
	return ""
}

// nftDrop adds an output rule, such as "ip daddr 127.0.0.9 drop", that
// makes matching packets vanish as if their receiver had lost its network
// without closing. The returned func removes it, as does the cleanup.
func nftDrop(t *testing.T, rule string) (undo func()) {
	t.Helper()
	if why := nftMissing(); why != "" {
		skipUnlessCI(t, why)
	}
	nft := nftBinary()
	table := fmt.Sprintf("factstream_test_%d", os.Getpid())
	script := fmt.Sprintf(`table inet %s {
	chain out {
		type filter hook output priority 0; policy accept;
		%s
	}
}`, table, rule)
	cmd := exec.Command(nft, "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		skipUnlessCI(t, fmt.Sprintf("nft cannot add a rule here: %v %s", err, out))
	}
	var once sync.Once
	undo = func() {
		once.Do(func() {
			if out, err := exec.Command(nft, "delete", "table", "inet", table).CombinedOutput(); err != nil {
				t.Errorf("removing the nft rule: %v %s", err, out)
			}
		})
	}
	t.Cleanup(undo)
	return undo
}
