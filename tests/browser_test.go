package tests

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"factstream/app"
	"factstream/store"
	"factstream/store/bolt"
)

// browserConfig is the test configuration with a short SSE retry, so a
// browser reconnects quickly after a restart.
func browserConfig(tb testing.TB) app.Config {
	cfg := testConfig(tb)
	cfg.Retry = 200 * time.Millisecond
	return cfg
}

// TestDashboard drives the dashboard in headless Chromium against the real
// server: each subtest opens its own tab on the same server.
func TestDashboard(t *testing.T) {
	browser := startBrowser(t)
	srv := startServer(t, browserConfig(t))
	first := postFact(t, srv.URL, "before-load")

	t.Run("LoadsLiveWithoutConsoleErrors", func(t *testing.T) {
		p := openPage(t, browser, srv.URL, 1280)
		p.waitFor(2*time.Second, "the fact stored before loading", `document.querySelector(`+js(rowSelector(first.Seq))+`)`)
		var st struct {
			Facts int `json:"facts"`
		}
		getJSON(t, srv.URL+"/status", &st)
		p.waitFor(5*time.Second, "the counters from /status",
			`document.getElementById('fact-count').textContent === `+js(itoa(st.Facts))+
				` && Number(document.getElementById('client-count').textContent) >= 1`)
		// Every fact is on the page: there is nothing older to load.
		p.waitFor(2*time.Second, "the load-older button to say there is nothing older",
			`document.getElementById('load-older').disabled && document.getElementById('load-older').textContent === 'No older facts'`)
		p.checkNoErrors(false)
	})

	t.Run("APIFactAppearsWithinASecondOnce", func(t *testing.T) {
		p := openPage(t, browser, srv.URL, 1280)
		f := postFact(t, srv.URL, "from-the-api")
		p.waitFor(time.Second, "the posted fact's row", `document.querySelector(`+js(rowSelector(f.Seq))+`)`)
		// A later fact arriving proves the stream moved past f without
		// repeating it.
		g := postFact(t, srv.URL, "after-it")
		p.waitFor(time.Second, "the next fact's row", `document.querySelector(`+js(rowSelector(g.Seq))+`)`)
		if got := p.rows(); got[0] != itoa(int(g.Seq)) || got[1] != itoa(int(f.Seq)) {
			t.Fatalf("rows start %v, want newest first: %d, %d", got[:2], g.Seq, f.Seq)
		}
		checkUnique(t, p.rows())
		if got := eval[string](p, `document.querySelector(`+js(rowSelector(f.Seq)+" td.info")+`).textContent`); got != f.Info {
			t.Errorf("row text = %q, want %q", got, f.Info)
		}
		link := eval[map[string]string](p, `(a => ({href: a.href, rel: a.rel}))(document.querySelector(`+js(rowSelector(f.Seq)+" td.source a")+`))`)
		if link["href"] != f.Source || link["rel"] != "noopener noreferrer" {
			t.Errorf("source link = %v, want href %s with rel noopener noreferrer", link, f.Source)
		}
		p.checkNoErrors(false)
	})

	t.Run("FormPostsAndShowsErrorsInline", func(t *testing.T) {
		p := openPage(t, browser, srv.URL, 1280)
		testForm(t, p)
	})

	t.Run("FactTextIsNeverMarkup", func(t *testing.T) {
		p := openPage(t, browser, srv.URL, 1280)
		testXSS(t, p, srv.URL)
	})

	t.Run("FilterNarrowsTable", func(t *testing.T) {
		p := openPage(t, browser, srv.URL, 1280)
		testFilter(t, p, srv.URL)
	})

	t.Run("ChartHasALabelledScale", func(t *testing.T) {
		p := openPage(t, browser, srv.URL, 1280)
		testChart(t, p)
	})

	t.Run("PhoneShowsFactsOnTheFirstScreen", func(t *testing.T) {
		p := loadPage(t, browser, srv.URL, 375, 667)
		testPhone(t, p)
	})
}

// testChart checks that the facts-per-minute chart has a scale a reader
// can see and a screen reader can hear, and that the bars follow it.
func testChart(t *testing.T, p *page) {
	// Every fact on this server was created within the test, so within
	// the chart's hour.
	n := len(p.rows())
	p.waitFor(2*time.Second, "the chart to count every fact",
		`document.getElementById('chart').getAttribute('aria-label').includes(': `+itoa(n)+` facts in all')`)
	label := eval[string](p, `document.getElementById('chart').getAttribute('aria-label')`)
	top := eval[string](p, `document.getElementById('chart-max').textContent`)
	peak := eval[string](p, `document.getElementById('chart-peak').textContent`)
	for _, want := range []string{"Facts per minute", "last 60 minutes", "on a scale of 0 to " + top + ":", "at most "} {
		if !strings.Contains(label, want) {
			t.Errorf("chart aria-label %q lacks %q", label, want)
		}
	}
	topN, err := strconv.Atoi(top)
	if err != nil || topN < 1 {
		t.Fatalf("the axis maximum reads %q, want a positive number", top)
	}
	var peakN int
	if _, err := fmt.Sscanf(peak, "peak %d/min", &peakN); err != nil || peakN < 1 || peakN > topN {
		t.Fatalf("chart peak reads %q with the axis at %d: want 'peak N/min' with 1 <= N <= %d", peak, topN, topN)
	}
	if !strings.Contains(label, "at most "+itoa(peakN)+" in one minute") {
		t.Errorf("chart aria-label %q does not name the peak %d", label, peakN)
	}
	// The tallest bar stands at peak/top of the plot's 80 units.
	tallest := eval[float64](p, `Math.max(...[...document.querySelectorAll('#chart rect')].map(r => Number(r.getAttribute('height'))))`)
	if want := float64(peakN) / float64(topN) * 80; tallest < want-0.01 || tallest > want+0.01 {
		t.Errorf("tallest bar is %.2f units high, want %.2f (peak %d on an axis to %d)", tallest, want, peakN, topN)
	}
	// The axis labels are on screen: the maximum, zero and the time span.
	axis := eval[string](p, `[...document.querySelectorAll('.chart-y span, .chart-x span')].filter(e => e.getClientRects().length > 0).map(e => e.textContent).join('|')`)
	if axis != top+"|0|60 min ago|30 min ago|now" {
		t.Errorf("visible axis labels = %q, want %q", axis, top+"|0|60 min ago|30 min ago|now")
	}
	p.checkNoErrors(false)
}

// testPhone checks the layout at 375 × 667: the first fact is on the first
// screen, nothing scrolls sideways, and the form, folded behind a button,
// opens and posts with the keyboard.
func testPhone(t *testing.T, p *page) {
	p.waitFor(10*time.Second, "live with rows", `document.querySelector('#connection').dataset.state === 'live' && document.querySelector('#facts > tr')`)
	box := eval[map[string]float64](p, `(r => ({top: r.top, bottom: r.bottom}))(document.querySelector('#facts > tr').getBoundingClientRect())`)
	if box["top"] < 0 || box["bottom"] > 667 {
		t.Errorf("the first fact row spans %.0f to %.0f px: want it inside the first 667 px", box["top"], box["bottom"])
	}
	if sw := eval[int](p, `document.documentElement.scrollWidth`); sw > 375 {
		t.Errorf("the page is %d px wide in a 375 px viewport: it scrolls sideways", sw)
	}
	if eval[bool](p, isShown("fact-form")) {
		t.Errorf("the form is open on a phone before it is asked for")
	}
	before := len(p.rows())
	p.do(chromedp.Focus(chromedp.ID("post-toggle")), chromedp.KeyEvent(kb.Enter))
	p.waitFor(2*time.Second, "the form to open with the focus in it",
		isShown("fact-form")+` && document.activeElement.id === 'info' && document.getElementById('post-toggle').getAttribute('aria-expanded') === 'true'`)
	const text = "Posted from a phone"
	p.do(chromedp.KeyEvent(text), chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Enter))
	p.waitFor(2*time.Second, "the phone's fact in the table",
		`[...document.querySelectorAll('#facts td.info')].some(td => td.textContent === `+js(text)+`)`)
	if got := len(p.rows()); got != before+1 {
		t.Errorf("rows = %d after one post, want %d", got, before+1)
	}
	if sw := eval[int](p, `document.documentElement.scrollWidth`); sw > 375 {
		t.Errorf("with the form open the page is %d px wide in a 375 px viewport", sw)
	}
	p.checkNoErrors(false)
}

func testForm(t *testing.T, p *page) {
	const text = "Posted from the form with the keyboard"
	before := len(p.rows())
	// Keyboard only: type, Tab to the source, Tab to the button, Enter.
	p.do(
		chromedp.Focus(chromedp.ID("info")),
		chromedp.KeyEvent(text),
		chromedp.KeyEvent(kb.Tab),
		chromedp.KeyEvent("https://example.com/form"),
		chromedp.KeyEvent(kb.Tab),
		chromedp.KeyEvent(kb.Enter),
	)
	p.waitFor(2*time.Second, "the form's fact in the table and the form cleared",
		`[...document.querySelectorAll('#facts td.info')].some(td => td.textContent === `+js(text)+`)`+
			` && document.getElementById('info').value === '' && document.getElementById('source').value === ''`)
	if got := len(p.rows()); got != before+1 {
		t.Fatalf("rows = %d after one post, want %d", got, before+1)
	}

	// Blank info and a bad source: the server's problem+json names both.
	p.do(
		chromedp.SetValue(chromedp.ID("info"), "   "),
		chromedp.SetValue(chromedp.ID("source"), "not a url"),
		chromedp.Click(chromedp.ID("post-button")),
	)
	p.waitFor(2*time.Second, "both field errors",
		`!document.getElementById('info-error').hidden && !document.getElementById('source-error').hidden`)
	for _, field := range []string{"info", "source"} {
		msg := eval[string](p, `document.getElementById('`+field+`-error').textContent`)
		if msg == "" {
			t.Errorf("%s error is empty", field)
		}
		inline := eval[bool](p, `(f => f.parentElement.contains(document.getElementById(f.id + '-error'))
			&& f.getAttribute('aria-invalid') === 'true'
			&& f.getAttribute('aria-describedby') === f.id + '-error')(document.getElementById('`+field+`'))`)
		if !inline {
			t.Errorf("%s error %q is not shown inline with its field", field, msg)
		}
	}
	if got := eval[string](p, `document.getElementById('source').value`); got != "not a url" {
		t.Errorf("after an error the source field holds %q, want the text kept", got)
	}
	if got := len(p.rows()); got != before+1 {
		t.Errorf("rows = %d after a rejected post, want %d", got, before+1)
	}
	p.checkNoErrors(true) // the 400 itself is logged by the browser
}

func testXSS(t *testing.T, p *page, base string) {
	texts := []string{
		`<img src=x onerror="window.__xss=1">`,
		`<script>window.__xss=1</script>`,
	}
	var seqs []uint64
	for _, text := range texts {
		var f store.Fact
		if code, body := postJSON(t, base+"/fact", map[string]string{"info": text}, &f); code != http.StatusCreated {
			t.Fatalf("POST /fact = %d %s", code, body)
		}
		seqs = append(seqs, f.Seq)
	}
	for i, seq := range seqs {
		sel := rowSelector(seq) + " td.info"
		p.waitFor(2*time.Second, "the row of "+texts[i], `document.querySelector(`+js(sel)+`)`)
		if got := eval[string](p, `document.querySelector(`+js(sel)+`).textContent`); got != texts[i] {
			t.Errorf("row %d shows %q, want the literal text %q", seq, got, texts[i])
		}
	}
	if n := eval[int](p, `document.querySelectorAll('#facts img, #facts script').length`); n != 0 {
		t.Errorf("the table holds %d img or script elements made from fact text", n)
	}
	if got := eval[string](p, `typeof window.__xss`); got != "undefined" {
		t.Errorf("window.__xss is %s: fact text ran as code", got)
	}
	p.checkNoErrors(false)

	// The CSP is the second line of defence: even markup that got in could
	// not run inline script.
	ran := eval[string](p, `(() => { const s = document.createElement('script');
		s.textContent = 'window.__csp = 1'; document.body.append(s); return typeof window.__csp })()`)
	if ran != "undefined" {
		t.Errorf("an inline script ran: the Content-Security-Policy does not forbid it")
	}
}

func testFilter(t *testing.T, p *page, base string) {
	saturn := postDraft(t, base, "Saturn has more than 140 known moons.", "https://science.nasa.gov/saturn/")
	koala := postDraft(t, base, "Koalas sleep up to 22 hours a day.", "https://en.wikipedia.org/wiki/Koala")
	p.waitFor(2*time.Second, "both rows", `document.querySelector(`+js(rowSelector(koala.Seq))+`)`)
	total := len(p.rows())
	visible := func() []string {
		return eval[[]string](p, `[...document.querySelectorAll('#facts > tr')].filter(r => !r.hidden && r.offsetParent !== null).map(r => r.dataset.seq)`)
	}
	cases := []struct {
		name, filter string
		want         uint64
	}{
		{"ByInfo", "SATURN", saturn.Seq},
		{"BySource", "wiki/koala", koala.Seq},
	}
	for _, c := range cases {
		p.do(chromedp.Focus(chromedp.ID("filter")), chromedp.KeyEvent(c.filter))
		p.waitFor(2*time.Second, c.name+" filter to narrow the table", `[...document.querySelectorAll('#facts > tr')].filter(r => !r.hidden).length === 1`)
		if got := visible(); len(got) != 1 || got[0] != itoa(int(c.want)) {
			t.Errorf("%s: filter %q shows rows %v, want only %d", c.name, c.filter, got, c.want)
		}
		// Select everything and delete it, as a person would.
		p.do(chromedp.KeyEvent("a", chromedp.KeyModifiers(chromedp.ModifierCtrl)), chromedp.KeyEvent(kb.Backspace))
		p.waitFor(2*time.Second, "the cleared filter to show every row", `[...document.querySelectorAll('#facts > tr')].every(r => !r.hidden)`)
	}
	if got := len(visible()); got != total {
		t.Errorf("after clearing the filter %d rows are visible, want %d", got, total)
	}
	p.checkNoErrors(false)
}

// TestDashboardSurvivesRestart stops the server under an open page, stores
// facts while it is down, starts it again on the same bolt file and port,
// and checks that the page shows every fact exactly once.
func TestDashboardSurvivesRestart(t *testing.T) {
	browser := startBrowser(t)
	cfg := browserConfig(t)
	cfg.Addr = freePort(t)
	path := filepath.Join(t.TempDir(), "facts.db")
	cfg.Store = "bolt:" + path
	srv := startServer(t, cfg)
	a := postFact(t, srv.URL, "before-restart-1")
	b := postFact(t, srv.URL, "before-restart-2")
	p := openPage(t, browser, srv.URL, 1280)
	p.waitFor(2*time.Second, "the first facts", `document.querySelector(`+js(rowSelector(b.Seq))+`)`)
	p.waitFor(5*time.Second, "current counters", counters("2", "1", false))

	srv.Stop(t)
	p.waitFor(5*time.Second, "the indicator to say reconnecting",
		`document.querySelector('#connection').dataset.state === 'reconnecting'`)
	if text := eval[string](p, `document.getElementById('connection').textContent`); !strings.Contains(text, "last event") {
		t.Errorf("reconnecting indicator says %q, want the time of the last event", strings.TrimSpace(text))
	}
	// The counters keep their last values, marked as such: dimmed, with a
	// title and a note that a screen reader reads with the number.
	p.waitFor(2*time.Second, "the counters marked stale", counters("2", "1", true))
	screenshot(t, p, "dashboard-stale.png")
	for _, id := range []string{"fact-count", "client-count"} {
		got := eval[map[string]string](p, `(e => ({title: e.title, opacity: getComputedStyle(e).opacity,
			name: e.getAttribute('aria-labelledby').split(' ').map(id => document.getElementById(id).textContent).join(' ')}))(document.getElementById(`+js(id)+`))`)
		if !strings.Contains(got["title"], "Last known") {
			t.Errorf("#%s title = %q while the server is down, want it to say the value is the last known", id, got["title"])
		}
		if op, _ := strconv.ParseFloat(got["opacity"], 64); op >= 0.8 {
			t.Errorf("#%s opacity = %s while the server is down, want it dimmed", id, got["opacity"])
		}
		if !strings.Contains(got["name"], "last known") {
			t.Errorf("#%s is labelled %q while the server is down, want it to say last known", id, got["name"])
		}
	}

	// Facts committed while the page is cut off, straight into the file.
	st, err := bolt.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("open the stopped server's store: %v", err)
	}
	res, err := st.Append(context.Background(), store.AppendRequest{Drafts: []store.Draft{
		{Info: "stored while down 1"}, {Info: "stored while down 2"},
	}})
	if err != nil {
		t.Fatalf("append while down: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	srv = startServer(t, cfg)
	p.waitFor(5*time.Second, "the indicator to say live again", `document.querySelector('#connection').dataset.state === 'live'`)
	c := postFact(t, srv.URL, "after-restart")
	p.waitFor(2*time.Second, "the fact posted after the restart", `document.querySelector(`+js(rowSelector(c.Seq))+`)`)
	p.checkRows(a.Seq, b.Seq, res.Facts[0].Seq, res.Facts[1].Seq, c.Seq)
	p.waitFor(5*time.Second, "current counters again", counters("5", "1", false))
	// Nothing was missed: no note that facts are gone.
	if eval[bool](p, `!!document.getElementById('truncated-note')`) {
		t.Errorf("the page says facts are gone after a resume that missed none")
	}
	p.checkNoErrors(true) // refused connections while the server is down
}

// counters is a JavaScript condition: the counters show facts and clients
// and are marked stale or not.
func counters(facts, clients string, stale bool) string {
	not := "!"
	if stale {
		not = ""
	}
	return `((f, c) => f.textContent === ` + js(facts) + ` && c.textContent === ` + js(clients) +
		` && ` + not + `f.classList.contains('stale') && ` + not + `c.classList.contains('stale'))` +
		`(document.getElementById('fact-count'), document.getElementById('client-count'))`
}

// TestDashboardScreenshots writes screenshots at desktop and phone widths to
// tests/artifacts/ and checks that the phone layout needs no sideways
// scrolling.
func TestDashboardScreenshots(t *testing.T) {
	browser := startBrowser(t)
	srv := startServer(t, browserConfig(t))
	for _, d := range [][2]string{
		{"Shark teeth are embedded in the gums rather than fixed to the jaw, and are replaced throughout life.", "https://en.wikipedia.org/wiki/Shark"},
		{"Honey found in ancient Egyptian tombs was still edible.", "https://www.smithsonianmag.com/science-nature/the-science-behind-honeys-eternal-shelf-life-1218690/"},
		{"Octopuses have three hearts and blue blood.", ""},
		{"Bananas are berries, botanically speaking; strawberries are not.", "https://en.wikipedia.org/wiki/Banana"},
		{"A day on Venus is longer than its year.", "https://science.nasa.gov/venus/"},
	} {
		postDraft(t, srv.URL, d[0], d[1])
	}
	for _, v := range []struct {
		name  string
		width int64
	}{{"desktop", 1280}, {"phone", 375}} {
		// A subtest per width, so each tab closes before the next opens
		// and the client counter shows one.
		t.Run(v.name, func(t *testing.T) {
			eventually(t, 5*time.Second, "the previous tab's stream to end", func() bool {
				var st struct {
					Clients int `json:"clients"`
				}
				getJSON(t, srv.URL+"/status", &st)
				return st.Clients == 0
			})
			p := openPage(t, browser, srv.URL, v.width)
			p.waitFor(2*time.Second, "five rows", `document.querySelectorAll('#facts > tr').length === 5`)
			p.waitFor(5*time.Second, "the counters", `document.getElementById('fact-count').textContent === '5'
				&& document.getElementById('client-count').textContent === '1'`)
			if sw := eval[int](p, `document.documentElement.scrollWidth`); sw > int(v.width) {
				t.Errorf("the page is %d px wide in a %d px viewport: it scrolls sideways", sw, v.width)
			}
			// A short viewport, so the full-page shot is as tall as the
			// content and no taller.
			p.do(chromedp.EmulateViewport(v.width, 400))
			screenshot(t, p, "dashboard-"+v.name+".png")
			p.checkNoErrors(false)
		})
	}
}

// screenshot writes a full-page screenshot of p to tests/artifacts/name.
func screenshot(tb testing.TB, p *page, name string) {
	tb.Helper()
	const dir = "artifacts"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("wrote %s", path)
}

// postDraft posts one fact with an optional source and returns it.
func postDraft(tb testing.TB, base, info, source string) store.Fact {
	tb.Helper()
	var f store.Fact
	body := map[string]string{"info": info}
	if source != "" {
		body["source"] = source
	}
	if code, text := postJSON(tb, base+"/fact", body, &f); code != http.StatusCreated {
		tb.Fatalf("POST /fact = %d %s", code, text)
	}
	return f
}

func checkUnique(tb testing.TB, seqs []string) {
	tb.Helper()
	seen := make(map[string]bool, len(seqs))
	for _, s := range seqs {
		if seen[s] {
			tb.Fatalf("row data-seq=%s appears twice in %v", s, seqs)
		}
		seen[s] = true
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestDashboardTakesTokenFromFragment opens the page with #token= and checks
// that the token leaves the address bar, stays in the tab's session storage
// and goes with every request: as access_token on the stream (EventSource
// cannot set headers) and as a bearer token on fetches. A recording proxy
// in front of the server sees the requests as they leave the browser.
func TestDashboardTakesTokenFromFragment(t *testing.T) {
	browser := startBrowser(t)
	srv := startServer(t, browserConfig(t))
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string][]string{} // path -> "query|authorization" of each request
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path] = append(seen[r.URL.Path], r.URL.RawQuery+"|"+r.Header.Get("Authorization"))
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	p := openPage(t, browser, front.URL+"/#view=1&token=s3cr+t/%3D", 1280)
	if got := eval[string](p, `location.hash`); got != "#view=1" {
		t.Errorf("address bar fragment = %q, want the token gone and the rest kept", got)
	}
	if got := eval[string](p, `sessionStorage.getItem('factstream.token')`); got != "s3cr+t/=" {
		t.Errorf("session storage token = %q, want %q", got, "s3cr+t/=")
	}
	p.waitFor(5*time.Second, "the counters", `document.getElementById('fact-count').textContent !== '–'`)
	// Typed in the form, too: POST carries the bearer token.
	p.do(chromedp.SetValue(chromedp.ID("info"), "with a token"), chromedp.Click(chromedp.ID("post-button")))
	p.waitFor(2*time.Second, "the posted fact", `document.querySelector('#facts td.info')?.textContent === 'with a token'`)
	// A reload has no fragment any more; the tab's session storage keeps
	// the token.
	mu.Lock()
	streams := len(seen["/events"])
	mu.Unlock()
	p.do(chromedp.Reload())
	p.waitFor(5*time.Second, "live after the reload", `document.querySelector('#connection').dataset.state === 'live'`)

	mu.Lock()
	defer mu.Unlock()
	checkAll := func(path, want string) {
		if len(seen[path]) == 0 {
			t.Errorf("no request to %s", path)
		}
		for _, got := range seen[path] {
			if !strings.Contains(got, want) {
				t.Errorf("%s request %q lacks %q", path, got, want)
			}
		}
	}
	checkAll("/events", "access_token=s3cr%2Bt%2F%3D|")
	checkAll("/status", "|Bearer s3cr+t/=")
	checkAll("/fact", "|Bearer s3cr+t/=")
	if len(seen["/events"]) <= streams {
		t.Errorf("no new stream after the reload")
	}
	p.checkNoErrors(false)
}

// TestDashboardKeepsTableBounded loads more facts than the page keeps and
// checks that it shows the newest ones, in order, and stays bounded as more
// arrive live.
func TestDashboardKeepsTableBounded(t *testing.T) {
	const keep = 2000 // MAX_ROWS in web/app.js
	browser := startBrowser(t)
	srv := startServer(t, browserConfig(t))
	postBatch := func(n int) {
		t.Helper()
		batch := make([]map[string]string, n)
		for i := range batch {
			batch[i] = map[string]string{"info": "bulk fact " + itoa(i)}
		}
		if code, body := postJSON(t, srv.URL+"/facts", batch, nil); code != http.StatusCreated {
			t.Fatalf("POST /facts = %d %s", code, body)
		}
	}
	postBatch(1000)
	postBatch(1000)
	postBatch(500)
	p := openPage(t, browser, srv.URL, 1280)
	check := func(head int) {
		t.Helper()
		p.waitFor(2*time.Second, "row "+itoa(head)+" on top", `document.querySelector('#facts > tr')?.dataset.seq === '`+itoa(head)+`'`)
		rows := p.rows()
		checkUnique(t, rows)
		if len(rows) != keep || rows[0] != itoa(head) || rows[len(rows)-1] != itoa(head-keep+1) {
			t.Fatalf("table has %d rows from %s to %s, want %d rows from %d to %d",
				len(rows), rows[0], rows[len(rows)-1], keep, head, head-keep+1)
		}
	}
	check(2500)
	postBatch(10)
	check(2510)

	// Older facts, a page at a time, with the filter set: each fact once,
	// the filter applied to the loaded rows, live facts still on top.
	const filter = "bulk fact 7"
	p.do(chromedp.Focus(chromedp.ID("filter")), chromedp.KeyEvent(filter))
	p.waitFor(2*time.Second, "the filter", `document.getElementById('filter-status').textContent.startsWith('Showing ')`)
	p.waitFor(5*time.Second, "the load-older button", `!document.getElementById('load-older').disabled`)
	p.do(chromedp.Click(chromedp.ID("load-older")))
	p.waitFor(5*time.Second, "the first older page", `document.querySelectorAll('#facts > tr').length === 2500`)
	live := postFact(t, srv.URL, "live after paging back")
	p.waitFor(2*time.Second, "the live fact on top", `document.querySelector('#facts > tr').dataset.seq === '`+itoa(int(live.Seq))+`'`)
	if got := eval[bool](p, `document.getElementById('load-older').disabled`); got {
		t.Fatalf("load-older is disabled after a full page: facts 1 to 10 are still to come")
	}
	// The keyboard works too.
	p.do(chromedp.Focus(chromedp.ID("load-older")), chromedp.KeyEvent(kb.Enter))
	p.waitFor(5*time.Second, "the last older page and the button disabled",
		`document.querySelectorAll('#facts > tr').length === 2511 && document.getElementById('load-older').disabled`)
	rows := p.rows()
	for i, seq := range rows {
		if want := itoa(2511 - i); seq != want {
			t.Fatalf("row %d is data-seq %s, want %s: every fact once, newest first", i, seq, want)
		}
	}
	if got := eval[string](p, `document.getElementById('load-older').textContent`); got != "No older facts" {
		t.Errorf("load-older says %q at the first fact, want %q", got, "No older facts")
	}
	// The loaded rows follow the filter: shown exactly when they match.
	wrong := eval[[]string](p, `[...document.querySelectorAll('#facts > tr')].filter(r => Number(r.dataset.seq) <= 510
		&& r.hidden !== !r.querySelector('td.info').textContent.includes(`+js(filter)+`)).map(r => r.dataset.seq)`)
	if len(wrong) > 0 {
		t.Errorf("loaded rows %v ignore the filter %q", wrong, filter)
	}
	shown := eval[int](p, `[...document.querySelectorAll('#facts > tr')].filter(r => Number(r.dataset.seq) <= 510 && !r.hidden).length`)
	if shown != 11 { // bulk fact 7 and 70 to 79, seqs 8 and 71 to 80
		t.Errorf("%d loaded rows match the filter, want 11", shown)
	}
	p.checkNoErrors(false)
}

// TestDashboardStartsOverWhenTheStoreIsReplaced restarts the server on an
// empty memory store while a page shows more facts than its window, so the
// new facts' seqs fall below every row it keeps. The page must notice the
// store went back (/status reports a head behind what it received) and
// show what the new store has, instead of ignoring it as already seen.
func TestDashboardStartsOverWhenTheStoreIsReplaced(t *testing.T) {
	browser := startBrowser(t)
	cfg := browserConfig(t)
	cfg.Addr = freePort(t)
	srv := startServer(t, cfg)
	for _, n := range []int{1000, 1000, 5} {
		batch := make([]map[string]string, n)
		for i := range batch {
			batch[i] = map[string]string{"info": "old fact " + itoa(i)}
		}
		if code, body := postJSON(t, srv.URL+"/facts", batch, nil); code != http.StatusCreated {
			t.Fatalf("POST /facts = %d %s", code, body)
		}
	}
	p := openPage(t, browser, srv.URL, 1280)
	p.waitFor(5*time.Second, "row 2005 on top", `document.querySelector('#facts > tr')?.dataset.seq === '2005'`)

	srv.Stop(t)
	srv = startServer(t, cfg) // memory: an empty store
	a := postFact(t, srv.URL, "new store 1")
	b := postFact(t, srv.URL, "new store 2")
	p.waitFor(15*time.Second, "only the new store's facts", `document.querySelectorAll('#facts > tr').length === 2`)
	p.checkRows(a.Seq, b.Seq)
	if got := eval[string](p, `document.querySelector(`+js(rowSelector(b.Seq))+`).textContent`); !strings.Contains(got, "new store 2") {
		t.Fatalf("row %d reads %q, want the new store's fact", b.Seq, got)
	}
	p.checkNoErrors(true) // refused connections while the server is down
}

// TestDashboardAsksForAToken opens the page on a server whose stream needs
// a token. The page must say so instead of "reconnecting", take the token
// in a field (a wrong one is refused with a message), go live with it, and
// ask for a publish token when posting needs another one.
func TestDashboardAsksForAToken(t *testing.T) {
	browser := startBrowser(t)
	cfg := browserConfig(t)
	cfg.SubscribeTokens = []string{"read-token"}
	cfg.PublishTokens = []string{"post-token"}
	srv := startServer(t, cfg)
	publishAs(t, srv.URL, "post-token", "behind a token")

	p := loadPage(t, browser, srv.URL, 1280, 900)
	p.waitFor(10*time.Second, "the token panel, with the focus in its field",
		isShown("token-panel")+` && document.activeElement.id === 'token-input'`)
	says := func(id string) string {
		return eval[string](p, `document.getElementById(`+js(id)+`).textContent.trim()`)
	}
	if got := says("connection"); got != "Access token needed" {
		t.Errorf("indicator says %q, want %q", got, "Access token needed")
	}
	if got := eval[string](p, `document.getElementById('connection').dataset.state`); got == "live" {
		t.Errorf("indicator state is live without a token")
	}
	if got := says("token-message"); !strings.Contains(got, "needs an access token") {
		t.Errorf("token panel says %q, want that the server needs an access token", got)
	}
	if got := says("empty"); strings.Contains(got, "No facts yet") {
		t.Errorf("the table says %q: the server has facts, the page may not read them", got)
	}

	// A wrong token, typed and sent with Enter.
	p.do(chromedp.KeyEvent("wrong-token"), chromedp.KeyEvent(kb.Enter))
	p.waitFor(5*time.Second, "the refusal", `document.getElementById('token-message').textContent.includes('refused')`)
	if got := says("connection"); got != "Access token refused" {
		t.Errorf("indicator says %q after a wrong token, want %q", got, "Access token refused")
	}
	screenshot(t, p, "dashboard-token.png")

	// The right one.
	p.do(chromedp.Focus(chromedp.ID("token-input")),
		chromedp.KeyEvent("a", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
		chromedp.KeyEvent("read-token"), chromedp.KeyEvent(kb.Enter))
	p.waitFor(5*time.Second, "live with the stored fact",
		`document.querySelector('#connection').dataset.state === 'live' && document.querySelector('#facts td.info')?.textContent === 'behind a token'`)
	p.waitFor(2*time.Second, "the panel closed", `document.getElementById('token-panel').hidden`)
	if got := eval[string](p, `sessionStorage.getItem('factstream.token')`); got != "read-token" {
		t.Errorf("session storage token = %q, want %q", got, "read-token")
	}
	if got := eval[string](p, `location.href`); strings.Contains(got, "token") {
		t.Errorf("the address bar shows %q: the token does not belong there", got)
	}
	p.waitFor(5*time.Second, "the counters", counters("1", "1", false))

	// Posting needs the publish token: the server's 401 shows in the form,
	// and the panel asks for a publish token.
	const text = "posted with the publish token"
	p.do(chromedp.SetValue(chromedp.ID("info"), text), chromedp.Click(chromedp.ID("post-button")))
	p.waitFor(5*time.Second, "the 401 in the form and the publish token field focused",
		`!document.getElementById('form-error').hidden && `+isShown("token-panel")+
			` && document.activeElement.id === 'publish-token-input'`)
	if got := says("form-error"); !strings.Contains(got, "token") {
		t.Errorf("form error says %q, want the server's word about the token", got)
	}
	p.do(chromedp.KeyEvent("post-token"), chromedp.KeyEvent(kb.Enter))
	p.waitFor(2*time.Second, "the panel closed", `document.getElementById('token-panel').hidden`)
	if got := eval[string](p, `document.getElementById('info').value`); got != text {
		t.Errorf("the fact's text is %q after the refusal, want it kept", got)
	}
	p.do(chromedp.Click(chromedp.ID("post-button")))
	p.waitFor(5*time.Second, "the posted fact",
		`document.querySelector('#facts td.info')?.textContent === `+js(text)+` && document.getElementById('form-error').hidden`)
	if got := eval[string](p, `sessionStorage.getItem('factstream.publishToken')`); got != "post-token" {
		t.Errorf("session storage publish token = %q, want %q", got, "post-token")
	}

	// A reload keeps the tokens for the tab: live at once, no panel.
	p.do(chromedp.Reload())
	p.waitFor(5*time.Second, "live after the reload", `document.querySelector('#connection').dataset.state === 'live'`)
	if eval[bool](p, isShown("token-panel")) {
		t.Errorf("the token panel is open after a reload with a stored token")
	}
	p.checkNoErrors(true) // the refused requests are logged by the browser
}

// useAdminToken opens the token panel with the keyboard, types token into
// its admin field and sends it with Enter.
func useAdminToken(t *testing.T, p *page, token string) {
	t.Helper()
	p.do(chromedp.Focus(chromedp.ID("token-button")), chromedp.KeyEvent(kb.Enter))
	p.waitFor(2*time.Second, "the token panel", isShown("token-panel"))
	p.do(chromedp.Focus(chromedp.ID("admin-token-input")),
		chromedp.KeyEvent("a", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
		chromedp.KeyEvent(token), chromedp.KeyEvent(kb.Enter))
	p.waitFor(2*time.Second, "the panel closed", `document.getElementById('token-panel').hidden`)
}

// deleteButton is the CSS selector of the delete button of seq's row, in
// the given step: delete, keep or confirm.
func deleteButton(seq uint64, action string) string {
	return rowSelector(seq) + ` button[data-action="` + action + `"]`
}

// TestDashboardDeletesWithAdminToken deletes a fact from the page: with an
// admin token typed into the token panel each row has a Delete button that
// asks first; a wrong token gets the server's word next to the row, which
// stays; the right one removes the row.
func TestDashboardDeletesWithAdminToken(t *testing.T) {
	browser := startBrowser(t)
	cfg := browserConfig(t)
	cfg.AdminTokens = []string{adminToken}
	srv := startServer(t, cfg)
	a := postFact(t, srv.URL, "kept-first")
	b := postFact(t, srv.URL, "to be deleted")
	c := postFact(t, srv.URL, "kept-last")
	p := openPage(t, browser, srv.URL, 1280)
	p.waitFor(2*time.Second, "three rows", `document.querySelectorAll('#facts > tr').length === 3`)
	// Another reader's page, without an admin token, sees deletions live.
	other := openPage(t, browser, srv.URL, 1280)
	other.waitFor(2*time.Second, "three rows", `document.querySelectorAll('#facts > tr').length === 3`)
	if n := eval[int](p, `document.querySelectorAll('#facts button').length`); n != 0 {
		t.Fatalf("%d buttons in the table without an admin token, want none", n)
	}

	// A wrong token: the server's 401 detail shows in the row, which stays.
	useAdminToken(t, p, "wrong-admin-token-0123")
	p.waitFor(2*time.Second, "a delete button on every row", `document.querySelectorAll('#facts button[data-action="delete"]').length === 3`)
	if got := eval[string](p, `document.querySelector(`+js(deleteButton(b.Seq, "delete"))+`).getAttribute('aria-label')`); got != "Delete fact #"+itoa(int(b.Seq))+": to be deleted" {
		t.Errorf("delete button aria-label = %q, want it to name the fact", got)
	}
	// Keyboard only: Enter asks, Escape takes the question back, Enter
	// asks again with the focus on Keep, Tab and Enter confirm.
	focused := func(sel string) string { return `document.activeElement === document.querySelector(` + js(sel) + `)` }
	p.do(chromedp.Focus(chromedp.CSS(deleteButton(b.Seq, "delete"))), chromedp.KeyEvent(kb.Enter))
	p.waitFor(2*time.Second, "the question, with the focus on Keep", focused(deleteButton(b.Seq, "keep")))
	p.do(chromedp.KeyEvent(kb.Escape))
	p.waitFor(2*time.Second, "the question gone, the focus back on Delete", focused(deleteButton(b.Seq, "delete")))
	p.do(chromedp.KeyEvent(kb.Enter))
	p.waitFor(2*time.Second, "the question again", focused(deleteButton(b.Seq, "keep")))
	screenshot(t, p, "dashboard-delete-confirm.png")
	p.do(chromedp.KeyEvent(kb.Tab))
	p.waitFor(2*time.Second, "the focus on the confirming button", focused(deleteButton(b.Seq, "confirm")))
	p.do(chromedp.KeyEvent(kb.Enter))
	errSel := rowSelector(b.Seq) + " .row-error"
	p.waitFor(5*time.Second, "the refusal next to the row", `document.querySelector(`+js(errSel)+`)`)
	msg := eval[map[string]string](p, `(e => ({text: e.textContent, role: e.getAttribute('role')}))(document.querySelector(`+js(errSel)+`))`)
	if !strings.Contains(msg["text"], "Not deleted: the token is not valid here") || msg["role"] != "alert" {
		t.Errorf("row message = %q (role %q), want the server's detail as an alert", msg["text"], msg["role"])
	}
	if !eval[bool](p, focused(deleteButton(b.Seq, "delete"))+` && document.querySelector(`+js(deleteButton(b.Seq, "delete"))+`).getAttribute('aria-describedby') === document.querySelector(`+js(errSel)+`).id`) {
		t.Errorf("after the refusal the focus is not on the row's Delete button, described by the message")
	}
	p.checkRows(a.Seq, b.Seq, c.Seq)
	if code := getJSON(t, srv.URL+"/facts/"+b.ID, &store.Fact{}); code != http.StatusOK {
		t.Fatalf("GET the fact after a refused delete = %d, want 200", code)
	}
	screenshot(t, p, "dashboard-delete-refused.png")

	// The right token: the message goes, and a delete removes the row.
	useAdminToken(t, p, adminToken)
	p.waitFor(2*time.Second, "the old message gone", `!document.querySelector(`+js(errSel)+`)`)
	p.waitFor(5*time.Second, "the fact counter", `document.getElementById('fact-count').textContent === '3'`)
	p.do(chromedp.Click(chromedp.CSS(deleteButton(b.Seq, "delete"))))
	p.do(chromedp.Click(chromedp.CSS(deleteButton(b.Seq, "confirm"))))
	p.waitFor(5*time.Second, "the row gone", `!document.querySelector(`+js(rowSelector(b.Seq))+`)`)
	p.checkRows(a.Seq, c.Seq)
	p.waitFor(2*time.Second, "the fact counter down by one", `document.getElementById('fact-count').textContent === '2'`)
	other.waitFor(5*time.Second, "the row gone from the other page", `!document.querySelector(`+js(rowSelector(b.Seq))+`)`)
	other.checkRows(a.Seq, c.Seq)
	other.waitFor(5*time.Second, "the other page's fact counter down by one", `document.getElementById('fact-count').textContent === '2'`)
	// A delete from elsewhere (the API) removes the row from both pages.
	if code, typ := deleteFact(t, srv.URL, a.ID, "Bearer "+adminToken); code != http.StatusNoContent {
		t.Fatalf("DELETE through the API = %d %s", code, typ)
	}
	for _, q := range []*page{p, other} {
		q.waitFor(5*time.Second, "the row deleted through the API gone", `!document.querySelector(`+js(rowSelector(a.Seq))+`)`)
		q.checkRows(c.Seq)
		q.waitFor(5*time.Second, "the fact counter at one", `document.getElementById('fact-count').textContent === '1'`)
	}
	other.checkNoErrors(false)
	if code := getJSON(t, srv.URL+"/facts/"+b.ID, &struct{}{}); code != http.StatusNotFound {
		t.Fatalf("GET the deleted fact = %d, want 404", code)
	}
	if got := eval[string](p, `sessionStorage.getItem('factstream.adminToken')`); got != adminToken {
		t.Errorf("session storage admin token = %q, want %q", got, adminToken)
	}
	if got := eval[string](p, `location.href`); strings.Contains(got, adminToken) {
		t.Errorf("the address bar shows %q: the admin token does not belong there", got)
	}
	// Forgetting the tokens takes the buttons away.
	p.do(chromedp.Click(chromedp.ID("token-button")), chromedp.Click(chromedp.ID("token-forget")))
	p.waitFor(2*time.Second, "no buttons left", `document.querySelectorAll('#facts button').length === 0`)
	if got := eval[string](p, `sessionStorage.getItem('factstream.adminToken') || ''`); got != "" {
		t.Errorf("session storage still holds the admin token %q after Forget", got)
	}
	p.checkNoErrors(true) // the browser logs the refused DELETE itself

	// A server without admin tokens says so, next to the row.
	t.Run("AdminDisabled", func(t *testing.T) {
		off := startServer(t, browserConfig(t))
		f := postFact(t, off.URL, "cannot be deleted here")
		p := openPage(t, browser, off.URL, 375)
		useAdminToken(t, p, adminToken)
		p.do(chromedp.Click(chromedp.CSS(deleteButton(f.Seq, "delete"))))
		p.do(chromedp.Click(chromedp.CSS(deleteButton(f.Seq, "confirm"))))
		sel := rowSelector(f.Seq) + " .row-error"
		p.waitFor(5*time.Second, "the refusal next to the row", `document.querySelector(`+js(sel)+`)`)
		if got := eval[string](p, `document.querySelector(`+js(sel)+`).textContent`); !strings.Contains(got, "administration is off") {
			t.Errorf("row message = %q, want the server's admin-disabled detail", got)
		}
		p.checkRows(f.Seq)
		screenshot(t, p, "dashboard-delete-phone.png")
		if sw := eval[int](p, `document.documentElement.scrollWidth`); sw > 375 {
			t.Errorf("with a row message the page is %d px wide in a 375 px viewport", sw)
		}
		p.checkNoErrors(true)
	})
}

// TestDashboardSaysOlderFactsAreGone cuts a page off (the server stops)
// while more facts are committed than the server keeps, so that when the
// page resumes, the facts right after the last one it saw are gone. The
// page must say so in a note by the table, keep the rows it showed, and
// show the facts kept.
func TestDashboardSaysOlderFactsAreGone(t *testing.T) {
	const kept = 5
	browser := startBrowser(t)
	cfg := browserConfig(t)
	cfg.Addr = freePort(t)
	path := filepath.Join(t.TempDir(), "facts.db")
	cfg.Store = "bolt:" + path
	cfg.RetentionFacts = kept
	srv := startServer(t, cfg)
	var shown []uint64
	for i := range 3 {
		shown = append(shown, postFact(t, srv.URL, "shown-"+itoa(i)).Seq)
	}
	p := openPage(t, browser, srv.URL, 1280)
	p.waitFor(2*time.Second, "the first facts", `document.querySelectorAll('#facts > tr').length === 3`)
	if eval[bool](p, `!!document.getElementById('truncated-note')`) {
		t.Fatalf("a fresh page says facts are gone")
	}

	srv.Stop(t)
	p.waitFor(5*time.Second, "the indicator to say reconnecting",
		`document.querySelector('#connection').dataset.state === 'reconnecting'`)
	// More facts than the server keeps, committed while the page is away,
	// into the file with the same retention.
	st, err := bolt.Open(path, store.Options{RetentionFacts: kept})
	if err != nil {
		t.Fatalf("open the stopped server's store: %v", err)
	}
	drafts := make([]store.Draft, 8)
	for i := range drafts {
		drafts[i] = store.Draft{Info: "while away " + itoa(i)}
	}
	res, err := st.Append(context.Background(), store.AppendRequest{Drafts: drafts})
	if err != nil {
		t.Fatalf("append while down: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	last := res.Facts[len(res.Facts)-1].Seq
	first := last - kept + 1 // the oldest fact kept
	missedFrom := shown[len(shown)-1] + 1

	srv = startServer(t, cfg)
	if st := keptStatus(t, srv.URL); st.FirstSeq != first {
		t.Fatalf("/status first_seq = %d, want %d: retention did not apply", st.FirstSeq, first)
	}
	p.waitFor(10*time.Second, "the note that older facts are gone", isShown("truncated-note"))
	note := eval[map[string]string](p, `(n => ({text: n.textContent, region: n.closest('[role=status]')?.id || ''}))(document.getElementById('truncated-note'))`)
	for _, want := range []string{
		"Older facts are gone",
		"removed the facts up to #" + itoa(int(first-1)),
		"facts #" + itoa(int(missedFrom)) + " to #" + itoa(int(first-1)) + " were never shown",
	} {
		if !strings.Contains(note["text"], want) {
			t.Errorf("note says %q, want it to say %q", note["text"], want)
		}
	}
	if note["region"] != "table-notes" {
		t.Errorf("the note is in live region %q, want it in #table-notes (role=status)", note["region"])
	}
	// The rows shown before stay; the kept facts follow, each once.
	want := append([]uint64{}, shown...)
	for seq := first; seq <= last; seq++ {
		want = append(want, seq)
	}
	p.waitFor(5*time.Second, "the kept facts", `document.querySelector(`+js(rowSelector(last))+`)`)
	p.checkRows(want...)
	p.waitFor(5*time.Second, "current counters", counters(itoa(kept), "1", false))
	screenshot(t, p, "dashboard-truncated.png")

	// Facts go on arriving live; the note can be dismissed with the keyboard.
	next := postFact(t, srv.URL, "after the gap")
	p.waitFor(2*time.Second, "the next fact", `document.querySelector(`+js(rowSelector(next.Seq))+`)`)
	p.do(chromedp.Focus(chromedp.CSS("#truncated-note button")), chromedp.KeyEvent(kb.Enter))
	p.waitFor(2*time.Second, "the note gone", `!document.getElementById('truncated-note')`)
	p.checkNoErrors(true) // refused connections while the server is down
}
