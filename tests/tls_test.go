package tests

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"factstream/app"
	"factstream/store"
)

// selfSigned writes a certificate for 127.0.0.1 and localhost with its key
// into a temporary directory and returns their paths and a pool that
// trusts it.
func selfSigned(tb testing.TB) (certFile, keyFile string, roots *x509.CertPool) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "factstream test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		tb.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

// tlsClient trusts roots and speaks HTTP/2 when h2 is set (a custom
// TLSClientConfig turns HTTP/2 off unless asked for), HTTP/1.1 otherwise.
func tlsClient(roots *x509.CertPool, h2 bool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: h2}
	return &http.Client{Transport: tr}
}

// startTLSServer is startServer for HTTPS: it serves cfg with a fresh
// self-signed certificate and returns the server (URL https://...) and an
// HTTP/2 client that trusts it.
func startTLSServer(tb testing.TB, cfg app.Config) (*server, *http.Client, *x509.CertPool) {
	tb.Helper()
	var roots *x509.CertPool
	cfg.TLSCert, cfg.TLSKey, roots = selfSigned(tb)
	s := launch(tb, cfg, "https")
	client := tlsClient(roots, true)
	tb.Cleanup(client.CloseIdleConnections)
	eventually(tb, 10*time.Second, "HTTPS /healthz", func() bool {
		resp, err := client.Get(s.URL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return s, client, roots
}

// tlsStream is an open /events response over TLS, read with the shared
// parser.
type tlsStream struct {
	resp *http.Response
	r    *bufio.Reader
}

func openTLSStream(ctx context.Context, client *http.Client, url string) (*tlsStream, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	return &tlsStream{resp: resp, r: bufio.NewReader(resp.Body)}, nil
}

// nextData reads events until one carries data; keepalives counts the
// comment-only events passed on the way.
func (s *tlsStream) nextData() (ev sseEvent, keepalives int, err error) {
	for {
		ev, err = readEvent(s.r)
		if err != nil || ev.Data != "" {
			return ev, keepalives, err
		}
		if ev.Retry == "" && len(ev.Comments) > 0 {
			keepalives++
		}
	}
}

func TestTLSServesStreamsOverHTTP2(t *testing.T) {
	const streams = 10
	srv, client, _ := startTLSServer(t, testConfig(t))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var wg sync.WaitGroup
	errs := make(chan string, streams)
	received := make(chan string, streams)
	for range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := openTLSStream(ctx, client, srv.URL+"/events")
			if err != nil {
				errs <- err.Error()
				return
			}
			defer s.resp.Body.Close()
			if s.resp.StatusCode != http.StatusOK || s.resp.ProtoMajor != 2 {
				errs <- s.resp.Status + " over " + s.resp.Proto
				return
			}
			for {
				ev, _, err := s.nextData()
				if err != nil {
					errs <- err.Error()
					return
				}
				if ev.Data != "[]" { // past the empty snapshot
					received <- ev.Data
					return
				}
			}
		}()
	}
	eventually(t, 10*time.Second, "10 open streams", func() bool {
		resp, err := client.Get(srv.URL + "/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st struct{ Clients int }
		return decodeJSON(resp, &st) == nil && st.Clients == streams
	})
	f := postFactWith(t, client, srv.URL, "over h2")
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	close(received)
	n := 0
	for data := range received {
		if !strings.Contains(data, f.ID) {
			t.Errorf("stream received %s, want fact %s", data, f.ID)
		}
		n++
	}
	if n != streams {
		t.Fatalf("%d of %d streams received the fact", n, streams)
	}
}

// TestHTTP2StreamOutlivesTheWriteTimeout keeps a stream idle for longer
// than the per-write deadline: on HTTP/2 a deadline left set resets the
// stream when it fires, so this fails unless each write clears it.
func TestHTTP2StreamOutlivesTheWriteTimeout(t *testing.T) {
	cfg := testConfig(t)
	cfg.WriteTimeout = 100 * time.Millisecond
	cfg.Heartbeat = 300 * time.Millisecond
	srv, client, _ := startTLSServer(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := openTLSStream(ctx, client, srv.URL+"/events")
	if err != nil {
		t.Fatal(err)
	}
	defer s.resp.Body.Close()
	if s.resp.ProtoMajor != 2 {
		t.Fatalf("served over %s, want HTTP/2", s.resp.Proto)
	}
	if ev, _, err := s.nextData(); err != nil || ev.Data != "[]" {
		t.Fatalf("snapshot = %+v, %v", ev, err)
	}
	// Two heartbeats: the stream has been idle for 3 write timeouts twice.
	for seen := 0; seen < 2; {
		ev, err := readEvent(s.r)
		if err != nil {
			t.Fatalf("stream cut while idle after %d heartbeats: %v", seen, err)
		}
		if ev.Data == "" && len(ev.Comments) > 0 {
			seen++
		}
	}
	f := postFactWith(t, client, srv.URL, "still here")
	ev, _, err := s.nextData()
	if err != nil || !strings.Contains(ev.Data, f.ID) {
		t.Fatalf("after idling: %+v, %v; want fact %s", ev, err, f.ID)
	}
}

func TestTLSStillServesHTTP1(t *testing.T) {
	srv, _, roots := startTLSServer(t, testConfig(t))
	client := tlsClient(roots, false)
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := openTLSStream(ctx, client, srv.URL+"/events")
	if err != nil {
		t.Fatal(err)
	}
	defer s.resp.Body.Close()
	if s.resp.ProtoMajor != 1 || s.resp.Header.Get("Connection") != "keep-alive" {
		t.Fatalf("served over %s with Connection %q, want HTTP/1.1 keep-alive", s.resp.Proto, s.resp.Header.Get("Connection"))
	}
}

func decodeJSON(resp *http.Response, v any) error {
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// postFactWith posts one fact through client and returns it.
func postFactWith(tb testing.TB, client *http.Client, base, info string) store.Fact {
	tb.Helper()
	ex := do(tb, client, http.MethodPost, base+"/fact", jsonHeader(nil), fmt.Sprintf(`{"info":%q}`, info))
	var f store.Fact
	if ex.status != http.StatusCreated || json.Unmarshal([]byte(ex.body), &f) != nil {
		tb.Fatalf("POST /fact = %d %s", ex.status, ex.body)
	}
	return f
}
