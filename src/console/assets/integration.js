// The integration desk (administrators): each provider's figures ($outbox-summary)
// at the top, the outbox by provider and status ($outbox, a page at a time with the
// answer's `next`), each message's Bundle, and resending ($resend) the selected
// messages after a confirmation that names those which will get a new id. The
// dead-letter queue is drawn by deadletter.js.

import { h, fill, errorArea, showError, clearError, focus, typing, section, ready, pushBack } from './dom.js';
import { t, lang } from './i18n.js';
import { fhir, post, parameters } from './api.js';
import { dateTime } from './format.js';
import { deadLetterSection, loadDeadLetters } from './deadletter.js';

const STATUSES = ['unroutable', 'failed', 'parked', 'pending', 'sent'];
const PAGE = 50;

// A Parameters part list as {name: value}; repeated names keep the first.
export function partsOf(list) {
  const out = {};
  for (const p of list || []) {
    if (p.name in out) continue;
    const key = Object.keys(p).find((k) => k.startsWith('value'));
    out[p.name] = p.part ? partsOf(p.part) : p.resource ?? (key ? p[key] : null);
  }
  return out;
}

export function named(answer, name) {
  return (answer?.parameter || []).filter((p) => p.name === name);
}

// A timestamp that is redrawn on a language switch.
export function when(iso) {
  return iso ? h('time', { dataset: { datetime: iso }, text: dateTime(iso, lang()) }) : t('int.none');
}

// A Duration in seconds, in words a person reads at a glance.
function age(d) {
  const s = Number(d?.value ?? 0);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

// `next` is an absolute URL of the gateway: fetched by its path, on this origin.
function samePath(next) {
  try { const u = new URL(next, location.href); return u.pathname + u.search; } catch { return next; }
}

export function render(el, params) {
  const ctx = { rows: [], selected: new Set(), busy: false, next: null, el: {} };
  ctx.provider = params.get('provider') || '';
  ctx.status = params.get('status') || '';
  el.replaceChildren(h('div', { class: 'desk', id: 'integration-desk', test: 'integration-desk' },
    h('h1', { class: 'desk-title', i18n: 'desk.integration' }),
    summarySection(ctx), outboxSection(ctx), deadLetterSection(ctx),
    h('p', { class: 'keys', i18n: 'int.keys' })));
  Promise.allSettled([loadSummary(ctx), loadOutbox(ctx, false)]).then(() => {
    ready('integration');
    loadDeadLetters(ctx);
  });
  return { dispose: () => { ctx.disposed = true; }, onKey: (e) => onKey(ctx, e) };
}

function onKey(ctx, e) {
  if (e.altKey && e.code === 'KeyS') { e.preventDefault(); askResend(ctx); return true; }
  if (!typing(e) && !e.altKey && !e.ctrlKey && e.key === 'r') {
    e.preventDefault();
    loadSummary(ctx); loadOutbox(ctx, false);
    return true;
  }
  return false;
}

// --- each provider's figures -------------------------------------------------------

function summarySection(ctx) {
  ctx.el.summary = h('tbody', { test: 'summary-rows' });
  ctx.el.summaryError = errorArea('summary-error');
  const head = ['int.provider', 'int.pending', 'int.unroutable', 'int.failed', 'int.parked', 'int.oldest', 'int.last-ack', 'int.lag', 'int.show'];
  return section('int-summary', 'int.summary', ctx.el.summaryError,
    h('table', { class: 'lines', test: 'summary-table' },
      h('thead', {}, h('tr', {}, head.map((k) => h('th', { scope: 'col', i18n: k })))), ctx.el.summary));
}

async function loadSummary(ctx) {
  try {
    const answer = await fhir('GET', '$outbox-summary');
    const rows = named(answer, 'provider').map((p) => partsOf(p.part));
    ctx.providers = rows.map((r) => r.provider);
    fill(ctx.el.summary, rows.map((r) => summaryRow(ctx, r)));
    fillProviders(ctx);
    clearError(ctx.el.summaryError);
  } catch (err) { showError(ctx.el.summaryError, err); }
}

function summaryRow(ctx, r) {
  const code = r.provider;
  const ack = r['last-acknowledgement'];
  const oldest = r['oldest-pending'];
  return h('tr', { test: `summary-${code}`, class: code === ctx.provider ? 'chosen' : null },
    h('th', { scope: 'row', text: code }),
    ['pending', 'unroutable', 'failed', 'parked'].map((s) => h('td', { class: 'num', test: `summary-${code}-${s}`, text: String(r[s] ?? 0) })),
    h('td', { test: `summary-${code}-oldest` }, oldest ? [when(oldest.created), ` (${age(oldest.age)})`] : t('int.none')),
    h('td', { test: `summary-${code}-ack` }, ack ? [when(ack.received), ` · ${ack.outcome}`] : t('int.none')),
    h('td', { class: 'num', test: `summary-${code}-lag`, text: age(r.lag) }),
    h('td', {}, h('button', { type: 'button', test: `pick-${code}`, i18n: 'int.show',
      'aria-label': `${t('int.show')} ${code}`, on: { click: () => pickProvider(ctx, code) } })));
}

function pickProvider(ctx, code) {
  ctx.provider = code;
  ctx.el.provider.value = code;
  loadOutbox(ctx, false);
  for (const tr of ctx.el.summary.children) tr.classList.toggle('chosen', tr.dataset.test === `summary-${code}`);
}

// --- the outbox ---------------------------------------------------------------

function outboxSection(ctx) {
  const provider = h('select', { id: 'filter-provider', test: 'filter-provider',
    on: { change: (e) => { ctx.provider = e.target.value; loadOutbox(ctx, false); } } });
  const status = h('select', { id: 'filter-status', test: 'filter-status',
    on: { change: (e) => { ctx.status = e.target.value; loadOutbox(ctx, false); } } },
  h('option', { value: '', i18n: 'int.all' }),
  STATUSES.map((s) => h('option', { value: s, i18n: `int.st.${s}`, selected: s === ctx.status })));
  const all = h('input', { type: 'checkbox', id: 'select-all', test: 'select-all', 'aria-label': t('int.select-all'),
    on: { change: (e) => selectAll(ctx, e.target.checked) } });
  Object.assign(ctx.el, {
    provider, all,
    list: h('tbody', { test: 'outbox-rows' }),
    more: h('button', { type: 'button', test: 'outbox-more', i18n: 'int.more', hidden: true, on: { click: () => loadOutbox(ctx, true) } }),
    resend: h('button', { type: 'button', class: 'primary', test: 'resend', disabled: true, on: { click: () => askResend(ctx) } }),
    confirm: h('div', { class: 'confirm', test: 'resend-confirm', role: 'alertdialog', hidden: true }),
    result: h('div', { class: 'summary', test: 'resend-result', 'aria-live': 'polite' }),
    detail: h('div', { class: 'detail', test: 'message-detail', hidden: true }),
    outboxError: errorArea('outbox-error'),
  });
  drawResendLabel(ctx);
  const head = [h('th', {}, all), ...['int.created', 'int.provider', 'int.event', 'int.focus', 'int.status', 'int.attempts', 'int.reason', 'int.open']
    .map((k) => h('th', { scope: 'col', i18n: k }))];
  return section('int-outbox', 'int.outbox',
    h('div', { class: 'row' },
      h('div', { class: 'field' }, h('label', { for: 'filter-provider', i18n: 'int.provider' }), provider),
      h('div', { class: 'field' }, h('label', { for: 'filter-status', i18n: 'int.status' }), status)),
    ctx.el.outboxError,
    h('table', { class: 'lines outbox', test: 'outbox-table' }, h('thead', {}, h('tr', {}, head)), ctx.el.list),
    ctx.el.more, h('div', { class: 'actions' }, ctx.el.resend), ctx.el.confirm, ctx.el.result, ctx.el.detail);
}

function fillProviders(ctx) {
  fill(ctx.el.provider, h('option', { value: '', i18n: 'int.all' }),
    (ctx.providers || []).map((p) => h('option', { value: p, text: p, selected: p === ctx.provider })));
}

async function loadOutbox(ctx, more) {
  const path = more && ctx.next ? samePath(ctx.next) : '$outbox';
  const params = more ? undefined : { provider: ctx.provider, status: ctx.status, _count: PAGE };
  try {
    const answer = await fhir('GET', path, { params });
    const rows = named(answer, 'message').map((p) => partsOf(p.part));
    ctx.next = named(answer, 'next')[0]?.valueUri || null;
    if (!more) { ctx.rows = []; ctx.selected.clear(); ctx.el.all.checked = false; }
    ctx.rows.push(...rows);
    const drawn = rows.map((r) => messageRow(ctx, r));
    if (more) ctx.el.list.append(...drawn); else fill(ctx.el.list, drawn.length ? drawn : emptyRow());
    ctx.el.more.hidden = !ctx.next;
    drawResendLabel(ctx);
    clearError(ctx.el.outboxError);
  } catch (err) { showError(ctx.el.outboxError, err); }
}

function emptyRow() {
  return h('tr', { test: 'outbox-empty' }, h('td', { colspan: 9, i18n: 'int.empty' }));
}

function messageRow(ctx, m) {
  const id = m['message-id'];
  const box = h('input', { type: 'checkbox', test: `select-${id}`, 'aria-label': t('int.select', { id }),
    checked: ctx.selected.has(id), on: { change: (e) => toggle(ctx, id, e.target.checked) } });
  return h('tr', { test: `message-${id}`, dataset: { status: m.status } },
    h('td', {}, box),
    h('td', {}, when(m.created)),
    h('td', { text: m.provider }),
    h('td', { text: m.event }),
    h('td', { text: m.focus?.reference || '' }),
    h('td', { test: `status-${id}`, class: `st st-${m.status}`, i18n: `int.st.${m.status}` }),
    h('td', { class: 'num', text: String(m.attempts ?? 0) }),
    h('td', { class: 'reason', test: `reason-${id}`, text: m.reason || '' }),
    h('td', {}, h('button', { type: 'button', test: `open-${id}`, i18n: 'int.open', on: { click: () => openMessage(ctx, id) } })));
}

function toggle(ctx, id, on) {
  if (on) ctx.selected.add(id); else ctx.selected.delete(id);
  drawResendLabel(ctx);
}

function selectAll(ctx, on) {
  for (const m of ctx.rows) toggle(ctx, m['message-id'], on);
  for (const box of ctx.el.list.querySelectorAll('input[type=checkbox]')) box.checked = on;
}

function drawResendLabel(ctx) {
  const n = ctx.selected.size;
  ctx.el.resend.dataset.i18n = ctx.busy ? 'int.resend-busy' : 'int.resend';
  ctx.el.resend.dataset.i18nArgs = JSON.stringify({ n });
  ctx.el.resend.textContent = t(ctx.el.resend.dataset.i18n, { n });
  ctx.el.resend.disabled = ctx.busy || n === 0;
}

// --- one message, its Bundle ----------------------------------------------------------

async function openMessage(ctx, id) {
  const box = ctx.el.detail;
  try {
    const answer = await fhir('GET', '$outbox', { params: { 'message-id': id } });
    const m = partsOf(named(answer, 'message')[0]?.part);
    fill(box,
      h('h3', { test: 'message-id', text: id }),
      h('dl', { class: 'ticket' },
        h('dt', { i18n: 'int.focus' }), h('dd', { test: 'message-focus', text: m.focus?.reference || '' }),
        h('dt', { i18n: 'int.routing-key' }), h('dd', { test: 'message-routing-key', text: m['routing-key'] || '' }),
        h('dt', { i18n: 'int.status' }), h('dd', { i18n: `int.st.${m.status}` }),
        m.reason && [h('dt', { i18n: 'int.reason' }), h('dd', { test: 'message-reason', text: m.reason })],
        m['resent-as'] && [h('dt', { text: 'resent-as' }), h('dd', { text: m['resent-as'] })]),
      h('details', { test: 'message-bundle', open: true },
        h('summary', { i18n: 'int.bundle' }),
        // Past its retention only the row is left: say why instead of the Bundle.
        h('pre', { class: 'receipt-text', tabindex: '0',
          text: m.content ? JSON.stringify(m.content, null, 2) : (m['content-removed'] || '') })));
    box.hidden = false;
    // Esc closes it and puts the caret back on the message's row.
    pushBack(() => { box.hidden = true; focus(ctx.el.list.querySelector(`[data-test="open-${id}"]`)); });
    focus(box.querySelector('summary'));
  } catch (err) { showError(ctx.el.outboxError, err); }
}

// --- resend ------------------------------------------------------------------

// Messages the provider answered (ok, or fatal-error: parked) go as new messages.
function getsNewId(m) {
  return m.delivery === 'ok' || m.delivery === 'fatal-error';
}

function askResend(ctx) {
  if (ctx.busy || ctx.selected.size === 0) return;
  const chosen = ctx.rows.filter((m) => ctx.selected.has(m['message-id']));
  const fresh = chosen.filter(getsNewId).map((m) => m['message-id']);
  const words = fresh.length
    ? t('int.resend-confirm', { n: chosen.length, fresh: fresh.length, ids: fresh.join(', ') })
    : t('int.resend-confirm-same', { n: chosen.length });
  const yes = h('button', { type: 'button', class: 'primary', test: 'resend-yes', i18n: 'int.resend-yes',
    on: { click: () => doResend(ctx, chosen.map((m) => m['message-id'])) } });
  const no = h('button', { type: 'button', test: 'resend-no', i18n: 'common.cancel', on: { click: () => closeConfirm(ctx) } });
  fill(ctx.el.confirm, h('p', { test: 'resend-question', text: words }),
    fresh.length ? h('ul', { test: 'resend-new-ids' }, fresh.map((id) => h('li', { text: id }))) : null,
    h('div', { class: 'actions' }, yes, no));
  ctx.el.confirm.hidden = false;
  ctx.undoConfirm = pushBack(() => closeConfirm(ctx));
  focus(yes);
}

function closeConfirm(ctx) {
  ctx.el.confirm.hidden = true;
  ctx.el.confirm.replaceChildren();
  if (ctx.undoConfirm) { ctx.undoConfirm(); ctx.undoConfirm = null; }
  focus(ctx.el.resend);
}

async function doResend(ctx, ids) {
  if (ctx.busy) return; // a second Enter or click while the first is on its way
  ctx.busy = true;
  for (const b of ctx.el.confirm.querySelectorAll('button')) b.disabled = true;
  drawResendLabel(ctx);
  try {
    const answer = await post('$resend', parameters(ids.map((id) => ['message-id', 'valueString', id])));
    const queued = answer.parameter?.find((p) => p.name === 'queued')?.valueInteger ?? 0;
    const lines = named(answer, 'resent').map((p) => partsOf(p.part)).map((r) => h('li', { test: `resent-${r['message-id']}` },
      `${r['message-id']} → ${r['resent-id']}: ${t(`int.outcome.${r.outcome}`)}${r.detail ? ` — ${r.detail}` : ''}`));
    fill(ctx.el.result, h('p', { test: 'resend-queued', i18n: 'int.resent', i18nArgs: { n: queued } }), h('ul', {}, lines));
    ctx.busy = false;
    closeConfirm(ctx);
    await Promise.all([loadSummary(ctx), loadOutbox(ctx, false)]);
  } catch (err) {
    ctx.busy = false;
    closeConfirm(ctx);
    showError(ctx.el.outboxError, err);
  }
  drawResendLabel(ctx);
}
