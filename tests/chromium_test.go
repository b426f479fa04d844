package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// startBrowser starts a headless Chromium for one test and returns a context
// for it; each openPage makes a new tab in it. Without Chromium the test is
// skipped, except under CI=true, where .ci/run installs it first and a
// missing browser must not pass unnoticed.
func startBrowser(tb testing.TB) context.Context {
	tb.Helper()
	path := chromiumPath()
	if path == "" {
		msg := "Chromium not found (/usr/bin/chromium or chromium in PATH); scripts/test-deps.sh installs it"
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip("skipping browser test: " + msg)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // the tests run as root in containers
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	tb.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// Start it now, so a browser that cannot start fails here, by name. The
	// first run's context must be bctx itself: the browser lives as long as
	// that context.
	if err := chromedp.Do(bctx); err != nil {
		tb.Fatalf("start Chromium %s: %v", path, err)
	}
	return bctx
}

func chromiumPath() string {
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// page is one browser tab showing the dashboard, with everything the page
// wrote to its console.
type page struct {
	tb  testing.TB
	ctx context.Context

	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

// openPage opens url in a new tab of width × 900 pixels and waits until the
// connection indicator says live. The tab closes when the test ends.
func openPage(tb testing.TB, browser context.Context, url string, width int64) *page {
	tb.Helper()
	p := loadPage(tb, browser, url, width, 900)
	p.waitFor(10*time.Second, "the indicator to say live", `document.querySelector('#connection').dataset.state === 'live'`)
	return p
}

// loadPage opens url in a new tab of width × height pixels without waiting
// for the stream, for pages that are not expected to go live.
func loadPage(tb testing.TB, browser context.Context, url string, width, height int64) *page {
	tb.Helper()
	ctx, cancelTab := chromedp.NewContext(browser)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	tb.Cleanup(func() {
		cancelTimeout()
		cancelTab()
	})
	p := &page{tb: tb, ctx: ctx}
	if err := chromedp.Do(ctx); err != nil { // open the tab, so Console can attach
		tb.Fatalf("open tab: %v", err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.msgs = append(p.msgs, m)
			p.mu.Unlock()
		}
	}()
	p.do(chromedp.EmulateViewport(width, height), chromedp.Navigate(url))
	return p
}

// do runs actions in the tab and fails the test on error.
func (p *page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.tb.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.tb.Fatalf("browser: %v", err)
	}
}

// eval evaluates a JavaScript expression in the page and decodes its value.
func eval[T any](p *page, expr string) T {
	p.tb.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.tb.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition in the page until it is true. It
// polls rather than sleeps, so a pass costs only as long as the page takes.
func (p *page) waitFor(timeout time.Duration, what, cond string) {
	p.tb.Helper()
	deadline := time.Now().Add(timeout)
	for !eval[bool](p, "!!("+cond+")") {
		if time.Now().After(deadline) {
			p.tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(15 * time.Millisecond)
	}
}

// errors returns the console errors and uncaught exceptions so far. With
// allowNetwork, failed requests the test caused on purpose (a 400, a
// refused connection while the server is down) are left out; the browser
// logs those itself and the page cannot prevent it.
func (p *page) errors(allowNetwork bool) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, m := range p.msgs {
		if m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleException {
			continue
		}
		if allowNetwork && m.Source == "network" {
			continue
		}
		out = append(out, fmt.Sprintf("%s %s (%s:%d)", m.Type, m.Text, m.URL, m.Line+1))
	}
	return out
}

// checkNoErrors fails the test if the page logged an error.
func (p *page) checkNoErrors(allowNetwork bool) {
	p.tb.Helper()
	if errs := p.errors(allowNetwork); len(errs) > 0 {
		p.tb.Errorf("the page logged %d console errors:\n%s", len(errs), strings.Join(errs, "\n"))
	}
}

// rows returns the data-seq of every row in the table, top to bottom.
func (p *page) rows() []string {
	p.tb.Helper()
	return eval[[]string](p, `[...document.querySelectorAll('#facts > tr')].map(r => r.dataset.seq)`)
}

// checkRows fails unless the table holds exactly the given seqs, each once,
// newest first.
func (p *page) checkRows(want ...uint64) {
	p.tb.Helper()
	got := p.rows()
	wantS := make([]string, len(want))
	for i, seq := range want {
		wantS[len(want)-1-i] = fmt.Sprint(seq)
	}
	if strings.Join(got, ",") != strings.Join(wantS, ",") {
		p.tb.Fatalf("table rows (data-seq, top to bottom) = %v, want %v", got, wantS)
	}
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// isShown is a JavaScript expression that is true when the element with
// the given id is rendered (not hidden, not display: none).
func isShown(id string) string {
	return `(e => !!e && e.getClientRects().length > 0)(document.getElementById(` + js(id) + `))`
}

// rowSelector is the CSS selector of the row of seq.
func rowSelector(seq uint64) string {
	return fmt.Sprintf(`#facts > tr[data-seq="%d"]`, seq)
}
