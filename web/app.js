// factstream dashboard: a live table of facts fed by Server-Sent Events.
//
// Rules this file keeps:
// - Fact text only ever reaches the DOM through textContent or attribute
//   setters, never through innerHTML; links are made only for http(s) URLs.
// - Each fact is shown once. The browser's EventSource resends the last
//   event id when it reconnects, so the server sends only what was missed;
//   when the page has to open a new EventSource itself it passes the same
//   position as ?lastEventId=. Facts are also keyed by seq as a safety net.
// - The DOM stays bounded: the newest MAX_ROWS facts, plus the older pages
//   the reader asked for, never more than MAX_HELD rows.
// - A deleted fact leaves the page once: by the stream's `deleted` event or
//   by this page's own delete, whichever comes first; its id is remembered
//   so that a page of older facts or a post answer in flight cannot bring
//   it back.
'use strict';

(() => {
  const MAX_ROWS = 2000; // the live window
  const MAX_HELD = 10000; // with older pages loaded by hand
  const OLDER_PAGE = 500; // facts per "Load older" request (the API allows 1000)
  const STATUS_EVERY_MS = 10000; // regular /status refresh
  const STATUS_HIDDEN_MS = 60000; // while the tab is in the background
  const STATUS_MIN_GAP_MS = 2000; // at most this often when facts stream in
  const STALL_MS = 8000; // /status ahead of the stream this long: reopen it
  const TICK_MS = 15000; // relative times and the chart's minute window
  const CHART_MINUTES = 60;
  const TOKEN_KEY = 'factstream.token';
  const PUBLISH_TOKEN_KEY = 'factstream.publishToken';
  const ADMIN_TOKEN_KEY = 'factstream.adminToken';
  const MAX_DELETED = 1000; // deleted ids remembered
  const LABEL_CHARS = 60; // of a fact's text in a delete button's label

  const $ = (id) => document.getElementById(id);
  const ui = {
    conn: $('connection'),
    connText: $('connection-text'),
    tokenButton: $('token-button'),
    tokenPanel: $('token-panel'),
    tokenMessage: $('token-message'),
    tokenForm: $('token-form'),
    tokenInput: $('token-input'),
    publishTokenInput: $('publish-token-input'),
    adminTokenInput: $('admin-token-input'),
    tokenForget: $('token-forget'),
    tokenClose: $('token-close'),
    factCount: $('fact-count'),
    factNote: $('fact-note'),
    clientCount: $('client-count'),
    clientNote: $('client-note'),
    chart: $('chart'),
    chartPeak: $('chart-peak'),
    chartMax: $('chart-max'),
    post: $('post-section'),
    postToggle: $('post-toggle'),
    form: $('fact-form'),
    info: $('info'),
    source: $('source'),
    button: $('post-button'),
    formError: $('form-error'),
    formStatus: $('form-status'),
    filter: $('filter'),
    filterStatus: $('filter-status'),
    section: $('facts-section'),
    table: $('fact-table'),
    actionsHead: $('col-actions'),
    notes: $('table-notes'),
    deleteStatus: $('delete-status'),
    rows: $('facts'),
    empty: $('empty'),
    older: $('older'),
    olderButton: $('load-older'),
    olderStatus: $('older-status'),
  };
  const fieldErrors = { info: $('info-error'), source: $('source-error') };
  const fieldInputs = { info: ui.info, source: ui.source };

  const state = {
    tokens: loadTokens(), // {read, publish, admin}
    auth: null, // null, or why reading is refused: 'missing' | 'refused'
    conn: 'connecting',
    everLive: false,
    statusFresh: false, // the counters come from /status since the stream is live
    facts: new Map(), // seq -> {fact, row, time, ms, text}
    floor: 0, // seqs at or below this were dropped from the window: seen
    streamSeq: 0, // highest seq received through the stream: resume point
    perMinute: new Map(), // minute number -> facts created in it
    lowestCounted: Infinity, // facts below this seq are not in perMinute yet
    lastEventAt: null,
    status: null, // last /status answer
    newSinceStatus: 0,
    behind: null, // {seq, at}: /status saw a head the stream had not
    filter: '',
    older: newOlder(),
    deleted: new Set(), // ids of facts deleted while this page was open, oldest first
  };

  // newOlder is the state of paging back through history. A new object
  // after a reset makes any request still in flight recognisably stale.
  function newOlder() {
    return { limit: MAX_ROWS, end: false, busy: false };
  }

  // ---- Access tokens ------------------------------------------------------

  // loadTokens reads the tokens kept for this tab, and takes a read token
  // from #token= (or #access_token=) once: it is kept for this tab only
  // and removed from the address bar, so it is not bookmarked, shared by
  // copy-and-paste or left in the history. An admin token is only ever
  // typed into the token panel: a link never carries one.
  function loadTokens() {
    const t = {
      read: storageGet(TOKEN_KEY),
      publish: storageGet(PUBLISH_TOKEN_KEY),
      admin: storageGet(ADMIN_TOKEN_KEY),
    };
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
    if (!found) return t;
    storageSet(TOKEN_KEY, found);
    history.replaceState(history.state, '',
      location.pathname + location.search + (rest.length ? '#' + rest.join('&') : ''));
    t.read = found;
    return t;
  }

  function storageGet(key) {
    try {
      return sessionStorage.getItem(key) || '';
    } catch (_) {
      return ''; // storage disabled: tokens live in memory only
    }
  }

  function storageSet(key, value) {
    try {
      if (value) sessionStorage.setItem(key, value);
      else sessionStorage.removeItem(key);
    } catch (_) { /* see storageGet */ }
  }

  function decode(s) {
    try {
      return decodeURIComponent(s);
    } catch (_) {
      return s; // not percent-encoded after all
    }
  }

  function readHeaders() {
    return state.tokens.read ? { Authorization: 'Bearer ' + state.tokens.read } : {};
  }

  // A publish token of its own wins; otherwise the read token goes along,
  // since the server lets one token do both when it is a publish token.
  function publishToken() {
    return state.tokens.publish || state.tokens.read;
  }

  // needToken is called when the server refuses to let this page read: the
  // stream stops retrying (every attempt would be refused the same way)
  // and the token panel asks for a token. /status keeps being polled, so a
  // server restarted without tokens is noticed by itself.
  function needToken(refused) {
    clearTimeout(retryTimer);
    if (source) {
      source.close();
      source = null;
    }
    state.auth = refused ? 'refused' : 'missing';
    setConnection(state.everLive ? 'reconnecting' : 'connecting');
    openTokenPanel('read', refused
      ? 'The server refused this access token. Check it and enter it again.'
      : 'This server needs an access token before it shows facts. Enter it below.');
    updateListStatus();
  }

  // accessGranted runs when a read succeeds after a refusal.
  function accessGranted() {
    if (!state.auth) return;
    state.auth = null;
    if (ui.tokenPanel.dataset.reason === 'read') closeTokenPanel(false);
    setConnection(state.conn);
    updateListStatus();
    if (!source) connect();
  }

  function openTokenPanel(reason, message) {
    const wasHidden = ui.tokenPanel.hidden;
    ui.tokenPanel.dataset.reason = reason;
    setText(ui.tokenMessage, message);
    ui.tokenMessage.hidden = !message;
    ui.tokenPanel.hidden = false;
    ui.tokenButton.setAttribute('aria-expanded', 'true');
    if (!wasHidden) return;
    ui.tokenForget.hidden = !hasTokens();
    ui.tokenInput.value = state.tokens.read;
    ui.publishTokenInput.value = state.tokens.publish;
    ui.adminTokenInput.value = state.tokens.admin;
    // Move the focus only when it is not somewhere the reader put it (a
    // refused post moves it here on purpose: that is what to do next).
    const field = reason === 'publish' ? ui.publishTokenInput : ui.tokenInput;
    if (reason === 'publish' || document.activeElement === document.body || !document.activeElement) {
      field.focus();
    }
  }

  function closeTokenPanel(refocus) {
    ui.tokenPanel.hidden = true;
    ui.tokenPanel.dataset.reason = '';
    ui.tokenButton.setAttribute('aria-expanded', 'false');
    if (refocus) ui.tokenButton.focus();
  }

  function hasTokens() {
    return !!(state.tokens.read || state.tokens.publish || state.tokens.admin);
  }

  function useTokens(read, publish, admin) {
    const readChanged = read !== state.tokens.read;
    const adminChanged = admin !== state.tokens.admin;
    state.tokens = { read, publish, admin };
    storageSet(TOKEN_KEY, read);
    storageSet(PUBLISH_TOKEN_KEY, publish);
    storageSet(ADMIN_TOKEN_KEY, admin);
    ui.tokenForget.hidden = !hasTokens();
    if (adminChanged) syncActions();
    ui.formError.hidden = true;
    if (state.auth) {
      // The answer (a live stream, or a refusal) replaces this message.
      setText(ui.tokenMessage, 'Checking the access token…');
    } else {
      closeTokenPanel(true);
    }
    if (readChanged || state.auth) {
      connect();
      scheduleStatus(0);
    }
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
  const minuteFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

  // ---- Connection indicator ----------------------------------------------

  function setConnection(next) {
    if (next !== 'live') state.statusFresh = false;
    if (next === 'live' && state.conn !== 'live') state.everLive = true;
    state.conn = next;
    let text = 'Connecting…';
    if (state.auth) {
      text = state.auth === 'refused' ? 'Access token refused' : 'Access token needed';
    } else if (next === 'live') {
      text = 'Live';
    } else if (next === 'reconnecting') {
      text = 'Reconnecting… ' + (state.lastEventAt
        ? 'last event ' + clockFormat.format(state.lastEventAt)
        : 'no event yet');
    }
    ui.conn.dataset.state = next;
    if (state.auth) ui.conn.dataset.reason = 'token';
    else delete ui.conn.dataset.reason;
    setText(ui.connText, text);
    updateCounts();
  }

  // ---- The stream ---------------------------------------------------------

  let source = null;
  let retryTimer = 0;
  let backoff = 1000;

  // connect opens a new EventSource. The browser reconnects by itself after
  // a dropped connection; this runs again only when it gives up (an HTTP
  // error such as 401 or 503 closes an EventSource for good) or the stream
  // stalls.
  function connect() {
    clearTimeout(retryTimer);
    if (source) source.close();
    const q = new URLSearchParams();
    if (state.tokens.read) q.set('access_token', state.tokens.read);
    if (state.streamSeq > 0) q.set('lastEventId', String(state.streamSeq));
    const qs = q.toString();
    const es = new EventSource('/events' + (qs ? '?' + qs : ''));
    source = es;
    es.onopen = () => {
      if (es !== source) return;
      backoff = 1000;
      accessGranted();
      setConnection('live');
      scheduleStatus(0); // fresh counters, and the client count now includes this page
    };
    es.onmessage = (ev) => {
      if (es === source) onMessage(ev);
    };
    // Named events: onmessage never sees them.
    es.addEventListener('truncated', (ev) => {
      if (es === source) onTruncated(ev);
    });
    es.addEventListener('deleted', (ev) => {
      if (es === source) onDeleted(ev);
    });
    es.onerror = () => {
      if (es !== source) return;
      const closed = es.readyState === EventSource.CLOSED;
      // A refused first connection waits for probe's verdict, so the
      // indicator does not say "reconnecting" for a missing token.
      if (!state.auth && (!closed || state.conn === 'live')) setConnection('reconnecting');
      if (closed) probe(es);
    };
  }

  // probe finds out why the stream was refused. EventSource does not tell
  // the status code, so /status, behind the same guard, is asked: a 401
  // means a token is needed (or was wrong); anything else is retried.
  async function probe(es) {
    const code = await fetchStatus();
    if (es !== source || code === 401) return;
    if (!state.auth) setConnection('reconnecting');
    retryTimer = setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 30000);
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

  function parseEvent(ev) {
    try {
      const d = JSON.parse(ev.data);
      if (d !== null && typeof d === 'object') return d;
    } catch (_) { /* reported below */ }
    console.warn('factstream: ignoring a ' + ev.type + ' event that is not a JSON object');
    return null;
  }

  // onTruncated: the page resumed after the server's retention had removed
  // facts it had not received yet. They cannot be shown any more; the rows
  // already on the page stay, and a note says what is missing.
  function onTruncated(ev) {
    const d = parseEvent(ev);
    if (!d) return;
    const first = d.first_seq;
    const last = Number.isSafeInteger(d.last_event_id) && d.last_event_id >= 0 ? d.last_event_id : state.streamSeq;
    if (!Number.isSafeInteger(first) || first <= last + 1) return;
    const from = last + 1;
    const to = first - 1;
    const missed = from === to ? 'fact #' + from + ' was' : 'facts #' + from + ' to #' + to + ' were';
    showNote('truncated-note',
      'Older facts are gone: while this page was away, the server’s retention removed the facts up to #' + to +
      ', so ' + missed + ' never shown here. Rows already on this page stay until you reload it.');
  }

  // onDeleted removes the row of a fact deleted on the server, by anyone.
  function onDeleted(ev) {
    const d = parseEvent(ev);
    if (!d || typeof d.id !== 'string') return;
    removeFact(d.id, Number.isSafeInteger(d.seq) ? d.seq : 0);
  }

  // showNote puts a note above the table, in a live region that is always
  // there, so that screen readers announce the note when it appears. A
  // note of the same id is replaced, not repeated.
  function showNote(id, text) {
    let note = document.getElementById(id);
    if (!note) {
      note = document.createElement('div');
      note.id = id;
      note.className = 'notice';
      const p = document.createElement('p');
      const close = document.createElement('button');
      close.type = 'button';
      close.className = 'quiet';
      close.textContent = 'Dismiss';
      close.addEventListener('click', () => {
        note.remove();
        ui.section.focus();
      });
      note.append(p, close);
      ui.notes.appendChild(note);
    }
    setText(note.firstElementChild, text);
  }

  // ---- Facts and rows -----------------------------------------------------

  function isFact(f) {
    return f !== null && typeof f === 'object' && Number.isSafeInteger(f.seq) && f.seq > 0 &&
      typeof f.info === 'string';
  }

  function addFacts(list, highlight) {
    list = list.filter((f) => isFact(f) && !state.deleted.has(f.id));
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
      countMinute(f);
      if (f.seq > headSeq) state.newSinceStatus++;
    }
    // A snapshot can hold far more facts than the window: build rows only
    // for the newest ones and mark the rest as seen.
    const render = fresh.slice(-state.older.limit);
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
    const e = { fact: f, row, time, ms, text, actions: null };
    state.facts.set(f.seq, e);
    if (state.tokens.admin) addActions(e);
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
    while (state.facts.size > state.older.limit) {
      const last = ui.rows.lastElementChild;
      const seq = Number(last.dataset.seq);
      last.remove();
      state.facts.delete(seq);
      state.floor = Math.max(state.floor, seq);
    }
  }

  function reset() {
    ui.rows.textContent = '';
    ui.notes.textContent = ''; // what the notes said was about the old store
    state.deleted.clear();
    state.facts.clear();
    state.perMinute.clear();
    state.lowestCounted = Infinity;
    state.floor = 0;
    state.streamSeq = 0;
    state.newSinceStatus = 0;
    state.older = newOlder();
    setText(ui.olderStatus, '');
  }

  function refreshTimes() {
    const now = Date.now();
    for (const e of state.facts.values()) {
      const t = ago(e.ms, now);
      if (e.time.textContent !== t) e.time.textContent = t;
    }
  }

  function oldestShown() {
    const last = ui.rows.lastElementChild;
    return last ? Number(last.dataset.seq) : 0;
  }

  // ---- Older facts, a page at a time ----------------------------------------

  // loadOlder appends the page of facts just below the oldest row. Older
  // pages only ever hold seqs below every row shown, so no fact can appear
  // twice; the window grows to MAX_HELD to keep them while live facts
  // arrive on top.
  async function loadOlder() {
    const older = state.older;
    const before = oldestShown();
    if (older.busy || before <= 1 || state.facts.size >= MAX_HELD) return;
    older.busy = true;
    // Once the reader pages back, live facts no longer push rows out
    // until the page holds MAX_HELD.
    older.limit = MAX_HELD;
    ui.older.setAttribute('aria-busy', 'true');
    updateOlder();
    let note = '';
    try {
      const r = await fetch('/facts?order=desc&before=' + before + '&limit=' + OLDER_PAGE,
        { headers: readHeaders(), cache: 'no-store' });
      if (r.status === 401) {
        if (older === state.older) needToken(!!state.tokens.read);
        return;
      }
      if (!r.ok) {
        note = 'Could not load older facts: the server answered ' + r.status + '.';
        return;
      }
      const page = await r.json();
      // A reset, or more live facts than a page pushing rows out, while
      // the request was out: the page no longer joins the table.
      if (older !== state.older || oldestShown() !== before) {
        note = 'The table changed meanwhile; try again.';
        return;
      }
      const got = page && Array.isArray(page.facts) ? page.facts : [];
      const list = got.filter((f) => isFact(f) && f.seq < before && !state.facts.has(f.seq) && !state.deleted.has(f.id));
      if (!Number.isSafeInteger(page && page.next_before) || got.length < OLDER_PAGE) {
        older.end = true; // next_before is null on an empty page; a short page is the last
      }
      note = addOlder(list);
    } catch (_) {
      note = 'Could not reach the server; try again.';
    } finally {
      older.busy = false;
      if (older === state.older) {
        ui.older.removeAttribute('aria-busy');
        const hadFocus = document.activeElement === ui.olderButton;
        if (note) setText(ui.olderStatus, note);
        updateOlder();
        // A button that becomes disabled drops the focus to the page's
        // start; keep the reader where they were.
        if (hadFocus && ui.olderButton.disabled) ui.olderStatus.focus();
      }
    }
  }

  function addOlder(list) {
    list.sort((a, b) => b.seq - a.seq);
    list = list.slice(0, Math.max(0, MAX_HELD - state.facts.size));
    if (list.length === 0) return 'There are no older facts.';
    const now = Date.now();
    const frag = document.createDocumentFragment();
    let shown = 0;
    for (const f of list) {
      if (f.seq < state.lowestCounted) countMinute(f);
      const row = makeRow(f, now);
      if (!row.hidden) shown++;
      frag.appendChild(row);
    }
    ui.rows.appendChild(frag);
    updateListStatus();
    drawChartSoon();
    const n = list.length.toLocaleString();
    const what = 'Loaded ' + n + (list.length === 1 ? ' older fact' : ' older facts');
    if (state.filter === '') return what + '.';
    return what + '; ' + (shown === 0 ? 'none' : shown.toLocaleString()) +
      (shown === 1 ? ' matches' : ' match') + ' the filter.';
  }

  // updateOlder shows the button once there are rows, and disables it when
  // nothing older exists: the last page came back short or empty, the
  // oldest row is the first fact, or /status counts no more facts than the
  // page holds.
  function updateOlder() {
    const older = state.older;
    const n = state.facts.size;
    const oldest = oldestShown();
    const stored = state.status ? (Number(state.status.facts) || 0) + state.newSinceStatus : Infinity;
    const none = older.end || oldest <= 1 || stored <= n;
    const full = n >= MAX_HELD;
    ui.older.hidden = n === 0;
    ui.olderButton.disabled = older.busy || none || full;
    let label = 'Load older facts';
    if (older.busy) label = 'Loading older facts…';
    else if (none) label = 'No older facts';
    else if (full) label = 'Showing the most this page holds (' + MAX_HELD.toLocaleString() + ')';
    setText(ui.olderButton, label);
  }

  // ---- Deleting facts -----------------------------------------------------

  // With an admin token each row gets a Delete button. Deleting asks first,
  // in the row itself: Delete, then Keep or Delete. The focus lands on Keep,
  // so a double press of Enter never deletes by accident.

  function addActions(e) {
    const td = cell('row-actions');
    e.actions = td;
    e.row.appendChild(td);
    renderActions(e, 'idle', '');
  }

  // syncActions adds or removes the Delete buttons after the admin token
  // changed.
  function syncActions() {
    const admin = !!state.tokens.admin;
    ui.table.classList.toggle('admin', admin);
    ui.actionsHead.hidden = !admin;
    for (const e of state.facts.values()) {
      if (!admin) {
        if (!e.actions) continue;
        renderActions(e, 'gone', ''); // takes a message away too
        e.actions.remove();
        e.actions = null;
      } else if (!e.actions) {
        addActions(e);
      } else if (e.actions.dataset.mode === 'idle') {
        renderActions(e, 'idle', ''); // a new token answers a refusal: its message would mislead
      }
    }
  }

  function shortInfo(f) {
    const chars = Array.from(f.info.replace(/\s+/g, ' ').trim());
    return chars.length > LABEL_CHARS ? chars.slice(0, LABEL_CHARS - 1).join('') + '…' : chars.join('');
  }

  function actionButton(action, text, label) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'row-action ' + action;
    b.dataset.action = action;
    b.textContent = text;
    if (label) b.setAttribute('aria-label', label);
    return b;
  }

  // renderActions draws a row's actions: 'idle' (a Delete button, with the
  // last failure's message), 'confirm', 'busy', or 'gone' (nothing). It
  // returns the button that should take the focus.
  function renderActions(e, mode, message) {
    const td = e.actions;
    if (!td) return;
    const f = e.fact;
    const name = 'fact #' + f.seq + ': ' + shortInfo(f);
    td.textContent = '';
    td.dataset.mode = mode;
    // The message of a failed delete goes under the fact's text, where it
    // has the row's width; the button names it as its description.
    const old = e.row.querySelector('.row-error');
    if (old) old.remove();
    if (mode === 'idle') {
      const b = actionButton('delete', 'Delete', 'Delete ' + name);
      td.appendChild(b);
      if (message) {
        const p = document.createElement('p');
        p.className = 'row-error';
        p.id = 'row-error-' + f.seq;
        p.setAttribute('role', 'alert');
        p.textContent = message;
        b.setAttribute('aria-describedby', p.id);
        e.row.querySelector('td.info').appendChild(p);
      }
      return b;
    }
    if (mode === 'gone') return null;
    const ask = document.createElement('p');
    ask.className = 'row-ask';
    ask.textContent = mode === 'busy' ? 'Deleting…' : 'Delete for good?';
    const keep = actionButton('keep', 'Keep', 'Keep ' + name);
    const yes = actionButton('confirm', 'Delete', 'Yes, delete ' + name);
    keep.disabled = yes.disabled = mode === 'busy';
    td.append(ask, keep, yes);
    return keep;
  }

  function onRowAction(ev) {
    const b = ev.target.closest('button[data-action]');
    if (!b) return;
    const row = b.closest('tr');
    const e = row && state.facts.get(Number(row.dataset.seq));
    if (!e || e.row !== row) return;
    if (b.dataset.action === 'delete') renderActions(e, 'confirm', '').focus();
    else if (b.dataset.action === 'keep') renderActions(e, 'idle', '').focus();
    else if (b.dataset.action === 'confirm') deleteFact(e);
  }

  async function deleteFact(e) {
    const f = e.fact;
    const token = state.tokens.admin;
    if (!token) return;
    renderActions(e, 'busy', '');
    // The busy buttons are disabled: keep the focus in the row meanwhile.
    e.actions.tabIndex = -1;
    e.actions.focus();
    let message = '';
    try {
      const r = await fetch('/facts/' + encodeURIComponent(f.id), {
        method: 'DELETE',
        headers: { Authorization: 'Bearer ' + token },
        cache: 'no-store',
      });
      if (r.ok) {
        // The stream's `deleted` event may have removed the row already.
        removeFact(f.id, f.seq);
        setText(ui.deleteStatus, 'Deleted fact #' + f.seq + '.');
        return;
      }
      let p = null;
      try {
        p = await r.json();
      } catch (_) { /* not JSON: the status below says it */ }
      const detail = String((p && (p.detail || p.title)) || 'the server answered ' + r.status);
      message = 'Not deleted: ' + detail.replace(/[.\s]+$/, '') + '.';
      if (r.status === 401) message += ' Check the admin token.';
    } catch (_) {
      message = 'Not deleted: could not reach the server. Try again.';
    }
    // Still on the page (a 404 may be followed by the `deleted` event of
    // someone else's delete): say why, next to the row.
    if (state.facts.get(f.seq) === e && e.actions) {
      const hadFocus = e.actions.contains(document.activeElement);
      e.actions.removeAttribute('tabindex');
      const b = renderActions(e, 'idle', message);
      if (hadFocus) b.focus();
    }
  }

  // removeFact takes a deleted fact off the page, once: a second call for
  // the same fact (the event after this page's own delete, or the other
  // way round) finds nothing left to do.
  function removeFact(id, seq) {
    if (!state.deleted.has(id)) {
      state.deleted.add(id);
      if (state.deleted.size > MAX_DELETED) state.deleted.delete(state.deleted.values().next().value);
    }
    statusSoon(); // the server's count went down, whether this page showed the fact or not
    const e = state.facts.get(seq);
    if (!e || e.fact.id !== id) return;
    const row = e.row;
    let focusTo = null;
    if (row.contains(document.activeElement)) {
      // The focus would fall back to the page's start: move it to the
      // next row's button instead (or the table, when none is left).
      let next = row.nextElementSibling;
      while (next && next.hidden) next = next.nextElementSibling;
      if (!next) {
        next = row.previousElementSibling;
        while (next && next.hidden) next = next.previousElementSibling;
      }
      focusTo = (next && next.querySelector('button[data-action="delete"]')) || ui.section;
    }
    row.remove();
    state.facts.delete(seq);
    const s = state.status;
    if (s) {
      if (Number.isSafeInteger(s.last_seq) && seq > s.last_seq) {
        state.newSinceStatus = Math.max(0, state.newSinceStatus - 1);
      } else {
        s.facts = Math.max(0, (Number(s.facts) || 0) - 1);
      }
    }
    const m = Math.floor(e.ms / 60000);
    const n = state.perMinute.get(m);
    if (n) state.perMinute.set(m, n - 1);
    updateCounts();
    updateListStatus();
    drawChartSoon();
    if (focusTo) focusTo.focus();
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
      ui.filterStatus.textContent = total >= MAX_ROWS && !state.older.end ? 'Showing the newest ' + total + ' facts' : '';
    }
    ui.empty.hidden = shown > 0;
    let empty = 'No fact matches the filter.';
    if (total === 0) {
      empty = state.auth
        ? 'Facts appear here once the server accepts an access token.'
        : 'No facts yet. Post the first one.';
    }
    setText(ui.empty, empty);
    updateOlder();
  }

  // ---- Counters from /status ---------------------------------------------

  let statusTimer = 0;
  let statusDue = 0;
  let statusBusy = false;
  let statusAgain = false; // asked for while busy: ask again right after
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
    if (statusBusy) {
      // The answer on its way may predate what asked for this one (the
      // stream opening): it would leave the counters stale for a period.
      statusAgain = true;
      return;
    }
    statusBusy = true;
    try {
      await fetchStatus();
    } finally {
      statusBusy = false;
      statusLast = Date.now();
      const again = statusAgain;
      statusAgain = false;
      scheduleStatus(again ? 0 : document.hidden ? STATUS_HIDDEN_MS : STATUS_EVERY_MS);
    }
  }

  // fetchStatus asks /status and applies the answer. It returns the HTTP
  // status, 0 when the server could not be reached, or -1 when the tokens
  // changed while it asked (the answer is about the old ones).
  async function fetchStatus() {
    // The head /status reports cannot be behind a fact the page received
    // before asking, unless the store was replaced.
    const seen = state.streamSeq;
    const sent = state.tokens.read;
    let r;
    let s;
    try {
      r = await fetch('/status', { headers: readHeaders(), cache: 'no-store' });
      if (r.ok) s = await r.json();
    } catch (_) {
      // Unreachable server: the connection indicator says so; the
      // counters are marked stale.
      markStale();
      return 0;
    }
    if (sent !== state.tokens.read) return -1;
    if (r.status === 401) {
      needToken(sent !== '');
      return 401;
    }
    if (!r.ok) {
      markStale();
      return r.status;
    }
    accessGranted();
    applyStatus(s, seen);
    return r.status;
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
    state.statusFresh = state.conn === 'live';
    state.newSinceStatus = 0;
    for (const seq of state.facts.keys()) if (seq > s.last_seq) state.newSinceStatus++;
    updateCounts();
    updateOlder();
    checkStall(s.last_seq);
  }

  function markStale() {
    state.statusFresh = false;
    updateCounts();
  }

  // updateCounts shows the last counters /status gave. They are only
  // current while the stream is live and the last /status answered: at
  // any other time they are marked as last known values, so a reader does
  // not take "1 live client" from an hour ago for now.
  function updateCounts() {
    const s = state.status;
    if (!s) return;
    const facts = (Number(s.facts) || 0) + state.newSinceStatus;
    const cluster = s.cluster_clients !== undefined && s.cluster_clients !== null;
    const clients = Number(cluster ? s.cluster_clients : s.clients) || 0;
    setText(ui.factCount, facts.toLocaleString());
    setText(ui.clientCount, clients.toLocaleString());
    const stale = state.conn !== 'live' || !state.statusFresh;
    const staleTitle = 'Last known value: not updated while the connection is down';
    for (const el of [ui.factCount, ui.clientCount]) {
      el.classList.toggle('stale', stale);
      if (stale) el.title = staleTitle;
      else el.removeAttribute('title');
    }
    setText(ui.factNote, stale ? 'last known, not live' : 'stored in total');
    setText(ui.clientNote, stale ? 'last known, not live' : cluster ? 'on all servers' : 'on this server');
  }

  // checkStall is the page's heartbeat check. EventSource hides the
  // server's keepalive comments, so a connection that died without the
  // browser noticing (sleep, a network switch, a proxy) looks the same as
  // a quiet one. /status tells the store's head: if it stays ahead of what
  // the stream delivered, the stream is reopened from where it stopped.
  function checkStall(head) {
    if (!Number.isSafeInteger(head) || head <= state.streamSeq || state.conn !== 'live') {
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

  function countMinute(f) {
    state.lowestCounted = Math.min(state.lowestCounted, f.seq);
    const m = Math.floor(parseTime(f.created_at) / 60000);
    if (m <= Math.floor(Date.now() / 60000) - CHART_MINUTES) return;
    state.perMinute.set(m, (state.perMinute.get(m) || 0) + 1);
  }

  function drawChartSoon() {
    if (!chartFrame) chartFrame = requestAnimationFrame(drawChart);
  }

  // scaleMax rounds the busiest minute up to 1, 2 or 5 times a power of
  // ten, so the axis reads as a round number.
  function scaleMax(peak) {
    if (peak <= 1) return 1;
    const p = 10 ** Math.floor(Math.log10(peak));
    for (const m of [1, 2, 5]) if (m * p >= peak) return m * p;
    return 10 * p;
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
    const top = scaleMax(peak);
    const W = 600;
    const H = 80;
    const slot = W / CHART_MINUTES;
    const frag = document.createDocumentFragment();
    for (const [y, cls] of [[0.5, 'chart-grid'], [H / 2, 'chart-grid'], [H - 0.5, 'chart-base']]) {
      const line = document.createElementNS(SVG, 'line');
      setAttrs(line, { x1: 0, x2: W, y1: y, y2: y, class: cls });
      frag.appendChild(line);
    }
    for (let i = 0; i < CHART_MINUTES; i++) {
      const m = first + i;
      const n = state.perMinute.get(m) || 0;
      const h = n ? Math.max(2, (n / top) * H) : 0;
      const bar = document.createElementNS(SVG, 'rect');
      setAttrs(bar, { x: i * slot + 1, y: H - h, width: slot - 2, height: h, class: 'chart-bar' });
      const title = document.createElementNS(SVG, 'title');
      title.textContent = minuteFormat.format(m * 60000) + ': ' + n + (n === 1 ? ' fact' : ' facts');
      bar.appendChild(title);
      frag.appendChild(bar);
    }
    ui.chart.replaceChildren(frag);

    const from = minuteFormat.format(first * 60000);
    const to = minuteFormat.format(nowMin * 60000);
    setText(ui.chartMax, String(top));
    ui.chart.setAttribute('aria-label', 'Facts per minute over the last ' + CHART_MINUTES +
      ' minutes, ' + from + ' to ' + to + ', on a scale of 0 to ' + top + ': ' +
      (total
        ? total + (total === 1 ? ' fact' : ' facts') + ' in all, at most ' + peak + ' in one minute.'
        : 'no facts.'));
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

  async function showProblem(r, sentToken) {
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
    let text = (p && (p.detail || p.title)) || 'The server answered ' + r.status + '.';
    const wait = r.headers.get('Retry-After');
    if (wait) text += ' Try again in ' + wait + ' s.';
    if (r.status === 401) text += ' Enter a publish token above, then post again.';
    showFormError(text);
    if (r.status === 401) {
      openTokenPanel('publish', sentToken
        ? 'The server refused the token for posting. Enter a publish token, then post again.'
        : 'Posting here needs a publish token. Enter it, then post again.');
    }
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

    const token = publishToken();
    const headers = { 'Content-Type': 'application/json', 'Idempotency-Key': pending.key };
    if (token) headers.Authorization = 'Bearer ' + token;
    ui.button.disabled = true;
    ui.form.setAttribute('aria-busy', 'true');
    try {
      const r = await fetch('/fact', { method: 'POST', headers, body });
      if (r.status === 201) {
        const fact = await r.json();
        pending = { body: '', key: '' };
        ui.form.reset();
        ui.formStatus.textContent = 'Posted as #' + fact.seq + '.';
        if (ui.tokenPanel.dataset.reason === 'publish') closeTokenPanel(false);
        addFacts([fact], true); // the stream delivers it too; seq keeps it single
        ui.info.focus();
      } else {
        await showProblem(r, token !== '');
      }
    } catch (_) {
      showFormError('Could not reach the server. Your text is still here; try again.');
    } finally {
      ui.button.disabled = false;
      ui.form.removeAttribute('aria-busy');
    }
  }

  // On a phone the form waits behind a button, so the facts come first.
  function setPostOpen(open) {
    ui.post.classList.toggle('collapsed', !open);
    ui.postToggle.setAttribute('aria-expanded', String(open));
    if (open) ui.info.focus();
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
  ui.postToggle.addEventListener('click', () => setPostOpen(ui.post.classList.contains('collapsed')));
  ui.tokenForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    useTokens(ui.tokenInput.value.trim(), ui.publishTokenInput.value.trim(), ui.adminTokenInput.value.trim());
  });
  ui.tokenForget.addEventListener('click', () => {
    ui.tokenInput.value = '';
    ui.publishTokenInput.value = '';
    ui.adminTokenInput.value = '';
    useTokens('', '', '');
  });
  ui.tokenClose.addEventListener('click', () => closeTokenPanel(true));
  ui.tokenButton.addEventListener('click', () => {
    if (ui.tokenPanel.hidden) openTokenPanel('user', '');
    else closeTokenPanel(true);
  });
  ui.tokenPanel.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') closeTokenPanel(true);
  });
  ui.olderButton.addEventListener('click', loadOlder);
  ui.rows.addEventListener('click', onRowAction);
  ui.rows.addEventListener('keydown', (ev) => {
    // Escape takes back a question to delete.
    if (ev.key !== 'Escape') return;
    const row = ev.target.closest('tr');
    const e = row && state.facts.get(Number(row.dataset.seq));
    if (e && e.actions && e.actions.dataset.mode === 'confirm') renderActions(e, 'idle', '').focus();
  });
  let filterFrame = 0;
  ui.filter.addEventListener('input', () => {
    if (!filterFrame) filterFrame = requestAnimationFrame(() => { filterFrame = 0; applyFilter(); });
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) scheduleStatus(0);
  });
  window.addEventListener('online', () => {
    if (!state.auth && (!source || source.readyState === EventSource.CLOSED)) connect();
    scheduleStatus(0);
  });
  setInterval(() => {
    refreshTimes();
    drawChart();
  }, TICK_MS);

  syncActions();
  setConnection('connecting');
  drawChart();
  updateListStatus();
  connect();
  // The stream's open refreshes the counters; this is the fallback for a
  // stream that neither opens nor fails (a proxy holding it).
  scheduleStatus(1500);
})();
