// Plexus web UI: sign in, pick a channel, live tail over Server-Sent Events,
// pause, filter, older history by pages, drains with their status.
//
// Rules this file keeps:
//   - Log text and every value from the API is inserted with textContent or
//     text nodes, never as HTML.
//   - The credential stays in sessionStorage (this tab only) and travels only
//     in the Authorization header of fetch calls, never in a URL.
//   - EventSource cannot send headers, so the page creates a session with the
//     credential (POST /v3/sessions) and opens that session's URL, whose
//     random id is the capability. After any disconnect it creates a new
//     session and resumes with ?since=<last event id>: no gap, no duplicate.
'use strict';

const HISTORY = 100; // lines shown when a channel is opened
const PAGE = 100; // lines per "Load older"
const MAX_LINES = 5000; // lines kept on the page (oldest dropped first)
const DRAIN_REFRESH_MS = 5000;
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 4000;

const $ = (id) => document.getElementById(id);
const store = window.sessionStorage;

// ---- credential and API calls ----

function utf8Base64(s) {
  const bytes = new TextEncoder().encode(s);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

function authHeader() {
  return store.getItem('plexus.auth');
}

class AuthError extends Error {}

// api calls the management API with the stored credential. A 401 signs out.
async function api(method, path, body) {
  const headers = { Authorization: authHeader() };
  const init = { method, headers, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  if (resp.status === 401) {
    signOut('The server refused the credential (it needs full_api).');
    throw new AuthError('unauthorized');
  }
  return resp;
}

function channelPath(id) {
  return '/v3/channels/' + encodeURIComponent(id);
}

// ---- sign in ----

function showSignIn(message) {
  $('app').hidden = true;
  $('signout').hidden = true;
  $('who').textContent = '';
  $('signin').hidden = false;
  $('signin-error').textContent = message || '';
}

function signOut(message) {
  stopTail();
  stopDrains();
  store.removeItem('plexus.auth');
  store.removeItem('plexus.who');
  showSignIn(message);
}

async function signIn(ev) {
  ev.preventDefault();
  const kind = document.querySelector('input[name="kind"]:checked').value;
  let auth, who;
  if (kind === 'key') {
    const key = $('admin-key').value.trim();
    if (!key) return;
    auth = 'Basic ' + key; // the admin key is sent as is (Logplex)
    who = 'admin key';
  } else {
    const id = $('cred-id').value.trim();
    const pass = $('cred-pass').value.trim();
    if (!id || !pass) return;
    auth = 'Basic ' + utf8Base64(id + ':' + pass);
    who = 'credential ' + id;
  }
  $('signin-error').textContent = '';
  let resp;
  try {
    resp = await fetch('/v3/nodes', { headers: { Authorization: auth }, cache: 'no-store', credentials: 'omit' });
  } catch (e) {
    $('signin-error').textContent = 'Cannot reach the server: ' + e.message;
    return;
  }
  if (resp.status === 401) {
    $('signin-error').textContent = 'Not accepted: check the credential (it needs full_api) or the key.';
    return;
  }
  if (!resp.ok) {
    $('signin-error').textContent = 'The server answered ' + resp.status + '.';
    return;
  }
  store.setItem('plexus.auth', auth);
  store.setItem('plexus.who', who);
  $('admin-key').value = '';
  $('cred-pass').value = '';
  showApp();
}

function showApp() {
  $('signin').hidden = true;
  $('app').hidden = false;
  $('signout').hidden = false;
  $('who').textContent = 'signed in with ' + (store.getItem('plexus.who') || 'a credential');
  loadChannelList();
  const ch = store.getItem('plexus.channel');
  if (ch) {
    $('channel').value = ch;
    $('ps').value = store.getItem('plexus.ps') || '';
    openChannel();
  }
}

// loadChannelList fills the channel suggestions when the server lists
// channels (GET /v3/channels); otherwise the channel id is typed.
async function loadChannelList() {
  let list;
  try {
    const resp = await api('GET', '/v3/channels');
    if (!resp.ok) return;
    list = await resp.json();
  } catch (e) {
    return;
  }
  if (!Array.isArray(list)) return;
  const dl = $('channel-list');
  dl.replaceChildren();
  for (const item of list) {
    const id = typeof item === 'string' ? item : item && (item.channel || item.id || item.channel_id);
    if (typeof id !== 'string' && typeof id !== 'number') continue;
    const opt = document.createElement('option');
    opt.value = String(id);
    dl.appendChild(opt);
  }
}

// ---- the log view ----

const log = $('log');
let filterText = '';

function hashClass(s) {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
  return 'p' + (Math.abs(h) % 8);
}

const sessionLine = /^(\S+) ([^\s[]*)\[([^\]]*)\]: ([\s\S]*)$/;

// lineElement builds one line from its text, as text.
function lineElement(text, offset, notice) {
  const el = document.createElement('div');
  el.className = 'line';
  const m = notice ? null : sessionLine.exec(text);
  if (m) {
    const ts = document.createElement('span');
    ts.className = 'ts';
    ts.textContent = m[1];
    const src = document.createElement('span');
    src.className = hashClass(m[2] + '[' + m[3] + ']');
    src.textContent = m[2] + '[' + m[3] + ']:';
    el.append(ts, ' ', src, ' ', document.createTextNode(m[4]));
  } else {
    el.textContent = text;
  }
  if (notice) el.classList.add('notice');
  if (offset !== null) el.dataset.offset = String(offset);
  if (!matches(el)) el.classList.add('hidden');
  return el;
}

function matches(el) {
  return filterText === '' || el.textContent.toLowerCase().includes(filterText);
}

function atBottom() {
  return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
}

function appendLine(text, offset, notice) {
  const stick = atBottom();
  log.appendChild(lineElement(text, offset, notice));
  while (log.childElementCount > MAX_LINES) log.firstElementChild.remove();
  if (stick) log.scrollTop = log.scrollHeight;
  updateCounts();
}

function marker(text) {
  const el = document.createElement('div');
  el.className = 'line marker';
  el.textContent = text;
  return el;
}

function applyFilter() {
  filterText = $('filter').value.trim().toLowerCase();
  for (const el of log.children) el.classList.toggle('hidden', !matches(el));
  updateCounts();
}

function updateCounts() {
  const total = log.childElementCount;
  const shown = total - log.querySelectorAll('.line.hidden').length;
  $('counts').textContent = filterText ? shown + ' of ' + total + ' lines match' : total + ' lines';
}

// ---- live tail ----

// tail is the open channel's state; gen invalidates callbacks of streams
// that were replaced (pause, reconnect, another channel).
let tail = null;
let gen = 0;

function setStatus(state, text) {
  const el = $('status');
  el.dataset.state = state;
  el.textContent = text || state;
  if (tail) el.dataset.reconnects = String(tail.reconnects);
}

function parseID(id) {
  const i = id.lastIndexOf(':');
  const off = Number(i >= 0 ? id.slice(i + 1) : id);
  return { epoch: i >= 0 ? id.slice(0, i) : '', offset: Number.isSafeInteger(off) ? off : null };
}

function stopTail() {
  gen++;
  if (!tail) return;
  if (tail.es) tail.es.close();
  tail.es = null;
  clearTimeout(tail.timer);
}

// createSession makes a session for the open channel and returns its path
// on this origin (the server's advertised base URL may name another host).
async function createSession(num, follow) {
  const body = { channel_id: tail.channel, num: num, tail: follow };
  if (tail.ps) body.ps = tail.ps;
  const resp = await api('POST', '/v3/sessions', body);
  if (!resp.ok) {
    const err = new Error('POST /v3/sessions answered ' + resp.status);
    err.status = resp.status;
    throw err;
  }
  const doc = await resp.json();
  return new URL(doc.url, location.href).pathname;
}

async function startTail() {
  const my = ++gen;
  setStatus('connecting');
  let path;
  try {
    path = await createSession(tail.lastID ? 0 : HISTORY, true);
  } catch (e) {
    if (e instanceof AuthError || my !== gen) return;
    if (e.status === 422) {
      setStatus('error', 'channel not found');
      return;
    }
    reconnect(my);
    return;
  }
  if (my !== gen) return;
  const src = tail.lastID ? path + '?since=' + encodeURIComponent(tail.lastID) : path;
  const es = new EventSource(src);
  tail.es = es;
  es.onopen = () => {
    if (my !== gen) return;
    tail.retries = 0;
    setStatus('live');
  };
  es.onmessage = (e) => {
    if (my === gen) onEvent(e);
  };
  es.onerror = () => {
    es.close();
    if (my === gen) reconnect(my);
  };
}

// reconnect opens a new stream after a pause that grows with failures.
function reconnect(my) {
  if (my !== gen || !tail || tail.paused) return;
  if (tail.es) tail.es.close();
  tail.es = null;
  tail.retries++;
  tail.reconnects++;
  const delay = Math.min(RETRY_MIN_MS * 2 ** (tail.retries - 1), RETRY_MAX_MS);
  setStatus('reconnecting', 'reconnecting…');
  tail.timer = setTimeout(() => {
    if (my === gen) startTail();
  }, delay);
}

// onEvent shows one SSE event. Events without an id are Plexus's own
// notices (missed messages, restarted history); EventSource then repeats
// the previous id.
function onEvent(e) {
  const id = e.lastEventId;
  if (id === '' || id === tail.lastID) {
    appendLine(e.data, null, true);
    return;
  }
  const { epoch, offset } = parseID(id);
  if (offset === null) return;
  if (epoch === tail.epoch && tail.last !== null && offset <= tail.last) return; // already shown
  tail.epoch = epoch;
  tail.last = offset;
  tail.lastID = id;
  appendLine(e.data, offset, false);
}

function togglePause() {
  if (!tail) return;
  if (tail.paused) {
    tail.paused = false;
    $('pause').textContent = 'Pause';
    startTail(); // resumes after the last event shown
    return;
  }
  tail.paused = true;
  stopTail();
  $('pause').textContent = 'Resume';
  setStatus('paused');
}

// ---- older history ----

// readEvents reads an SSE response and calls onEvent(id, data) for each
// event until it returns false or the stream ends.
async function readEvents(resp, onEv) {
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  let id = '';
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let nl;
    while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
      if (line === '') {
        if (data.length > 0 && onEv(id, data.join('\n')) === false) {
          reader.cancel();
          return;
        }
        id = '';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      let val = c < 0 ? '' : line.slice(c + 1);
      if (val.startsWith(' ')) val = val.slice(1);
      if (field === 'id') id = val;
      else if (field === 'data') data.push(val);
    }
  }
}

function oldestShown() {
  const first = log.querySelector('.line[data-offset]');
  if (first) return Number(first.dataset.offset);
  return tail && tail.last !== null ? tail.last + 1 : null;
}

// loadOlder prepends up to PAGE messages older than the oldest one shown.
// It reads them through a non-tailing session resumed just before them
// (?since=), whose events carry offsets; near the start of the log it reads
// the session's whole history instead.
async function loadOlder() {
  if (!tail) return;
  const before = oldestShown();
  if (before === null || before === 0) {
    $('older').disabled = true;
    return;
  }
  $('older').disabled = true;
  const epoch = tail.epoch;
  const got = [];
  try {
    const fromStart = before <= PAGE;
    let path = await createSession(fromStart ? -1 : 0, false);
    if (!fromStart) {
      const since = before - PAGE - 1;
      path += '?since=' + encodeURIComponent(epoch ? epoch + ':' + since : String(since));
    }
    const resp = await fetch(path, { headers: { Accept: 'text/event-stream' }, cache: 'no-store', credentials: 'omit' });
    if (!resp.ok) throw new Error('history answered ' + resp.status);
    await readEvents(resp, (id, data) => {
      if (id === '') return true; // a notice
      const p = parseID(id);
      if (p.offset === null || p.epoch !== epoch) return true;
      if (p.offset >= before) return false;
      got.push([p.offset, data]);
      return true;
    });
  } catch (e) {
    if (!(e instanceof AuthError)) setStatus(tail.paused ? 'paused' : $('status').dataset.state, 'history: ' + e.message);
    $('older').disabled = false;
    return;
  }
  const keep = got.slice(-PAGE);
  if (keep.length === 0) {
    log.prepend(marker('— no older messages retained —'));
    return;
  }
  const frag = document.createDocumentFragment();
  for (const [off, data] of keep) frag.appendChild(lineElement(data, off, false));
  const height = log.scrollHeight;
  log.prepend(frag);
  log.scrollTop += log.scrollHeight - height; // keep the lines in view where they were
  updateCounts();
  $('older').disabled = false;
}

// ---- drains ----

let drainsTimer = null;

function stopDrains() {
  clearTimeout(drainsTimer);
  drainsTimer = null;
}

// redactURL hides a password in a drain URL's user info.
function redactURL(u) {
  return String(u).replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*):[^/@]*@/i, '$1:***@');
}

function cell(row, text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function when(t) {
  if (!t) return '';
  const d = new Date(t);
  return isNaN(d) ? String(t) : d.toLocaleString();
}

async function loadDrains() {
  stopDrains();
  if (!tail) return;
  const channel = tail.channel;
  const note = $('drains-note');
  try {
    const resp = await api('GET', channelPath(channel));
    if (!tail || tail.channel !== channel) return;
    if (!resp.ok) {
      note.textContent = 'GET ' + channelPath(channel) + ' answered ' + resp.status;
      return;
    }
    const doc = await resp.json();
    const drains = Array.isArray(doc.drains) ? doc.drains : [];
    const rows = await Promise.all(drains.map(async (d) => {
      try {
        const r = await api('GET', channelPath(channel) + '/drains/' + encodeURIComponent(d.id));
        return r.ok ? await r.json() : d;
      } catch (e) {
        return d;
      }
    }));
    if (!tail || tail.channel !== channel) return;
    const body = $('drains').tBodies[0];
    body.replaceChildren();
    for (const d of rows) {
      const tr = document.createElement('tr');
      const st = d.status;
      cell(tr, String(d.id));
      cell(tr, d.url ? redactURL(d.url) : '(reserved, no destination)', 'url');
      if (st) {
        cell(tr, String(st.delivered));
        cell(tr, String(st.dropped));
        cell(tr, st.lag_messages + ' msgs, ' + Number(st.lag_seconds).toFixed(1) + ' s');
        cell(tr, when(st.last_success_at));
        cell(tr, st.last_error ? st.last_error + (st.last_error_at ? ' (' + when(st.last_error_at) + ')' : '') : '', 'err');
      } else {
        const td = cell(tr, d.url ? 'no delivery status on this node' : '');
        td.colSpan = 5;
      }
      body.appendChild(tr);
    }
    note.textContent = rows.length === 0 ? 'This channel has no drains.' : 'Updated ' + new Date().toLocaleTimeString() + '.';
  } catch (e) {
    if (e instanceof AuthError) return;
    note.textContent = 'Drains: ' + e.message;
  }
  if (tail && tail.channel === channel) drainsTimer = setTimeout(loadDrains, DRAIN_REFRESH_MS);
}

// ---- opening a channel ----

async function openChannel(ev) {
  if (ev) ev.preventDefault();
  const channel = $('channel').value.trim();
  const ps = $('ps').value.trim();
  if (!channel) return;
  $('channel-error').textContent = '';
  let resp;
  try {
    resp = await api('GET', channelPath(channel));
  } catch (e) {
    if (!(e instanceof AuthError)) $('channel-error').textContent = 'Cannot reach the server: ' + e.message;
    return;
  }
  if (resp.status === 404) {
    $('channel-error').textContent = 'No channel ' + channel + '.';
    return;
  }
  if (!resp.ok) {
    $('channel-error').textContent = 'The server answered ' + resp.status + '.';
    return;
  }
  stopTail();
  stopDrains();
  store.setItem('plexus.channel', channel);
  store.setItem('plexus.ps', ps);
  tail = { channel, ps, es: null, timer: 0, paused: false, retries: 0, reconnects: 0, epoch: '', last: null, lastID: '' };
  log.replaceChildren();
  $('older').disabled = false;
  $('pause').textContent = 'Pause';
  $('viewer').hidden = false;
  document.title = 'Plexus · ' + channel;
  updateCounts();
  startTail();
  loadDrains();
}

// ---- wiring ----

function init() {
  $('signin-form').addEventListener('submit', signIn);
  for (const r of document.querySelectorAll('input[name="kind"]')) {
    r.addEventListener('change', () => {
      const key = document.querySelector('input[name="kind"]:checked').value === 'key';
      $('key-fields').hidden = !key;
      $('cred-fields').hidden = key;
    });
  }
  $('signout').addEventListener('click', () => {
    store.removeItem('plexus.channel');
    signOut('');
  });
  $('channel-form').addEventListener('submit', openChannel);
  $('pause').addEventListener('click', togglePause);
  $('older').addEventListener('click', loadOlder);
  $('filter').addEventListener('input', applyFilter);
  $('clear').addEventListener('click', () => {
    log.replaceChildren();
    updateCounts();
  });
  $('drains-refresh').addEventListener('click', loadDrains);
  if (authHeader()) showApp();
  else showSignIn('');
}

init();
