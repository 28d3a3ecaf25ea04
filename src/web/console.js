// floodgate's live console: reads GET /admin/stream (Server-Sent Events, one document a
// second) with the admin token in a header, and shows the fleet's last second. The token is
// kept in this tab's sessionStorage only. Nothing here writes HTML from data: text only.
'use strict';

const KEY = 'floodgate-admin-token';
const HISTORY = 120; // seconds kept for the small charts
const STALE_MS = 3000; // an instance whose last second is older has stopped
const $ = (id) => document.getElementById(id);
const hist = { rps: [], logins: [] };
let ctl = null;
let retryTimer = null;

function token() { return sessionStorage.getItem(KEY) || ''; }

function api(method, path, body) {
  const opt = { method, headers: { Authorization: 'Bearer ' + token() }, cache: 'no-store' };
  if (body !== undefined) {
    opt.headers['Content-Type'] = 'application/json';
    opt.body = JSON.stringify(body);
  }
  return fetch(path, opt);
}

function notice(text) { $('notice').textContent = text; }

function fmt(n, digits) {
  if (n === null || n === undefined || Number.isNaN(n)) return '-';
  if (n >= 10000) return Math.round(n / 1000) + 'k';
  return n.toFixed(digits || 0);
}

function setText(id, v) { $(id).textContent = v; }

function row(cells, cls) {
  const tr = document.createElement('tr');
  if (cls) tr.className = cls;
  for (const c of cells) {
    const td = document.createElement('td');
    td.textContent = c;
    tr.appendChild(td);
  }
  return tr;
}

function spark(id, values) {
  const svg = $(id);
  const max = Math.max(1, ...values);
  const step = 120 / (HISTORY - 1); // the newest second at the right edge
  const pts = values.map((v, i) =>
    (120 - (values.length - 1 - i) * step).toFixed(1) + ',' + (29 - 28 * v / max).toFixed(1));
  let line = svg.firstChild;
  if (!line) {
    line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
    svg.appendChild(line);
  }
  line.setAttribute('points', pts.join(' '));
}

function push(name, v) {
  const h = hist[name];
  h.push(v);
  while (h.length > HISTORY) h.shift();
  spark(name === 'rps' ? 'rps-chart' : 'login-chart', h);
}

function routeRate(f) {
  let n = 0;
  for (const r of Object.values((f.sample && f.sample.routes) || {})) n += r.rate;
  return n;
}

function loginRate(f) {
  const l = f.logins;
  return l.ok + l.failed + l.locked + l.shed;
}

// The fleet's second: sums over the instances still beating; the worst wait and p99.
function render(doc) {
  const live = doc.fleet.filter((f) => doc.t - f.t < STALE_MS);
  const self = doc.fleet.find((f) => f.instance === doc.self) || live[0] || doc.fleet[0];
  if (!self) return;
  const sum = (fn) => live.reduce((a, f) => a + fn(f), 0);
  const rps = sum(routeRate);
  const logins = { ok: 0, failed: 0, locked: 0, shed: 0 };
  const limited = {};
  const routes = {};
  let wait = 0, deadline = 0, queued = 0, workers = 0, capacity = 0, demand = 0;
  for (const f of live) {
    for (const k of Object.keys(logins)) logins[k] += f.logins[k];
    for (const [rule, n] of Object.entries(f.rate_limited)) limited[rule] = (limited[rule] || 0) + n;
    for (const [name, r] of Object.entries((f.sample && f.sample.routes) || {})) {
      const t = routes[name] || (routes[name] = { rate: 0, p99: null });
      t.rate += r.rate;
      if (r.p99_ms !== null && (t.p99 === null || r.p99_ms > t.p99)) t.p99 = r.p99_ms;
    }
    if (f.sample) {
      wait = Math.max(wait, f.sample.hash_wait_ms);
      capacity += f.sample.login_capacity;
      demand += f.sample.login_demand;
    }
    deadline = Math.max(deadline, f.hash_deadline_ms);
    queued += f.queued;
    workers += f.workers;
  }
  setText('rps', fmt(rps));
  push('rps', rps);
  const lsum = logins.ok + logins.failed + logins.locked + logins.shed;
  setText('logins', fmt(lsum));
  push('logins', lsum);
  for (const k of Object.keys(logins)) setText('l-' + k, fmt(logins[k]));
  setText('wait', fmt(wait) + ' ms');
  setText('deadline', deadline ? deadline + ' ms' : 'none');
  const bar = $('wait-bar');
  const share = deadline ? Math.min(1, wait / deadline) : 0;
  bar.style.width = (share * 100).toFixed(0) + '%';
  bar.className = share >= 0.8 ? 'bad' : share >= 0.5 ? 'warn' : '';
  setText('queue', fmt(queued));
  setText('workers', fmt(workers));
  setText('capacity', fmt(capacity) + '/s');
  setText('demand', fmt(demand, 1));
  setText('instances', String(live.length));
  setText('recommended', String(self.recommended));
  const rl = Object.entries(limited).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  setText('limited', fmt(rl.reduce((a, [, n]) => a + n, 0)));
  const ul = $('limited-rules');
  ul.replaceChildren(...rl.slice(0, 4).map(([rule, n]) => {
    const li = document.createElement('li');
    li.textContent = rule + ': ' + n;
    return li;
  }));
  const badge = $('mode');
  badge.textContent = self.mode;
  badge.className = 'badge ' + self.mode;
  setText('mode-now', self.mode);
  setText('override', self.override === 'auto' ? 'no (automatic)' : self.override);
  setText('floor', self.floor);
  setText('stuffing', self.stuffing ? 'suspected' : 'no');
  if (self.change) {
    const at = new Date(self.change.at * 1000).toLocaleTimeString();
    setText('change', 'Last change at ' + at + ': ' + self.change.from + ' to ' +
      self.change.to + ', ' + self.change.why + '.');
  }
  const rows = Object.entries(routes).sort((a, b) => b[1].rate - a[1].rate);
  $('routes').replaceChildren(...rows.map(([name, r]) =>
    row([name, fmt(r.rate), r.p99 === null ? '-' : fmt(r.p99, r.p99 < 10 ? 1 : 0)])));
  $('fleet').replaceChildren(...doc.fleet.map((f) => {
    const stale = doc.t - f.t >= STALE_MS;
    return row([f.instance + (f.instance === doc.self ? ' (this one)' : '') +
      (stale ? ' (stopped?)' : ''), f.mode, fmt(routeRate(f)), fmt(loginRate(f)),
    f.sample ? fmt(f.sample.hash_wait_ms) + ' ms' : '-', fmt(f.queued)], stale ? 'stale' : '');
  }));
}

function handle(block) {
  let data = '';
  for (const line of block.split('\n'))
    if (line.startsWith('data:')) data += line.slice(5).replace(/^ /, '');
  if (data) render(JSON.parse(data));
}

function later(why) {
  setText('status', why + '; again in 2 s');
  clearTimeout(retryTimer);
  retryTimer = setTimeout(connect, 2000);
}

async function connect() {
  if (!token()) return;
  if (ctl) ctl.abort();
  ctl = new AbortController();
  let res;
  try {
    res = await fetch('/admin/stream', {
      headers: { Authorization: 'Bearer ' + token(), Accept: 'text/event-stream' },
      cache: 'no-store', signal: ctl.signal,
    });
  } catch (e) {
    if (e.name !== 'AbortError') later('not connected');
    return;
  }
  if (res.status === 401) { signOut('The admin token was refused.'); return; }
  if (!res.ok || !res.body) { later('the server answered ' + res.status); return; }
  setText('status', 'live');
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        handle(buf.slice(0, i));
        buf = buf.slice(i + 2);
      }
    }
  } catch (e) {
    if (e.name === 'AbortError') return;
  }
  later('the stream ended');
}

async function loadEvents() {
  const res = await api('GET', '/admin/events');
  if (!res.ok) return;
  const list = await res.json();
  const now = Date.now() / 1000;
  const events = list.map((x) => x.event).filter((e) => e.at + e.duration > now);
  events.sort((a, b) => a.at - b.at);
  $('events').replaceChildren(...events.map((e) => {
    const li = document.createElement('li');
    li.textContent = e.name + ': ' + new Date(e.at * 1000).toLocaleString() + ', ' +
      e.expect + 'x for ' + Math.round(e.duration / 60) + ' min';
    return li;
  }));
}

async function answer(res, ok) {
  if (res.ok) { notice(ok); return; }
  let why = 'HTTP ' + res.status;
  try { why = (await res.json()).error_description || why; } catch (e) { /* not JSON */ }
  notice('Refused: ' + why);
}

function show(signedIn) {
  $('signin').hidden = signedIn;
  $('console').hidden = !signedIn;
  $('signout').hidden = !signedIn;
}

function signOut(why) {
  sessionStorage.removeItem(KEY);
  if (ctl) ctl.abort();
  clearTimeout(retryTimer);
  show(false);
  setText('status', 'not connected');
  setText('signin-error', why || '');
}

function start() {
  show(true);
  connect();
  loadEvents();
}

document.addEventListener('DOMContentLoaded', () => {
  $('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, $('token').value);
    $('token').value = '';
    setText('signin-error', '');
    start();
  });
  $('signout').addEventListener('click', () => signOut(''));
  $('pin-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const mode = $('pin-mode').value;
    answer(await api('PUT', '/admin/policy', { mode }),
      mode === 'auto' ? 'The mode is automatic again.' : 'Pinned: ' + mode + '.');
  });
  $('event-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const res = await api('POST', '/admin/events',
      { name: $('ev-name').value, at: $('ev-at').value, expect: $('ev-expect').value });
    await answer(res, 'Announced.');
    loadEvents();
  });
  $('unlock-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = $('unlock-user').value;
    answer(await api('POST', '/admin/users/' + encodeURIComponent(name) + '/unlock'),
      'Unlocked ' + name + '.');
  });
  if (token()) start(); else show(false);
});
