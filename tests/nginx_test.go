package tests

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// toolPath finds the program name in PATH or in the sbin directories
// (Debian installs nginx there, often not in a user's PATH). Without it the
// test skips, saying what the tool was for, or fails when CI=true.
func toolPath(tb testing.TB, name, purpose string) string {
	tb.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p
		}
	}
	skipUnlessCI(tb, fmt.Sprintf("%s not found: install it (scripts/test-deps.sh does) %s", name, purpose))
	return ""
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// nginxBinary finds nginx, or skips (fails when CI=true).
func nginxBinary(t *testing.T) string {
	t.Helper()
	return toolPath(t, "nginx", "to test the proxy configs")
}

// composeNginxConf is deploy/nginx/factstream.conf, as the cluster profile
// mounts it, pointed at local instances and a local listen address.
func composeNginxConf(t *testing.T, listen string, upstreams map[string]string) string {
	t.Helper()
	b, err := os.ReadFile("../deploy/nginx/factstream.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for from, to := range upstreams {
		conf = replaceOnce(t, conf, "server "+from+" ", "server "+to+" ")
	}
	return replaceOnce(t, conf, "listen 3000;", "listen "+listen+";")
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("nginx config has %q %d times, want once", old, n)
	}
	return strings.Replace(s, old, new, 1)
}

// startNginx checks site (a conf.d file) with nginx -t, then runs nginx in
// the foreground with it in a temporary prefix, and waits until base
// (nginx's address, as client reaches it) proxies /healthz.
func startNginx(t *testing.T, site, base string, client *http.Client) {
	t.Helper()
	bin := nginxBinary(t)
	prefix := t.TempDir()
	if err := os.WriteFile(filepath.Join(prefix, "site.conf"), []byte(site), 0o644); err != nil {
		t.Fatal(err)
	}
	// One process, no user switch: every path below is in the test's own
	// temporary directory.
	main := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/site.conf;
}
`, prefix)
	conf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(conf, []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-p", prefix, "-c", conf, "-e", filepath.Join(prefix, "error.log")}
	if out, err := exec.Command(bin, append([]string{"-t", "-q"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, args...)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			t.Fatalf("nginx exited at start: %s\n%s", out, log)
		default:
		}
		if resp, err := client.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not proxy /healthz within 10s: %s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deliveredBeforeNext opens a stream through base and posts n facts through
// it with client, one at a time: each fact's id must come out of the stream (within
// wait) before the next is posted. A proxy that holds the stream back
// (headers or small events) fails this. The stream's request ends with the
// check, whatever the proxy does.
func deliveredBeforeNext(t *testing.T, client *http.Client, base string, n int, wait time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	ids := make(chan string, 64)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // ends the request, so the reader returns
	wg.Go(func() {
		defer close(ids)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events", nil)
		if err != nil {
			return
		}
		resp, err := client.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
				ids <- id
			}
		}
	})
	for i := range n {
		// Posted before or after the stream registers, the fact's seq comes
		// as the snapshot's id or as its own event.
		f := postFactWith(t, client, base, fmt.Sprintf("through nginx %d", i))
		timer := time.NewTimer(wait)
		for got := ""; got != fmt.Sprint(f.Seq); {
			var ok bool
			select {
			case got, ok = <-ids:
				if !ok {
					timer.Stop()
					return fmt.Errorf("stream ended before fact %d (seq %d)", i, f.Seq)
				}
			case <-timer.C:
				return fmt.Errorf("fact %d (seq %d) not delivered within %v", i, f.Seq, wait)
			}
		}
		timer.Stop()
	}
	return nil
}

// TestNginxConfigStreamsWithoutBuffering puts nginx, with the cluster
// profile's config, in front of two instances on one Redis.
func TestNginxConfigStreamsWithoutBuffering(t *testing.T) {
	nginxBinary(t)
	_, nodes := startCluster(t, 2)
	upstreams := map[string]string{"factstream-a:3000": nodes[0].Addr, "factstream-b:3000": nodes[1].Addr}
	listen := freePort(t)
	base := "http://" + listen
	startNginx(t, composeNginxConf(t, listen, upstreams), base, http.DefaultClient)

	if err := deliveredBeforeNext(t, http.DefaultClient, base, 10, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	s := openStream(t, base+"/events", nil)
	if ct := s.Resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type through nginx = %q", ct)
	}

	// Round robin reaches both instances, and a resume through nginx
	// catches up wherever it lands.
	seen := map[string]bool{}
	for range 6 {
		seen[status(t, base).Instance] = true
	}
	if len(seen) != 2 {
		t.Fatalf("requests through nginx reached %v, want both instances", seen)
	}
	s.Close()
	var last uint64
	for range 3 {
		last = postFact(t, base, "while away").Seq
	}
	s = openStream(t, base+"/events", http.Header{"Last-Event-ID": {fmt.Sprint(last - 3)}})
	ev, err := nextData(s)
	if err != nil || len(factsOf(t, ev)) != 3 || ev.ID != fmt.Sprint(last) {
		t.Fatalf("resume through nginx = %+v, %v; want the 3 missed facts", ev, err)
	}
}

// TestNginxBufferingIsDetected runs the same check against a config that
// holds the stream back (buffering on, the service's X-Accel-Buffering
// ignored, and gzip, whose compressor keeps small writes until its buffer
// fills), to show that the check above can fail.
func TestNginxBufferingIsDetected(t *testing.T) {
	nginxBinary(t)
	_, nodes := startCluster(t, 2)
	upstreams := map[string]string{"factstream-a:3000": nodes[0].Addr, "factstream-b:3000": nodes[1].Addr}
	listen := freePort(t)
	site := composeNginxConf(t, listen, upstreams)
	site = replaceOnce(t, site, "gzip off;", "gzip on; gzip_types text/event-stream; gzip_min_length 0;")
	site = replaceOnce(t, site, "proxy_buffering off;", "proxy_buffering on; proxy_ignore_headers X-Accel-Buffering;")
	base := "http://" + listen
	startNginx(t, site, base, http.DefaultClient)

	if err := deliveredBeforeNext(t, http.DefaultClient, base, 3, time.Second); err == nil {
		t.Fatal("a buffering nginx delivered every event at once: the check cannot tell")
	}
}
