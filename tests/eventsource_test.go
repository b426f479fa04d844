package tests

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserEventSourceWithAccessToken subscribes a real EventSource, which
// cannot set headers, with the token in the access_token query parameter,
// and with the factstream_token cookie; a wrong token fails the
// EventSource for good instead of making it reconnect forever.
func TestBrowserEventSourceWithAccessToken(t *testing.T) {
	browser := startBrowser(t)
	cfg := testConfig(t)
	cfg.SubscribeTokens = []string{"browser-token"}
	srv := startServer(t, cfg)
	before := postFact(t, srv.URL, "before")

	ctx, cancel := context.WithTimeout(browser, 30*time.Second)
	defer cancel()
	// Any page of the service gives the script its origin.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/healthz")); err != nil {
		t.Fatal(err)
	}
	open := `(() => {
		window.got = { query: [], cookie: [] };
		const q = new EventSource('/events?access_token=browser-token');
		q.onmessage = e => window.got.query.push(e.data);
		document.cookie = 'factstream_token=browser-token; path=/; SameSite=Strict';
		const c = new EventSource('/events');
		c.onmessage = e => window.got.cookie.push(e.data);
		// The cookie stays set: the wrong query token below must still be
		// refused, as a query token is checked before the cookie.
		window.wrong = new EventSource('/events?access_token=wrong-token');
		return true;
	})()`
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](open)); err != nil {
		t.Fatal(err)
	}
	waitJS := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
			got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.got)`))
			t.Fatalf("waiting for %s: %v; received %s", what, err, got)
		}
	}
	has := func(id string) string {
		return `window.got.query.some(d => d.includes('` + id + `')) && window.got.cookie.some(d => d.includes('` + id + `'))`
	}
	waitJS("the snapshot on both EventSources", has(before.ID))
	after := postFact(t, srv.URL, "after")
	waitJS("the live fact on both EventSources", has(after.ID))
	waitJS("the wrong token to close its EventSource", `window.wrong.readyState === EventSource.CLOSED`)
}

// TestDashboardWithEnforcedTokens opens the dashboard on a server that
// requires tokens to read and to publish, with one publish token in the
// page's fragment: it goes live and its form publishes, so the dashboard
// works under the real checks, CSP and security headers included.
func TestDashboardWithEnforcedTokens(t *testing.T) {
	browser := startBrowser(t)
	cfg := browserConfig(t)
	cfg.SubscribeTokens = []string{"view-token"}
	cfg.PublishTokens = []string{"post-token"}
	srv := startServer(t, cfg)
	before := publishAs(t, srv.URL, "post-token", "stored before")

	p := openPage(t, browser, srv.URL+"/#token=post-token", 1280)
	p.waitFor(5*time.Second, "the fact stored before", `document.querySelector(`+js(rowSelector(before.Seq))+`)`)
	p.do(chromedp.SetValue(chromedp.ID("info"), "posted with a token"), chromedp.Click(chromedp.ID("post-button")))
	p.waitFor(5*time.Second, "the posted fact", `document.querySelector('#facts td.info')?.textContent === 'posted with a token'`)
	if got := factCount(t, srv.URL, bearer("view-token")); got != 2 {
		t.Fatalf("facts = %d, want 2", got)
	}
	p.checkNoErrors(false)
}
