// factstream dashboard: a live table of facts fed by Server-Sent Events.
//
// Rules this file keeps:
// - Fact text only ever reaches the DOM through textContent or attribute
//   setters, never through innerHTML; links are made only for http(s) URLs.
// - Each fact is shown once. The browser's EventSource resends the last
//   event id when it reconnects, so the server sends only what was missed;
//   when the page has to open a new EventSource itself it passes the same
//   position as ?lastEventId=. Facts are also keyed by seq as a safety net.
// - The DOM stays bounded: only the newest MAX_ROWS facts are kept.
'use strict';

(() => {
  const MAX_ROWS = 2000;
  const STATUS_EVERY_MS = 10000; // regular /status refresh
  const STATUS_HIDDEN_MS = 60000; // while the tab is in the background
  const STATUS_MIN_GAP_MS = 2000; // at most this often when facts stream in
  const STALL_MS = 8000; // /status ahead of the stream this long: reopen it
  const TICK_MS = 15000; // relative times and the chart's minute window
  const CHART_MINUTES = 60;
  const TOKEN_KEY = 'factstream.token';

  const $ = (id) => document.getElementById(id);
  const ui = {
    conn: $('connection'),
    connText: $('connection-text'),
    notice: $('notice'),
    factCount: $('fact-count'),
    clientCount: $('client-count'),
    clientNote: $('client-note'),
    chart: $('chart'),
    chartPeak: $('chart-peak'),
    form: $('fact-form'),
    info: $('info'),
    source: $('source'),
    button: $('post-button'),
    formError: $('form-error'),
    formStatus: $('form-status'),
    filter: $('filter'),
    filterStatus: $('filter-status'),
    rows: $('facts'),
    empty: $('empty'),
  };
  const fieldErrors = { info: $('info-error'), source: $('source-error') };
  const fieldInputs = { info: ui.info, source: ui.source };

  const token = takeToken();

  const state = {
    facts: new Map(), // seq -> {fact, row, time, text}
    floor: 0, // seqs at or below this were dropped from the window: seen
    streamSeq: 0, // highest seq received through the stream: resume point
    perMinute: new Map(), // minute number -> facts created in it
    lastEventAt: null,
    status: null, // last /status answer
    newSinceStatus: 0,
    behind: null, // {seq, at}: /status saw a head the stream had not
    filter: '',
  };

  // ---- Access token -------------------------------------------------------

  // takeToken reads #token= (or #access_token=) once, keeps it for this tab
  // only and removes it from the address bar, so it is not bookmarked,
  // shared by copy-and-paste or left in the history.
  function takeToken() {
    let stored = '';
    try {
      stored = sessionStorage.getItem(TOKEN_KEY) || '';
    } catch (_) { /* storage disabled: keep the token in memory only */ }
    let found = '';
    const rest = [];
    // Split by hand: URLSearchParams would turn a '+' of a base64 token
    // into a space.
    for (const part of location.hash.replace(/^#/, '').split('&')) {
      const eq = part.indexOf('=');
      const key = eq < 0 ? part : part.slice(0, eq);
      if (key === 'token' || key === 'access_token') {
        found = decode(part.slice(eq + 1));
      } else if (part !== '') {
        rest.push(part);
      }
    }
    if (!found) return stored;
    try {
      sessionStorage.setItem(TOKEN_KEY, found);
    } catch (_) { /* see above */ }
    history.replaceState(history.state, '',
      location.pathname + location.search + (rest.length ? '#' + rest.join('&') : ''));
    return found;
  }

  function decode(s) {
    try {
      return decodeURIComponent(s);
    } catch (_) {
      return s; // not percent-encoded after all
    }
  }

  function authHeaders(extra) {
    const h = Object.assign({}, extra);
    if (token) h.Authorization = 'Bearer ' + token;
    return h;
  }

  function showNotice(text) {
    ui.notice.textContent = text;
    ui.notice.hidden = !text;
  }

  function needToken() {
    showNotice(token
      ? 'The access token was refused. Open the dashboard again with #token=<your token> at the end of the address.'
      : 'This service needs an access token. Open the dashboard with #token=<your token> at the end of the address.');
  }

  // ---- Time formatting ----------------------------------------------------

  // parseTime keeps milliseconds only: created_at carries microseconds,
  // which not every engine's Date parser accepts.
  function parseTime(s) {
    const ms = Date.parse(String(s).replace(/(\.\d{3})\d+/, '$1'));
    return Number.isNaN(ms) ? Date.now() : ms;
  }

  function ago(ms, now) {
    const s = Math.round((now - ms) / 1000);
    if (s < 10) return 'just now'; // also covers a clock slightly ahead of ours
    if (s < 60) return s + ' s ago';
    const m = Math.floor(s / 60);
    if (m < 60) return m + ' min ago';
    const h = Math.floor(m / 60);
    if (h < 24) return h + ' h ago';
    const d = Math.floor(h / 24);
    if (d < 30) return d + (d === 1 ? ' day ago' : ' days ago');
    return new Date(ms).toLocaleDateString();
  }

  const exactFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  const clockFormat = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

  // ---- Connection indicator ----------------------------------------------

  function setConnection(next) {
    let text = 'Connecting…';
    if (next === 'live') text = 'Live';
    if (next === 'reconnecting') {
      text = 'Reconnecting… ' + (state.lastEventAt
        ? 'last event ' + clockFormat.format(state.lastEventAt)
        : 'no event yet');
    }
    ui.conn.dataset.state = next;
    if (ui.connText.textContent !== text) ui.connText.textContent = text;
  }

  // ---- The stream ---------------------------------------------------------

  let source = null;
  let retryTimer = 0;
  let backoff = 1000;

  // connect opens a new EventSource. The browser reconnects by itself after
  // a dropped connection; this runs again only when it gives up (an HTTP
  // error such as 503 closes an EventSource for good) or the stream stalls.
  function connect() {
    clearTimeout(retryTimer);
    if (source) source.close();
    const q = new URLSearchParams();
    if (token) q.set('access_token', token);
    if (state.streamSeq > 0) q.set('lastEventId', String(state.streamSeq));
    const qs = q.toString();
    const es = new EventSource('/events' + (qs ? '?' + qs : ''));
    source = es;
    es.onopen = () => {
      backoff = 1000;
      setConnection('live');
      scheduleStatus(0); // the client count now includes this page
    };
    es.onmessage = onMessage;
    es.onerror = () => {
      if (es !== source) return;
      setConnection('reconnecting');
      if (es.readyState === EventSource.CLOSED) {
        retryTimer = setTimeout(connect, backoff);
        backoff = Math.min(backoff * 2, 30000);
        statusSoon(); // a 401 or 503 shows up there with a readable reason
      }
    };
  }

  function onMessage(ev) {
    let data;
    try {
      data = JSON.parse(ev.data);
    } catch (_) {
      console.warn('factstream: ignoring an event that is not JSON');
      return;
    }
    const list = Array.isArray(data) ? data : [data];
    state.lastEventAt = new Date();
    setConnection('live');
    // Highlight arrivals, but not the first load of the table: a page
    // that flashes every row on open only distracts.
    addFacts(list, state.facts.size > 0 || !Array.isArray(data));
    for (const f of list) {
      if (isFact(f) && f.seq > state.streamSeq) state.streamSeq = f.seq;
    }
    if (list.length > 0) statusSoon();
  }

  // ---- Facts and rows -----------------------------------------------------

  function isFact(f) {
    return f !== null && typeof f === 'object' && Number.isSafeInteger(f.seq) && f.seq > 0 &&
      typeof f.info === 'string';
  }

  function addFacts(list, highlight) {
    list = list.filter(isFact);
    // The same seq with another id means the server's store was replaced
    // (seqs started over): what the page shows no longer exists.
    if (list.some((f) => { const k = state.facts.get(f.seq); return k && k.fact.id !== f.id; })) {
      reset();
    }
    const fresh = [];
    const inBatch = new Set();
    for (const f of list) {
      if (f.seq <= state.floor || state.facts.has(f.seq) || inBatch.has(f.seq)) continue;
      inBatch.add(f.seq);
      fresh.push(f);
    }
    if (fresh.length === 0) return;
    fresh.sort((a, b) => a.seq - b.seq);
    const headSeq = state.status ? state.status.last_seq : Infinity;
    for (const f of fresh) {
      countMinute(parseTime(f.created_at));
      if (f.seq > headSeq) state.newSinceStatus++;
    }
    // A snapshot can hold far more facts than the window: build rows only
    // for the newest ones and mark the rest as seen.
    const render = fresh.slice(-MAX_ROWS);
    if (render.length < fresh.length) {
      state.floor = Math.max(state.floor, fresh[fresh.length - render.length - 1].seq);
    }
    insertRows(render, highlight);
    trim();
    updateCounts();
    updateListStatus();
    drawChartSoon();
  }

  // insertRows adds rows in seq order, newest on top. Facts almost always
  // arrive above everything shown, so that case is one prepend.
  function insertRows(facts, highlight) {
    const now = Date.now();
    const make = (f) => {
      const row = makeRow(f, now);
      if (highlight) row.classList.add('new');
      return row;
    };
    const top = ui.rows.firstElementChild;
    const topSeq = top ? Number(top.dataset.seq) : 0;
    if (facts[0].seq > topSeq) {
      const frag = document.createDocumentFragment();
      for (let i = facts.length - 1; i >= 0; i--) frag.appendChild(make(facts[i]));
      ui.rows.prepend(frag);
      return;
    }
    for (const f of facts) {
      const row = make(f);
      let next = ui.rows.firstElementChild;
      while (next && Number(next.dataset.seq) > f.seq) next = next.nextElementSibling;
      ui.rows.insertBefore(row, next);
    }
  }

  function makeRow(f, now) {
    const row = document.createElement('tr');
    row.dataset.seq = String(f.seq);

    const seq = cell('seq');
    seq.textContent = String(f.seq);

    const info = cell('info');
    info.textContent = f.info;

    const src = cell('source');
    const url = httpURL(f.source);
    if (url) {
      const a = document.createElement('a');
      a.href = url.href;
      a.rel = 'noopener noreferrer';
      a.target = '_blank';
      a.title = url.href;
      a.textContent = url.host + (url.pathname.length > 1 ? url.pathname : '');
      src.appendChild(a);
    } else if (typeof f.source === 'string' && f.source !== '') {
      src.textContent = f.source; // not a web link: shown, never followed
    } else {
      src.classList.add('none');
      src.textContent = '—';
    }

    const when = cell('when');
    const ms = parseTime(f.created_at);
    const time = document.createElement('time');
    time.dateTime = new Date(ms).toISOString();
    time.title = exactFormat.format(ms);
    time.textContent = ago(ms, now);
    when.appendChild(time);

    row.append(seq, info, src, when);
    const text = (f.info + '\n' + (typeof f.source === 'string' ? f.source : '')).toLowerCase();
    state.facts.set(f.seq, { fact: f, row, time, ms, text });
    row.hidden = !matches(text);
    return row;
  }

  function cell(cls) {
    const td = document.createElement('td');
    td.className = cls;
    return td;
  }

  function httpURL(s) {
    if (typeof s !== 'string' || s === '') return null;
    try {
      const u = new URL(s);
      return u.protocol === 'http:' || u.protocol === 'https:' ? u : null;
    } catch (_) {
      return null;
    }
  }

  function trim() {
    while (state.facts.size > MAX_ROWS) {
      const last = ui.rows.lastElementChild;
      const seq = Number(last.dataset.seq);
      last.remove();
      state.facts.delete(seq);
      state.floor = Math.max(state.floor, seq);
    }
  }

  function reset() {
    ui.rows.textContent = '';
    state.facts.clear();
    state.perMinute.clear();
    state.floor = 0;
    state.streamSeq = 0;
    state.newSinceStatus = 0;
  }

  function refreshTimes() {
    const now = Date.now();
    for (const e of state.facts.values()) {
      const t = ago(e.ms, now);
      if (e.time.textContent !== t) e.time.textContent = t;
    }
  }

  // ---- Filter -------------------------------------------------------------

  function matches(text) {
    return state.filter === '' || text.includes(state.filter);
  }

  function applyFilter() {
    state.filter = ui.filter.value.trim().toLowerCase();
    for (const e of state.facts.values()) e.row.hidden = !matches(e.text);
    updateListStatus();
  }

  function updateListStatus() {
    const total = state.facts.size;
    let shown = total;
    if (state.filter !== '') {
      shown = 0;
      for (const e of state.facts.values()) if (!e.row.hidden) shown++;
      ui.filterStatus.textContent = 'Showing ' + shown + ' of ' + total + ' facts';
    } else {
      ui.filterStatus.textContent = total >= MAX_ROWS ? 'Showing the newest ' + total + ' facts' : '';
    }
    ui.empty.hidden = shown > 0;
    ui.empty.textContent = total === 0 ? 'No facts yet. Post the first one.' : 'No fact matches the filter.';
  }

  // ---- Counters from /status ---------------------------------------------

  let statusTimer = 0;
  let statusDue = 0;
  let statusBusy = false;
  let statusLast = 0;

  function scheduleStatus(delay) {
    const due = Date.now() + delay;
    if (statusTimer && statusDue <= due) return; // an earlier refresh is already planned
    clearTimeout(statusTimer);
    statusDue = due;
    statusTimer = setTimeout(refreshStatus, delay);
  }

  // statusSoon asks for fresh counters after facts arrive, but never more
  // often than every STATUS_MIN_GAP_MS, however fast facts stream in.
  function statusSoon() {
    scheduleStatus(Math.max(300, statusLast + STATUS_MIN_GAP_MS - Date.now()));
  }

  async function refreshStatus() {
    statusTimer = 0;
    if (statusBusy) return;
    statusBusy = true;
    // The head /status reports cannot be behind a fact the page received
    // before asking, unless the store was replaced.
    const seen = state.streamSeq;
    try {
      const r = await fetch('/status', { headers: authHeaders(), cache: 'no-store' });
      if (r.ok) {
        applyStatus(await r.json(), seen);
      } else if (r.status === 401) {
        needToken();
      }
    } catch (_) {
      // Unreachable server: the connection indicator already says so.
    } finally {
      statusBusy = false;
      statusLast = Date.now();
      scheduleStatus(document.hidden ? STATUS_HIDDEN_MS : STATUS_EVERY_MS);
    }
  }

  function applyStatus(s, seen) {
    if (!s || typeof s !== 'object') return;
    if (Number.isSafeInteger(s.last_seq) && s.last_seq < seen) {
      // The store is behind what this page received: it was replaced (a
      // server restarted on an empty store, a Redis back without its
      // data). The rows shown no longer exist, and the seqs of new facts
      // may fall below them: start over from a fresh snapshot.
      reset();
      connect();
    }
    state.status = s;
    state.newSinceStatus = 0;
    for (const seq of state.facts.keys()) if (seq > s.last_seq) state.newSinceStatus++;
    if (ui.notice.textContent.includes('token')) showNotice('');
    updateCounts();
    checkStall(s.last_seq);
  }

  function updateCounts() {
    const s = state.status;
    if (!s) return;
    const facts = (Number(s.facts) || 0) + state.newSinceStatus;
    const cluster = s.cluster_clients !== undefined && s.cluster_clients !== null;
    const clients = Number(cluster ? s.cluster_clients : s.clients) || 0;
    setText(ui.factCount, facts.toLocaleString());
    setText(ui.clientCount, clients.toLocaleString());
    setText(ui.clientNote, cluster ? 'on all servers' : 'on this server');
  }

  // checkStall is the page's heartbeat check. EventSource hides the
  // server's keepalive comments, so a connection that died without the
  // browser noticing (sleep, a network switch, a proxy) looks the same as
  // a quiet one. /status tells the store's head: if it stays ahead of what
  // the stream delivered, the stream is reopened from where it stopped.
  function checkStall(head) {
    if (!Number.isSafeInteger(head) || head <= state.streamSeq || ui.conn.dataset.state !== 'live') {
      state.behind = null;
      return;
    }
    if (!state.behind || state.streamSeq >= state.behind.seq) {
      state.behind = { seq: head, at: Date.now() };
      return;
    }
    if (Date.now() - state.behind.at >= STALL_MS) {
      state.behind = null;
      connect();
    }
  }

  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }

  // ---- Chart: facts per minute over the last hour -------------------------

  const SVG = 'http://www.w3.org/2000/svg';
  let chartFrame = 0;

  function countMinute(ms) {
    const m = Math.floor(ms / 60000);
    if (m <= Math.floor(Date.now() / 60000) - CHART_MINUTES) return;
    state.perMinute.set(m, (state.perMinute.get(m) || 0) + 1);
  }

  function drawChartSoon() {
    if (!chartFrame) chartFrame = requestAnimationFrame(drawChart);
  }

  function drawChart() {
    chartFrame = 0;
    const nowMin = Math.floor(Date.now() / 60000);
    const first = nowMin - CHART_MINUTES + 1;
    for (const m of state.perMinute.keys()) if (m < first) state.perMinute.delete(m);

    let peak = 0;
    let total = 0;
    for (let m = first; m <= nowMin; m++) {
      const n = state.perMinute.get(m) || 0;
      peak = Math.max(peak, n);
      total += n;
    }
    const W = 600;
    const H = 80;
    const slot = W / CHART_MINUTES;
    const frag = document.createDocumentFragment();
    const base = document.createElementNS(SVG, 'line');
    setAttrs(base, { x1: 0, x2: W, y1: H - 0.5, y2: H - 0.5, class: 'chart-base' });
    frag.appendChild(base);
    for (let i = 0; i < CHART_MINUTES; i++) {
      const m = first + i;
      const n = state.perMinute.get(m) || 0;
      const h = peak ? Math.max(n ? 2 : 0, (n / peak) * (H - 4)) : 0;
      const bar = document.createElementNS(SVG, 'rect');
      setAttrs(bar, { x: i * slot + 1, y: H - h, width: slot - 2, height: h, class: 'chart-bar' });
      const title = document.createElementNS(SVG, 'title');
      title.textContent = clockFormat.format(m * 60000) + ': ' + n + (n === 1 ? ' fact' : ' facts');
      bar.appendChild(title);
      frag.appendChild(bar);
    }
    ui.chart.replaceChildren(frag);
    ui.chart.setAttribute('aria-label', total
      ? total + ' facts in the last hour, at most ' + peak + ' in one minute'
      : 'No facts in the last hour');
    setText(ui.chartPeak, peak ? 'peak ' + peak + '/min' : '');
  }

  function setAttrs(el, attrs) {
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  }

  // ---- Posting a fact -----------------------------------------------------

  // The Idempotency-Key stays the same while the text does, so sending the
  // same fact again after a network failure (when the first try may have
  // been stored after all) cannot create it twice.
  let pending = { body: '', key: '' };

  function newKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    // randomUUID needs a secure context; plain http on a LAN host has none.
    const b = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  function clearErrors() {
    for (const [field, el] of Object.entries(fieldErrors)) {
      el.hidden = true;
      el.textContent = '';
      fieldInputs[field].removeAttribute('aria-invalid');
    }
    ui.formError.hidden = true;
    ui.formError.textContent = '';
  }

  function showFieldError(field, detail) {
    const label = field === 'info' ? 'Fact' : 'Source';
    const text = String(detail || 'is not valid');
    fieldErrors[field].textContent = /^[a-z]/.test(text) ? label + ' ' + text + '.' : text;
    fieldErrors[field].hidden = false;
    fieldInputs[field].setAttribute('aria-invalid', 'true');
  }

  function showFormError(text) {
    ui.formError.textContent = text;
    ui.formError.hidden = false;
  }

  async function showProblem(r) {
    let p = null;
    try {
      p = await r.json();
    } catch (_) { /* not JSON: fall back to the status below */ }
    let first = null;
    for (const e of (p && Array.isArray(p.errors)) ? p.errors : []) {
      const field = e && fieldErrors[e.field] ? e.field : null;
      if (!field) continue;
      showFieldError(field, e.detail);
      first = first || field;
    }
    if (first) {
      fieldInputs[first].focus();
      return;
    }
    if (r.status === 401) needToken();
    let text = (p && (p.detail || p.title)) || 'The server answered ' + r.status + '.';
    const wait = r.headers.get('Retry-After');
    if (wait) text += ' Try again in ' + wait + ' s.';
    showFormError(text);
  }

  async function submit(ev) {
    ev.preventDefault();
    if (ui.button.disabled) return;
    clearErrors();
    ui.formStatus.textContent = '';
    const draft = { info: ui.info.value };
    if (ui.source.value.trim() !== '') draft.source = ui.source.value;
    const body = JSON.stringify(draft);
    if (pending.body !== body) pending = { body, key: newKey() };

    ui.button.disabled = true;
    ui.form.setAttribute('aria-busy', 'true');
    try {
      const r = await fetch('/fact', {
        method: 'POST',
        headers: authHeaders({ 'Content-Type': 'application/json', 'Idempotency-Key': pending.key }),
        body,
      });
      if (r.status === 201) {
        const fact = await r.json();
        pending = { body: '', key: '' };
        ui.form.reset();
        ui.formStatus.textContent = 'Posted as #' + fact.seq + '.';
        addFacts([fact], true); // the stream delivers it too; seq keeps it single
        ui.info.focus();
      } else {
        await showProblem(r);
      }
    } catch (_) {
      showFormError('Could not reach the server. Your text is still here; try again.');
    } finally {
      ui.button.disabled = false;
      ui.form.removeAttribute('aria-busy');
    }
  }

  // ---- Wiring -------------------------------------------------------------

  ui.form.addEventListener('submit', submit);
  for (const [field, input] of Object.entries(fieldInputs)) {
    input.addEventListener('input', () => {
      if (!fieldErrors[field].hidden) {
        fieldErrors[field].hidden = true;
        input.removeAttribute('aria-invalid');
      }
    });
  }
  // Ctrl+Enter / Cmd+Enter posts from the text area, as in most chat boxes.
  ui.info.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) ui.form.requestSubmit();
  });
  let filterFrame = 0;
  ui.filter.addEventListener('input', () => {
    if (!filterFrame) filterFrame = requestAnimationFrame(() => { filterFrame = 0; applyFilter(); });
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) scheduleStatus(0);
  });
  window.addEventListener('online', () => {
    if (!source || source.readyState === EventSource.CLOSED) connect();
    scheduleStatus(0);
  });
  setInterval(() => {
    refreshTimes();
    drawChart();
  }, TICK_MS);

  setConnection('connecting');
  drawChart();
  updateListStatus();
  connect();
  // The stream's open refreshes the counters; this is the fallback for a
  // stream that cannot open (a missing token shows up in /status).
  scheduleStatus(1500);
})();
