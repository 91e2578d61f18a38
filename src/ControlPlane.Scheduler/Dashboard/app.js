// ControlPlane dashboard: hand-written, no build step. It talks to the scheduler's public JSON API only
// (the google.api.http routes of RunService, AdminService and AuthService.WhoAmI), with the same tokens and roles.

const TOKEN_KEY = 'cp-token';
const RUN = '/controlplane.v1.RunService/';
const ADMIN = '/controlplane.v1.AdminService/';
const TERMINAL_RUN = new Set(['RUN_STATE_SUCCEEDED', 'RUN_STATE_FAILED', 'RUN_STATE_CANCELLED']);
const RUN_STATES = ['PENDING', 'RUNNING', 'PAUSED', 'SUCCEEDED', 'FAILED', 'CANCELLING', 'CANCELLED'];
const MAX_LOG_LINES = 5000;
const GRPC_CODES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL',
  'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];

const session = { token: sessionStorage.getItem(TOKEN_KEY), who: null };

// ---- API -------------------------------------------------------------------------------------------------------

/** An error answered by the API ({code, message, details[]}) or met on the way, told in words. */
class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `the scheduler answered HTTP ${status}`);
    this.status = status;
    this.code = typeof body?.code === 'number' ? body.code : null;
    this.details = Array.isArray(body?.details) ? body.details : [];
  }

  get codeName() { return this.code === null ? `HTTP ${this.status}` : (GRPC_CODES[this.code] || `code ${this.code}`); }

  /** The message, then each field violation of a BadRequest as "field: description". */
  get lines() {
    const lines = [this.message];
    for (const detail of this.details) {
      if (String(detail['@type']).endsWith('google.rpc.BadRequest')) {
        for (const v of detail.fieldViolations || []) lines.push(`${v.field || '(request)'}: ${v.description}`);
      }
    }
    return lines;
  }

  get reason() {
    const info = this.details.find((d) => String(d['@type']).endsWith('google.rpc.ErrorInfo'));
    return info?.reason || '';
  }
}

function headers(json) {
  const h = { Accept: 'application/json' };
  if (json) h['Content-Type'] = 'application/json';
  if (session.token) h.Authorization = `Bearer ${session.token}`;
  return h;
}

async function readError(response) {
  let body = null;
  try { body = await response.json(); } catch { /* not JSON: say the HTTP status */ }
  return new ApiError(response.status, body || { message: `the scheduler answered HTTP ${response.status} ${response.statusText}`.trim() });
}

/** One call: the response when the scheduler answered 2xx; otherwise an ApiError (a 401 asks for a token again). */
async function send(method, path, body, signal) {
  let response;
  try {
    response = await fetch(path, { method, headers: headers(body !== undefined), body: body === undefined ? undefined : JSON.stringify(body), signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, { message: `cannot reach the scheduler (${e.message})` });
  }
  if (!response.ok) {
    const error = await readError(response);
    if (response.status === 401) onUnauthenticated(error);
    throw error;
  }
  return response;
}

async function api(method, path, body, signal) {
  return (await send(method, path, body, signal)).json();
}

/**
 * A server stream: one response whose body is a sequence of JSON objects (newline-delimited). Calls onMessage for
 * each; resolves when the server ends the stream, rejects with an ApiError when it ends with an error.
 */
async function stream(method, path, body, signal, onMessage) {
  const response = await send(method, path, body, signal);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const scanner = new JsonScanner();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    for (const text of scanner.push(decoder.decode(value, { stream: true }))) {
      const message = JSON.parse(text);
      if (typeof message.code === 'number' && 'message' in message && Object.keys(message).every((k) => ['code', 'message', 'details'].includes(k))) {
        throw new ApiError(200, message);
      }
      onMessage(message);
    }
  }
}

/** Cuts a text stream into whole top-level JSON objects, whether or not they are separated by newlines. */
class JsonScanner {
  constructor() { this.buffer = ''; this.depth = 0; this.inString = false; this.escaped = false; this.start = -1; this.pos = 0; }

  push(chunk) {
    this.buffer += chunk;
    const out = [];
    for (; this.pos < this.buffer.length; this.pos++) {
      const c = this.buffer[this.pos];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') this.inString = false;
      } else if (c === '"') {
        this.inString = true;
      } else if (c === '{' || c === '[') {
        if (this.depth++ === 0) this.start = this.pos;
      } else if (c === '}' || c === ']') {
        if (--this.depth === 0) out.push(this.buffer.slice(this.start, this.pos + 1));
      }
    }
    if (this.depth === 0) { this.buffer = ''; this.pos = 0; }
    return out;
  }
}

const can = (method) => !session.who?.authenticationEnabled || (session.who.allowedMethods || []).includes(method);

// ---- Formatting ------------------------------------------------------------------------------------------------

const enumName = (value, prefix) => (value || `${prefix}UNSPECIFIED`).replace(prefix, '');
const words = (name) => name.charAt(0) + name.slice(1).toLowerCase().replaceAll('_', ' ');
const runStateName = (run) => enumName(run.state, 'RUN_STATE_');
const stepStateName = (step) => enumName(step.state, 'STEP_STATE_');

function duration(ms) {
  if (!(ms >= 0)) return '—';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

const time = (value) => (value ? Date.parse(value) : NaN);
const ago = (value) => (value ? `${duration(Date.now() - time(value))} ago` : '—');
const clock = (value) => (value ? new Date(value).toLocaleTimeString() : '—');

function runDuration(run) {
  if (!run.startedAt) return '—';
  const end = run.finishedAt ? time(run.finishedAt) : Date.now();
  return duration(end - time(run.startedAt));
}

function protoDuration(value) {
  if (!value) return '—';
  const seconds = parseFloat(value);
  if (!(seconds >= 0)) return '—';
  return seconds < 1 ? `${Math.round(seconds * 1000)} ms` : `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
}

// ---- DOM helpers ------------------------------------------------------------------------------------------------

/** Builds an element; text goes in as text, never as markup. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'class') node.setAttribute('class', value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replaces a node's children, leaving out the absent ones. */
const fill = (node, ...children) => node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));

const pill = (kind, name) => el('span', { class: `pill state-${name.toLowerCase()}`, dataset: { kind } }, words(name));

function labelChips(labels) {
  const entries = Object.entries(labels || {});
  if (entries.length === 0) return el('span', { class: 'muted' }, '—');
  return el('span', { class: 'chips' }, entries.map(([k, v]) => el('span', { class: 'chip' }, `${k}=${v}`)));
}

function errorBox(error, title) {
  const lines = error instanceof ApiError ? error.lines : [String(error?.message || error)];
  const code = error instanceof ApiError ? error.codeName : '';
  return el('div', { class: 'error-box', role: 'alert' },
    el('strong', {}, title || 'Something went wrong', code ? ` (${code})` : ''),
    el('ul', {}, lines.map((line) => el('li', {}, line))));
}

function toast(text, kind = 'info', error) {
  const node = el('div', { class: `toast toast-${kind}` }, el('div', {}, text));
  if (error) node.append(el('div', { class: 'toast-detail' }, (error instanceof ApiError ? error.lines : [String(error.message || error)]).join(' · ')));
  const close = el('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss', onclick: () => node.remove() }, '×');
  node.prepend(close);
  document.getElementById('toasts').append(node);
  setTimeout(() => node.remove(), kind === 'error' ? 15000 : 5000);
}

/** Runs an action, says how it went; errors stay on screen in words. */
async function act(label, work) {
  try {
    await work();
    toast(`${label}: done`, 'ok');
  } catch (e) {
    if (e.name !== 'AbortError') toast(`${label} failed`, 'error', e);
  }
}

// ---- Authentication ---------------------------------------------------------------------------------------------

let signInWaiters = [];

function onUnauthenticated(error) {
  if (session.who && !session.who.authenticationEnabled) return;
  showTokenDialog(session.token ? error : null);
}

function showTokenDialog(error) {
  const dialog = document.getElementById('token-dialog');
  const message = document.getElementById('token-error');
  message.hidden = !error;
  message.textContent = error ? `${error.lines.join(' ')}` : '';
  if (!dialog.open) dialog.showModal();
  document.getElementById('token-input').focus();
}

function waitForSignIn() {
  return new Promise((resolve) => signInWaiters.push(resolve));
}

async function whoAmI() {
  const response = await fetch('/v1/auth/whoami', { headers: headers(false) });
  if (!response.ok) throw await readError(response);
  return response.json();
}

/** Asks WhoAmI until it answers: with authentication off at once, else after a token the scheduler accepts. */
async function authenticate() {
  for (;;) {
    try {
      session.who = await whoAmI();
      break;
    } catch (e) {
      if (e.status !== 401) {
        renderFatal(e);
        await new Promise((r) => setTimeout(r, 3000));
        continue;
      }
      showTokenDialog(session.token ? e : null);
      await waitForSignIn();
    }
  }
  document.getElementById('token-dialog').close();
  renderIdentity();
}

function setupTokenDialog() {
  document.getElementById('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const value = document.getElementById('token-input').value.trim();
    if (!value) return;
    session.token = value;
    sessionStorage.setItem(TOKEN_KEY, value);
    const waiters = signInWaiters;
    signInWaiters = [];
    waiters.forEach((w) => w());
    if (waiters.length === 0) authenticate().then(route);
  });
  document.getElementById('token-dialog').addEventListener('cancel', (event) => event.preventDefault());
  document.getElementById('sign-out').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    session.token = null;
    session.who = null;
    location.hash = '#/runs';
    location.reload();
  });
}

function renderIdentity() {
  const who = session.who;
  const identity = document.getElementById('identity');
  identity.replaceChildren();
  if (!who.authenticationEnabled) {
    identity.append(el('span', { class: 'badge badge-warn', title: 'This scheduler checks no token: anyone who reaches it may do anything.' }, 'authentication off'));
  } else {
    const role = enumName(who.role, 'TOKEN_ROLE_').toLowerCase();
    fill(identity, el('span', { class: 'badge' }, who.tokenName || 'token'), el('span', { class: 'badge badge-role' }, role),
      who.namespace && who.namespace !== '*' ? el('span', { class: 'badge' }, `namespace ${who.namespace}`) : null);
  }
  document.getElementById('sign-out').hidden = !who.authenticationEnabled;
  document.getElementById('submit-button').hidden = !can(`${RUN}SubmitRun`);
}

// ---- Submit a pipeline file -------------------------------------------------------------------------------------

function setupSubmit() {
  const button = document.getElementById('submit-button');
  const input = document.getElementById('submit-file');
  button.addEventListener('click', () => input.click());
  input.addEventListener('change', async () => {
    const file = input.files[0];
    input.value = '';
    if (!file) return;
    try {
      const text = await file.text();
      const response = await api('POST', '/v1/runs', { pipelineYaml: text, pipelineFileName: file.name });
      toast(`Submitted ${file.name}: run ${response.run.id}`, 'ok');
      location.hash = `#/runs/${encodeURIComponent(response.run.id)}`;
    } catch (e) {
      toast(`Submitting ${file.name} failed`, 'error', e);
    }
  });
}

// ---- Views ------------------------------------------------------------------------------------------------------

/** The mounted view's clean-up (abort its streams, stop its timers). */
let unmount = () => {};

function route() {
  unmount();
  const hash = location.hash || '#/runs';
  const view = document.getElementById('view');
  view.replaceChildren();
  const [path, query] = hash.slice(1).split('?');
  const params = new URLSearchParams(query || '');
  const parts = path.split('/').filter(Boolean);
  let section = parts[0] || 'runs';
  if (parts[0] === 'runs' && parts[1]) {
    unmount = runPage(view, decodeURIComponent(parts[1]));
  } else if (parts[0] === 'agents') {
    unmount = agentsPage(view);
  } else if (parts[0] === 'queues') {
    unmount = queuesPage(view);
  } else {
    section = 'runs';
    unmount = runsPage(view, params);
  }
  for (const link of document.querySelectorAll('[data-nav]')) link.classList.toggle('active', link.dataset.nav === section);
}

function renderFatal(error) {
  document.getElementById('view').replaceChildren(errorBox(error, 'The scheduler cannot be reached'));
}

/** Keeps a stream open: reconnects after it ends or fails (with a growing pause), until aborted. */
function keepStreaming(signal, open, onError, onConnected) {
  let pause = 500;
  (async () => {
    while (!signal.aborted) {
      try {
        const ended = await open(() => { pause = 500; onConnected?.(); });
        if (ended === 'done') return;
      } catch (e) {
        if (signal.aborted || e.name === 'AbortError') return;
        if (onError(e) === 'stop') return;
      }
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 2, 10000);
    }
  })();
}

// ---- Runs list --------------------------------------------------------------------------------------------------

function runsPage(view, params) {
  const abort = new AbortController();
  const filterState = params.get('state') || '';
  const filterLabel = params.get('label') || '';
  const runs = new Map();
  let cursor = '';
  let caughtUp = false;

  const stateSelect = el('select', { id: 'filter-state', 'aria-label': 'State' },
    el('option', { value: '' }, 'Any state'),
    RUN_STATES.map((s) => el('option', { value: s, selected: s === filterState }, words(s))));
  const labelInput = el('input', { id: 'filter-label', type: 'search', placeholder: 'label: key=value, key2=value2', value: filterLabel, 'aria-label': 'Labels' });
  const applyFilter = () => {
    const q = new URLSearchParams();
    if (stateSelect.value) q.set('state', stateSelect.value);
    if (labelInput.value.trim()) q.set('label', labelInput.value.trim());
    location.hash = `#/runs${q.toString() ? `?${q}` : ''}`;
  };
  stateSelect.addEventListener('change', applyFilter);
  labelInput.addEventListener('keydown', (e) => { if (e.key === 'Enter') applyFilter(); });

  const labels = {};
  const labelProblems = [];
  for (const part of filterLabel.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) labelProblems.push(`"${part}" is not key=value`);
    else labels[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }

  const status = el('span', { class: 'live', id: 'runs-live' }, 'connecting…');
  const notice = el('div', { class: 'notice-area' });
  const body = el('tbody', { id: 'runs-body' });
  const empty = el('div', { class: 'empty', hidden: true }, 'No runs match. Submit a pipeline file, or widen the filter.');
  view.append(
    el('div', { class: 'page-head' }, el('h1', {}, 'Runs'), status,
      el('div', { class: 'filters' }, stateSelect, labelInput, el('button', { type: 'button', onclick: applyFilter }, 'Filter'))),
    notice,
    el('div', { class: 'card table-card' },
      el('table', { class: 'table runs-table' },
        el('thead', {}, el('tr', {}, el('th', {}, 'State'), el('th', {}, 'Name'), el('th', {}, 'Labels'), el('th', {}, 'Age'), el('th', {}, 'Duration'))),
        body),
      empty));

  if (labelProblems.length) notice.append(errorBox({ message: `Label filter: ${labelProblems.join('; ')}` }, 'The filter was not applied'));

  const render = () => {
    const sorted = [...runs.values()].sort((a, b) => time(b.createdAt) - time(a.createdAt));
    body.replaceChildren(...sorted.map((run) => el('tr', {
      class: 'clickable', dataset: { runId: run.id, state: runStateName(run) }, onclick: () => { location.hash = `#/runs/${encodeURIComponent(run.id)}`; },
    },
    el('td', {}, pill('run', runStateName(run))),
    el('td', {}, el('a', { href: `#/runs/${encodeURIComponent(run.id)}`, class: 'run-name' }, run.name || '(unnamed)'), el('div', { class: 'mono muted small' }, run.id)),
    el('td', {}, labelChips(run.labels)),
    el('td', { class: 'nowrap', dataset: { age: run.createdAt || '' } }, ago(run.createdAt)),
    el('td', { class: 'nowrap', dataset: { dur: run.id } }, runDuration(run)))));
    empty.hidden = runs.size > 0 || !caughtUp;
  };
  const tick = setInterval(() => {
    for (const cell of body.querySelectorAll('[data-age]')) cell.textContent = ago(cell.dataset.age);
    for (const cell of body.querySelectorAll('[data-dur]')) {
      const run = runs.get(cell.dataset.dur);
      if (run) cell.textContent = runDuration(run);
    }
  }, 1000);

  let pending = false;
  const scheduleRender = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; render(); });
  };

  const request = { snapshotSize: 200 };
  if (filterState) request.state = `RUN_STATE_${filterState}`;
  if (Object.keys(labels).length) request.labels = labels;

  keepStreaming(abort.signal, async (connected) => {
    await stream('POST', '/v1/runs:watch', { ...request, afterCursor: cursor }, abort.signal, (message) => {
      if (message.reset) runs.clear();
      if (message.run) {
        const matches = (!request.state || message.run.state === request.state);
        if (matches) runs.set(message.run.id, message.run); else runs.delete(message.run.id);
      }
      if (message.deletedRunId) runs.delete(message.deletedRunId);
      if (message.cursor) cursor = message.cursor;
      if (message.caughtUp) {
        caughtUp = true;
        connected();
        notice.replaceChildren();
        status.textContent = 'live';
        status.className = 'live live-on';
      }
      scheduleRender();
    });
  }, (e) => {
    status.textContent = 'reconnecting…';
    status.className = 'live live-off';
    notice.replaceChildren(errorBox(e, 'The live run list is interrupted; reconnecting'));
    return e.status === 401 ? 'stop' : undefined;
  });

  return () => { abort.abort(); clearInterval(tick); };
}

// ---- A run ------------------------------------------------------------------------------------------------------

function runPage(view, runId) {
  const abort = new AbortController();
  const model = { run: null, steps: new Map(), logs: new Map(), drafts: new Map(), selected: null, lastSeq: '0' };
  const head = el('div', { class: 'run-head' });
  const notice = el('div', { class: 'notice-area' });
  const graph = el('div', { class: 'card dag-card' }, el('div', { class: 'card-title' }, 'Steps'), el('div', { class: 'dag', id: 'dag' }));
  const panel = el('div', { class: 'card step-panel', id: 'step-panel' }, el('p', { class: 'muted' }, 'Select a step to see its log, history and output.'));
  view.append(el('a', { href: '#/runs', class: 'back' }, '← All runs'), head, notice, el('div', { class: 'run-body' }, graph, panel));

  let refreshTimer = null;
  const refresh = () => {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(load, 150);
  };

  async function load() {
    try {
      const { run } = await api('GET', `/v1/runs/${encodeURIComponent(runId)}`, undefined, abort.signal);
      model.run = run;
      for (const step of run.steps || []) model.steps.set(step.id, step);
      renderHead();
      renderGraph();
      renderPanel();
    } catch (e) {
      if (e.name === 'AbortError') return;
      notice.replaceChildren(errorBox(e, `Run ${runId} cannot be shown`));
    }
  }

  function renderHead() {
    const run = model.run;
    const state = runStateName(run);
    const actions = el('div', { class: 'actions' });
    const button = (label, method, path, enabled, body = {}, kind = '') => {
      if (!can(RUN + method)) return;
      actions.append(el('button', {
        type: 'button', class: kind, disabled: !enabled, dataset: { action: method },
        onclick: () => act(`${label} ${run.name || run.id}`, async () => { await api('POST', `/v1/runs/${encodeURIComponent(run.id)}:${path}`, body); refresh(); }),
      }, label));
    };
    button('Pause', 'PauseRun', 'pause', state === 'RUNNING' || state === 'PENDING');
    button('Resume', 'ResumeRun', 'resume', state === 'PAUSED');
    button('Retry', 'RetryRun', 'retry', state === 'FAILED' || state === 'CANCELLED');
    button('Cancel', 'CancelRun', 'cancel', !TERMINAL_RUN.has(run.state) && state !== 'CANCELLING', { reason: 'cancelled from the dashboard' }, 'danger');
    const steps = [...model.steps.values()];
    const done = steps.filter((s) => ['SUCCEEDED', 'SKIPPED'].includes(stepStateName(s))).length;
    fill(head,
      el('div', { class: 'run-title' }, el('h1', {}, run.name || '(unnamed run)'), pill('run', state), el('span', { class: 'mono muted' }, run.id)),
      actions,
      el('dl', { class: 'facts' },
        fact('Steps', `${done} of ${steps.length} done`),
        fact('Created', `${clock(run.createdAt)} (${ago(run.createdAt)})`),
        fact('Duration', runDuration(run), { dur: '1' }),
        fact('Labels', labelChips(run.labels)),
        Object.keys(run.budgetUsed || {}).length ? fact('Budget used', Object.entries(run.budgetUsed).map(([k, v]) => `${k} ${v}`).join(', ')) : null),
      run.error ? el('div', { class: 'error-box' }, el('strong', {}, 'Run error: '), run.error) : null);
  }

  function fact(name, value, dataset) {
    return el('div', { class: 'fact' }, el('dt', {}, name), el('dd', { dataset }, value));
  }

  // The DAG: steps in layers by `needs` (a step sits one layer right of its last dependency), edges as curves.
  function renderGraph() {
    const specs = model.run.spec?.steps || [];
    const layer = new Map();
    const depth = (id, seen = new Set()) => {
      if (layer.has(id)) return layer.get(id);
      if (seen.has(id)) return 0;
      seen.add(id);
      const spec = specs.find((s) => s.id === id);
      const d = spec?.needs?.length ? 1 + Math.max(...spec.needs.map((n) => depth(n, seen))) : 0;
      layer.set(id, d);
      return d;
    };
    specs.forEach((s) => depth(s.id));
    const columns = [];
    for (const spec of specs) (columns[layer.get(spec.id)] ||= []).push(spec);
    const W = 188; const H = 74; const GX = 50; const GY = 18; const PAD = 16;
    const pos = new Map();
    const tallest = Math.max(1, ...columns.map((c) => c.length));
    columns.forEach((column, x) => column.forEach((spec, y) => {
      const offset = ((tallest - column.length) * (H + GY)) / 2;
      pos.set(spec.id, { x: PAD + x * (W + GX), y: PAD + offset + y * (H + GY) });
    }));
    const width = PAD * 2 + columns.length * W + Math.max(0, columns.length - 1) * GX;
    const height = PAD * 2 + tallest * H + (tallest - 1) * GY;
    const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'dag-svg', role: 'img', 'aria-label': 'Step graph' },
      svg('defs', {}, svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: '9', refY: '5', markerWidth: '7', markerHeight: '7', orient: 'auto-start-reverse' },
        svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'edge-head' }))));
    for (const spec of specs) {
      for (const need of spec.needs || []) {
        const a = pos.get(need); const b = pos.get(spec.id);
        if (!a || !b) continue;
        const x1 = a.x + W; const y1 = a.y + H / 2; const x2 = b.x - 2; const y2 = b.y + H / 2; const mid = (x1 + x2) / 2;
        const upstream = stepStateName(model.steps.get(need) || {});
        root.append(svg('path', { d: `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`, class: `edge ${upstream === 'SUCCEEDED' ? 'edge-done' : ''}`, 'marker-end': 'url(#arrow)' }));
      }
    }
    for (const spec of specs) {
      const step = model.steps.get(spec.id) || { id: spec.id };
      const state = stepStateName(step);
      const p = pos.get(spec.id);
      const gate = spec.kind === 'STEP_KIND_GATE';
      const progress = Math.max(0, Math.min(100, step.progress || 0));
      const shownProgress = state === 'SUCCEEDED' ? 100 : progress;
      const detail = gate ? (state === 'WAITING_APPROVAL' ? 'waiting for approval' : step.decidedBy ? `decided by ${step.decidedBy}` : 'gate')
        : [step.attempt ? `attempt ${step.attempt}` : null, step.agentId ? `on ${step.agentId}` : null].filter(Boolean).join(' · ') || (spec.queue ? `queue ${spec.queue}` : spec.framework || '');
      const node = svg('g', {
        class: `node state-${state.toLowerCase()} ${model.selected === spec.id ? 'selected' : ''}`,
        transform: `translate(${p.x} ${p.y})`, tabindex: '0', role: 'button', 'data-step': spec.id, 'data-state': state,
        onclick: () => select(spec.id),
        onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') select(spec.id); },
      },
      svg('title', {}, `${spec.id}: ${words(state)}${step.blockedReason ? ` — ${step.blockedReason}` : ''}`),
      svg('rect', { class: 'node-box', width: W, height: H, rx: '8' }),
      svg('rect', { class: 'node-stripe', width: '5', height: H, rx: '2' }),
      svg('text', { class: 'node-id', x: '16', y: '22' }, clip(spec.id, 20)),
      svg('text', { class: 'node-kind', x: W - 12, y: '22', 'text-anchor': 'end' }, gate ? 'GATE' : ''),
      svg('text', { class: 'node-state', x: '16', y: '41' }, words(state)),
      svg('text', { class: 'node-detail', x: '16', y: '57' }, clip(detail, 28)),
      gate ? null : svg('rect', { class: 'node-track', x: '16', y: H - 11, width: W - 32, height: '4', rx: '2' }),
      gate ? null : svg('rect', { class: 'node-bar', x: '16', y: H - 11, width: ((W - 32) * shownProgress) / 100, height: '4', rx: '2', 'data-progress': String(Math.round(shownProgress)) }));
      root.append(node);
    }
    // Drawn at natural size, shrunk to the card's width when wider (a long pipeline stays whole on a laptop screen).
    root.style.width = `${width}px`;
    root.style.maxWidth = '100%';
    document.getElementById('dag').replaceChildren(root);
  }

  function clip(text, n) { return text.length > n ? `${text.slice(0, n - 1)}…` : text; }

  function select(stepId) {
    model.selected = stepId;
    model.tab = model.tab || 'log';
    renderGraph();
    renderPanel(true);
  }

  let outputFor = null;
  function renderPanel(fresh) {
    if (!model.selected || !model.run) return;
    const spec = (model.run.spec?.steps || []).find((s) => s.id === model.selected) || {};
    const step = model.steps.get(model.selected) || { id: model.selected };
    const state = stepStateName(step);
    const gate = spec.kind === 'STEP_KIND_GATE';
    const tabs = ['log', 'history', 'output'];
    const content = el('div', { class: 'tab-content', id: 'tab-content' });
    const existingLog = panel.querySelector('#step-log');
    const atBottom = !existingLog || existingLog.scrollTop + existingLog.clientHeight >= existingLog.scrollHeight - 8;
    fill(panel,
      el('div', { class: 'step-head' }, el('h2', {}, step.id), pill('step', state), gate ? el('span', { class: 'chip' }, 'gate') : null),
      el('dl', { class: 'facts compact' },
        gate ? null : fact('Attempt', step.attempt ? String(step.attempt) : '—'),
        gate ? null : fact('Agent', step.agentId || '—'),
        gate ? null : fact('Progress', `${Math.round(step.progress || 0)} %${step.progressMessage ? ` — ${step.progressMessage}` : ''}`),
        fact('Started', step.startedAt ? clock(step.startedAt) : '—'),
        fact('Finished', step.finishedAt ? clock(step.finishedAt) : '—'),
        spec.needs?.length ? fact('Needs', spec.needs.join(', ')) : null),
      step.blockedReason ? el('div', { class: 'notice', id: 'blocked-reason' }, el('strong', {}, 'Waiting: '), step.blockedReason) : null,
      step.error ? el('div', { class: 'error-box' }, el('strong', {}, 'Error: '), step.error) : null,
      gate ? gateBox(step, state) : null,
      el('div', { class: 'tabs', role: 'tablist' }, tabs.map((t) => el('button', {
        type: 'button', role: 'tab', class: model.tab === t ? 'tab active' : 'tab', 'aria-selected': String(model.tab === t), dataset: { tab: t },
        onclick: () => { model.tab = t; outputFor = null; renderPanel(true); },
      }, words(t.toUpperCase())))),
      content);
    if (model.tab === 'log') {
      const lines = model.logs.get(step.id) || [];
      const log = el('pre', { class: 'log', id: 'step-log' });
      log.textContent = lines.length ? lines.join('\n') : '';
      content.append(lines.length ? log : el('p', { class: 'muted' }, gate ? 'A gate has no log.' : 'No log lines yet; they appear here as the step writes them.'));
      if (lines.length) log.scrollTop = atBottom || fresh ? log.scrollHeight : (existingLog?.scrollTop || 0);
      if (step.logLinesDropped && step.logLinesDropped !== '0') content.append(el('p', { class: 'muted small' }, `${step.logLinesDropped} earlier lines were dropped by the scheduler's log cap.`));
    } else if (model.tab === 'history') {
      const history = step.history || [];
      content.append(history.length ? el('table', { class: 'table compact' },
        el('thead', {}, el('tr', {}, el('th', {}, 'Time'), el('th', {}, 'From'), el('th', {}, 'To'), el('th', {}, 'Attempt'), el('th', {}, 'Reason'))),
        el('tbody', {}, history.map((h) => el('tr', {}, el('td', { class: 'nowrap' }, clock(h.time)), el('td', {}, words(h.fromState || '—')),
          el('td', {}, words(h.toState || '—')), el('td', {}, h.attempt || '—'), el('td', {}, h.reason || ''))))) : el('p', { class: 'muted' }, 'No history yet.'));
    } else {
      content.append(el('p', { class: 'muted' }, 'Loading output…'));
      if (fresh || outputFor !== `${step.id}:${state}`) loadOutput(step, content);
      outputFor = `${step.id}:${state}`;
    }
  }

  function gateBox(step, state) {
    if (state !== 'WAITING_APPROVAL') {
      return step.decidedBy || step.decisionComment
        ? el('div', { class: 'notice' }, `Decided by ${step.decidedBy || 'someone'}${step.decisionComment ? `: “${step.decisionComment}”` : ''}`) : null;
    }
    if (!can(`${RUN}ApproveGate`)) return el('div', { class: 'notice' }, 'This gate waits for a decision; your token may not decide it.');
    // The panel is redrawn as events arrive: the comment being typed survives it, focus included.
    const previous = panel.querySelector('#gate-comment');
    const comment = el('textarea', { id: 'gate-comment', rows: '2', placeholder: 'Comment (kept in the step history)', oninput: () => { model.drafts.set(step.id, comment.value); } });
    comment.value = model.drafts.get(step.id) || '';
    if (previous && document.activeElement === previous) queueMicrotask(() => { comment.focus(); comment.setSelectionRange(previous.selectionStart, previous.selectionEnd); });
    const decide = (decision) => act(decision === 'GATE_DECISION_APPROVE' ? `Approve ${step.id}` : `Reject ${step.id}`, async () => {
      await api('POST', `/v1/runs/${encodeURIComponent(runId)}/steps/${encodeURIComponent(step.id)}:decide`,
        { decision, comment: comment.value, decidedBy: session.who?.tokenName || 'dashboard' });
      refresh();
    });
    return el('div', { class: 'gate-box' }, el('strong', {}, 'This gate waits for your decision'), comment,
      el('div', { class: 'actions' },
        el('button', { type: 'button', class: 'primary', id: 'gate-approve', onclick: () => decide('GATE_DECISION_APPROVE') }, 'Approve'),
        el('button', { type: 'button', class: 'danger', id: 'gate-reject', onclick: () => decide('GATE_DECISION_REJECT') }, 'Reject')));
  }

  async function loadOutput(step, content) {
    try {
      const { output } = await api('GET', `/v1/runs/${encodeURIComponent(runId)}/steps/${encodeURIComponent(step.id)}/output`, undefined, abort.signal);
      content.replaceChildren(outputView(output || {}));
    } catch (e) {
      if (e.name === 'AbortError') return;
      content.replaceChildren(e.codeName === 'NOT_FOUND' ? el('p', { class: 'muted' }, e.message) : errorBox(e, 'The output cannot be read'));
    }
  }

  function outputView(output) {
    const parts = [];
    if (output.type) parts.push(el('p', { class: 'muted' }, `Type ${output.type}`));
    if (output.uri) parts.push(el('p', {}, 'Stored at ', el('code', {}, output.uri)));
    const bytes = Uint8Array.from(atob(output.data || ''), (c) => c.charCodeAt(0));
    if (bytes.length === 0 && !output.uri) parts.push(el('p', { class: 'muted' }, 'The step has no output.'));
    if (bytes.length) {
      let text = null;
      try { text = new TextDecoder('utf-8', { fatal: true }).decode(bytes); } catch { /* binary */ }
      if (text !== null && !/[\u0000-\u0008\u000e-\u001f]/.test(text)) {
        const shown = text.length > 65536 ? `${text.slice(0, 65536)}\n… (${bytes.length} bytes in all)` : text;
        parts.push(el('pre', { class: 'log output' }, shown));
      } else {
        const hex = [...bytes.slice(0, 64)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
        parts.push(el('p', {}, `Binary output, ${bytes.length} bytes. First bytes:`), el('pre', { class: 'log output' }, hex));
      }
    }
    return el('div', {}, parts);
  }

  // Live events: replayed from the start (logs included), then tailed; state changes fetch the run again.
  function apply(event) {
    model.lastSeq = event.seq || model.lastSeq;
    const logged = event.stepLogged;
    if (logged) {
      const lines = model.logs.get(logged.stepId) || [];
      if (lines.attempt && logged.attempt && lines.attempt !== logged.attempt) lines.push(`── attempt ${logged.attempt} ──`);
      lines.attempt = logged.attempt;
      for (const line of logged.lines || []) lines.push(enumName(logged.stream, 'LOG_STREAM_') === 'STDERR' ? `[stderr] ${line}` : line);
      if (lines.length > MAX_LOG_LINES) lines.splice(0, lines.length - MAX_LOG_LINES);
      model.logs.set(logged.stepId, lines);
      if (model.selected === logged.stepId && model.tab === 'log') appendLog(lines);
      return;
    }
    const progressed = event.stepProgressed;
    if (progressed) {
      const step = model.steps.get(progressed.stepId);
      if (step) { step.progress = progressed.percent || 0; step.progressMessage = progressed.message || ''; }
      scheduleGraph();
      return;
    }
    const changed = event.stepStateChanged;
    if (changed) {
      const step = model.steps.get(changed.stepId);
      if (step) {
        step.state = changed.toState;
        if (changed.attempt) step.attempt = changed.attempt;
        if (changed.agentId) step.agentId = changed.agentId;
      }
      scheduleGraph();
    }
    if (event.runStateChanged && model.run) model.run.state = event.runStateChanged.toState;
    refresh();
  }

  function appendLog(lines) {
    const log = panel.querySelector('#step-log');
    if (!log) { renderPanel(); return; }
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
    log.textContent = lines.join('\n');
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  let graphPending = false;
  function scheduleGraph() {
    if (graphPending || !model.run) return;
    graphPending = true;
    requestAnimationFrame(() => {
      graphPending = false;
      renderGraph();
      if (model.tab !== 'log') return;
      renderPanel();
    });
  }

  const tick = setInterval(() => {
    if (model.run) for (const cell of head.querySelectorAll('[data-dur]')) cell.textContent = runDuration(model.run);
  }, 1000);

  load().then(() => {
    if (!model.run) return;
    const first = (model.run.spec?.steps || []).find((s) => ['RUNNING', 'WAITING_APPROVAL', 'FAILED'].includes(stepStateName(model.steps.get(s.id) || {})));
    select((first || model.run.spec?.steps?.[0])?.id);
    keepStreaming(abort.signal, async (connected) => {
      connected();
      await stream('GET', `/v1/runs/${encodeURIComponent(runId)}:watch?afterSeq=${model.lastSeq}`, undefined, abort.signal, (message) => { if (message.event) apply(message.event); });
      return model.run && TERMINAL_RUN.has(model.run.state) ? 'done' : undefined;
    }, (e) => {
      notice.replaceChildren(errorBox(e, 'Live updates are interrupted; reconnecting'));
      return e.status === 401 || e.codeName === 'NOT_FOUND' ? 'stop' : undefined;
    }, () => notice.replaceChildren());
  });

  return () => { abort.abort(); clearInterval(tick); clearTimeout(refreshTimer); };
}

// ---- Agents -----------------------------------------------------------------------------------------------------

function poller(view, title, intro, load, render, period) {
  const abort = new AbortController();
  const status = el('span', { class: 'live' }, 'loading…');
  const notice = el('div', { class: 'notice-area' });
  const body = el('div', {});
  view.append(el('div', { class: 'page-head' }, el('h1', {}, title), status, el('p', { class: 'muted intro' }, intro)), notice, body);
  let timer = null;
  let updated = null;
  const run = async () => {
    try {
      const data = await load(abort.signal);
      notice.replaceChildren();
      render(body, data, run);
      updated = Date.now();
      showAge();
    } catch (e) {
      if (e.name === 'AbortError') return;
      notice.replaceChildren(errorBox(e, `${title} cannot be shown`));
    }
    if (!abort.signal.aborted) timer = setTimeout(run, period);
  };
  const showAge = () => {
    status.textContent = updated ? `updated ${duration(Date.now() - updated)} ago` : 'loading…';
    status.className = updated ? 'live live-on' : 'live';
  };
  const tick = setInterval(showAge, 1000);
  run();
  return () => { abort.abort(); clearTimeout(timer); clearInterval(tick); };
}

function agentsPage(view) {
  return poller(view, 'Agents', 'Connected agents, their slots and what they serve. Refreshes every 3 s.',
    (signal) => api('GET', '/v1/agents', undefined, signal),
    (body, data, again) => {
      const agents = (data.agents || []).sort((a, b) => a.agentId.localeCompare(b.agentId));
      if (!agents.length) { body.replaceChildren(el('div', { class: 'card empty' }, 'No agent has connected. Start one with cp-agent --scheduler ADDRESS.')); return; }
      body.replaceChildren(el('div', { class: 'card table-card' }, el('table', { class: 'table' },
        el('thead', {}, el('tr', {}, ['Agent', 'State', 'Slots', 'Queues', 'Labels', 'Frameworks', 'Last heartbeat', ''].map((h) => el('th', {}, h)))),
        el('tbody', {}, agents.map((agent) => {
          const state = enumName(agent.state, 'AGENT_STATE_');
          const used = agent.usedSlots || 0; const total = agent.slots || 0;
          return el('tr', { dataset: { agent: agent.agentId } },
            el('td', {}, el('strong', {}, agent.agentId), el('div', { class: 'muted small' }, agent.host || '')),
            el('td', {}, pill('agent', state)),
            el('td', {}, meter(used, total, `${used} / ${total}`)),
            el('td', {}, (agent.queues || []).length ? el('span', { class: 'chips' }, agent.queues.map((q) => el('span', { class: 'chip' }, q))) : el('span', { class: 'muted' }, 'default')),
            el('td', {}, labelChips(agent.labels)),
            el('td', {}, [...(agent.frameworks || []), ...(agent.handlers || []).map((h) => `dotnet:${h}`)].join(', ') || '—'),
            el('td', { class: 'nowrap' }, ago(agent.lastHeartbeatAt)),
            el('td', {}, can(`${ADMIN}DrainAgent`) && state === 'CONNECTED' ? el('button', {
              type: 'button', dataset: { action: 'DrainAgent' },
              onclick: () => act(`Drain ${agent.agentId}`, async () => { await api('POST', `/v1/agents/${encodeURIComponent(agent.agentId)}:drain`, {}); again(); }),
            }, 'Drain') : null));
        })))));
    }, 3000);
}

function meter(used, limit, text) {
  const fraction = limit > 0 ? Math.min(1, used / limit) : 0;
  const bar = el('span', { class: `meter-bar ${fraction >= 1 ? 'full' : ''}` });
  bar.style.width = `${Math.round(fraction * 100)}%`;
  return el('span', { class: 'meter' }, el('span', { class: 'meter-track' }, bar), el('span', { class: 'meter-text' }, text));
}

// ---- Queues and limits ------------------------------------------------------------------------------------------

function queuesPage(view) {
  return poller(view, 'Queues & limits', 'Ready steps per queue, how long they wait for an agent, and the concurrency caps in use. Refreshes every 3 s.',
    (signal) => api('GET', '/v1/stats', undefined, signal),
    (body, data) => {
      const queues = (data.queues || []).sort((a, b) => a.queue.localeCompare(b.queue));
      const slots = data.slots || [];
      body.replaceChildren(
        el('h2', { class: 'section' }, 'Queues'),
        queues.length ? el('div', { class: 'card table-card' }, el('table', { class: 'table', id: 'queues-table' },
          el('thead', {}, el('tr', {}, el('th', {}, 'Queue'), ['Ready', 'Running', 'Agents', 'Dispatch wait p50', 'Dispatch wait p95'].map((h) => el('th', { class: 'num' }, h)))),
          el('tbody', {}, queues.map((q) => el('tr', {},
            el('td', {}, el('strong', {}, q.queue)), el('td', { class: 'num' }, q.ready || '0'), el('td', { class: 'num' }, q.running || '0'),
            el('td', { class: 'num' }, q.agents || 0), el('td', { class: 'num' }, protoDuration(q.dispatchLatencyP50)), el('td', { class: 'num' }, protoDuration(q.dispatchLatencyP95)))))))
          : el('div', { class: 'card empty' }, 'No queue has steps or agents yet.'),
        el('h2', { class: 'section' }, 'Concurrency slots'),
        slots.length ? el('div', { class: 'card table-card' }, el('table', { class: 'table' },
          el('thead', {}, el('tr', {}, ['Kind', 'Name', 'In use'].map((h) => el('th', {}, h)))),
          el('tbody', {}, slots.map((s) => {
            const used = Number(s.used || 0); const limit = Number(s.limit || 0);
            return el('tr', {}, el('td', {}, s.kind), el('td', {}, el('strong', {}, s.name)),
              el('td', {}, limit > 0 ? meter(used, limit, `${used} / ${limit}`) : `${used} (no cap)`));
          }))))
          : el('div', { class: 'card empty' }, 'No slot is in use and no cap is set.'));
    }, 3000);
}

// ---- Start ------------------------------------------------------------------------------------------------------

async function start() {
  setupTokenDialog();
  setupSubmit();
  await authenticate();
  window.addEventListener('hashchange', route);
  route();
}

start();
