// The figures page (role admin: the region's managers): bookings by day and channel,
// waiting times by priority class, service and district against their deadlines, tickets
// paid and unpaid, and each provider's messages and lag. Charts first, each with
// its numbers a click away; a period picker (a year, month or day) and a service.
//
// Keys: Enter in the period or service field draws the figures again.

import { h, fill, field, errorArea, showError, clearError, focus, onEnter, ready, section } from './dom.js';
import { t } from './i18n.js';
import { get, getSettings } from './api.js';
import { catalog } from './directory.js';
import { romeDay, addDays } from './format.js';
import { figure, legend, table, stacked, hbars, PALETTE } from './charts.js';

// The deadlines in force (the dated rules of mappings/booking/rules.json, as the
// console's settings give them), in days; where visits and exams differ, a visit's.
function deadlineDays(code) {
  const d = (getSettings()?.priorityClasses || []).find((c) => c.code === code);
  if (!d) return null;
  if (d.hours != null) return d.hours / 24;
  return d.days ?? d.visitDays ?? d.examDays ?? null;
}
// A class's deadline in words, from the same rules: `72 h`, `10 gg`, `30/60 gg`.
function deadlineText(code) {
  const d = (getSettings()?.priorityClasses || []).find((c) => c.code === code);
  if (!d) return '';
  if (d.hours != null) return t('figures.hours', { n: d.hours });
  if (d.days != null) return t('figures.days', { n: d.days });
  return t('figures.visit-exam-days', { visit: d.visitDays ?? '—', exam: d.examDays ?? '—' });
}
// The classes as the rules list them, most urgent first.
const classCodes = () => (getSettings()?.priorityClasses || []).map((c) => c.code);
const PERIOD = /^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$/;

export function render(view) {
  const ctx = { el: {} };
  const period = field({ id: 'figures-period', label: 'figures.period', test: 'figures-period', hint: 'figures.period-hint', attrs: { value: romeDay().slice(0, 7), maxlength: 10, class: 'short' } });
  const service = field({ id: 'figures-service', label: 'figures.service', test: 'figures-service', hint: 'figures.service-hint', attrs: { class: 'short' } });
  for (const f of [period, service]) onEnter(f.input, () => draw(ctx));
  Object.assign(ctx.el, { period: period.input, periodHint: period.hint, service: service.input, error: errorArea('figures-error') });
  const charts = ['fig-channels', 'fig-classes', 'fig-services', 'fig-districts', 'fig-tickets', 'fig-messages']
    .map((id) => { ctx.el[id] = h('div', { class: 'chart-slot', test: `${id}-slot`, 'aria-live': 'polite' }); return ctx.el[id]; });
  fill(view, h('div', { class: 'desk', id: 'figures-desk', test: 'figures-desk' },
    h('h1', { class: 'desk-title', i18n: 'desk.figures' }),
    section('figures-pick', 'figures.pick', h('div', { class: 'row' }, period.box, service.box,
      h('button', { type: 'button', class: 'primary', test: 'figures-draw', i18n: 'figures.draw', on: { click: () => draw(ctx) } }))),
    ctx.el.error, h('div', { class: 'charts' }, charts)));
  focus(period.input);
  draw(ctx);
  return { dispose: () => {}, onKey: () => false };
}

async function draw(ctx) {
  clearError(ctx.el.error);
  const period = ctx.el.period.value.trim();
  if (!PERIOD.test(period)) {
    ctx.el.periodHint.textContent = t('figures.period-bad');
    ctx.el.periodHint.classList.add('bad');
    focus(ctx.el.period);
    return;
  }
  ctx.el.periodHint.classList.remove('bad');
  ctx.el.periodHint.textContent = t('figures.period-hint');
  const q = { period, service: ctx.el.service.value.trim() || undefined };
  document.body.removeAttribute('data-ready');
  // Each chart on its own: one refused (say, no outbox) leaves the others drawn.
  const jobs = [channels(ctx, q), classes(ctx, q), services(ctx, q), districts(ctx, q), tickets(ctx, q), messages(ctx)]
    .map((p) => p.catch((e) => showError(ctx.el.error, e)));
  await Promise.all(jobs);
  ready('figures');
}

const param = (p, name) => (p.parameter || p.part || []).find((x) => x.name === name);
const num = (p, name) => { const x = param(p, name); return x ? (x.valueInteger ?? x.valueDecimal ?? null) : null; };
const part = (p, name) => (p.part || []).find((x) => x.name === name);
const pct = (v) => (v === null || v === undefined ? '—' : `${Math.round(v * 1000) / 10} %`);

// --- bookings by day and channel -----------------------------------------------------

function daysOf(period) {
  if (period.length === 10) return [period];
  const first = period.length === 7 ? `${period}-01` : `${period}-01-01`;
  const out = [];
  for (let d = first; d.startsWith(period); d = addDays(d, 1)) out.push(d);
  return out;
}

async function channels(ctx, q) {
  const w = await get('$waiting-times', { ...q, group: 'day' });
  const chans = (w.parameter || []).filter((p) => p.name === 'channel')
    .map((p) => ({ code: part(p, 'code')?.valueCode, n: part(p, 'bookings')?.valueInteger || 0, share: part(p, 'share')?.valueDecimal || 0 }));
  const keys = chans.map((c) => c.code);
  const byDay = new Map(daysOf(q.period).map((d) => [d, {}]));
  for (const p of (w.parameter || []).filter((x) => x.name === 'day')) {
    const day = part(p, 'date')?.valueDate;
    const code = part(p, 'code')?.valueCode;
    if (!byDay.has(day)) byDay.set(day, {});
    byDay.get(day)[code] = part(p, 'bookings')?.valueInteger || 0;
    if (!keys.includes(code)) keys.push(code);
  }
  const name = (c) => t(`channel.${c}`);
  const columns = [...byDay.entries()].map(([d, values]) => ({ label: d, shortLabel: d.slice(8), values }));
  const total = num(w, 'bookings') || 0;
  const summary = t('figures.channels-summary', { total, shares: chans.map((c) => `${name(c.code)} ${pct(c.share)}`).join(', ') });
  const svg = stacked(columns, keys, PALETTE, summary);
  const rows = [...chans.map((c) => [name(c.code), String(c.n), pct(c.share)]), [t('figures.total'), String(total), '100 %']];
  const days = columns.filter((c) => keys.some((k) => c.values[k])).map((c) => [c.label, ...keys.map((k) => String(c.values[k] || 0))]);
  fill(ctx.el['fig-channels'], figure('fig-channels', 'figures.channels', svg,
    legend(keys.map((k, i) => [`${name(k)} ${pct(chans.find((c) => c.code === k)?.share)}`, PALETTE[i % PALETTE.length]])),
    h('div', {}, table([t('figures.channel'), t('figures.bookings'), t('figures.share')], rows),
      table([t('figures.day'), ...keys.map(name)], days))));
}

// --- waiting times against deadlines ---------------------------------------------------

function waitRows(list) {
  const bars = (w) => [
    { value: num(w, 'wait-median-days'), colour: PALETTE[0], name: t('figures.median') },
    { value: num(w, 'wait-p90-days'), colour: PALETTE[1], name: t('figures.p90') }];
  return list.map(({ label, w, mark }) => ({ label, bars: bars(w), mark }));
}

function waitTable(list) {
  return table([t('figures.group'), t('figures.bookings'), t('figures.median'), t('figures.p90'), t('figures.deadline'), t('figures.within')],
    list.map(({ label, w, mark }) => [label, String(num(w, 'bookings') ?? 0), String(num(w, 'wait-median-days') ?? '—'),
      String(num(w, 'wait-p90-days') ?? '—'), mark ? String(mark) : '—', pct(num(w, 'within-deadline-share'))]));
}

// The deadline's mark is drawn for the classes only (a service or a district mixes them).
const waitLegend = (marks = true) => legend([[t('figures.median'), PALETTE[0]], [t('figures.p90'), PALETTE[1]],
  ...(marks ? [[t('figures.deadline-mark'), '#8a1c1c']] : [])]);

async function classes(ctx, q) {
  const list = await Promise.all(classCodes().map(async (c) => ({ label: `${c} — ${t(`figures.class.${c}`)} (${deadlineText(c)})`, w: await get('$waiting-times', { ...q, 'priority-class': c }), mark: deadlineDays(c) })));
  const summary = t('figures.classes-summary', { list: list.map((x) => `${x.label}: ${pct(num(x.w, 'within-deadline-share'))}`).join(', ') });
  fill(ctx.el['fig-classes'], figure('fig-classes', 'figures.classes', hbars(waitRows(list), summary), waitLegend(), waitTable(list)));
}

// The most booked services, each ranked by the API in one answer (group=service).
async function services(ctx, q) {
  const [w, names] = await Promise.all([get('$waiting-times', { ...q, group: 'service' }), catalog().catch(() => [])]);
  const display = (code) => names.find((c) => c.code === code)?.display || '';
  const list = (w.parameter || []).filter((p) => p.name === 'service').map((p) => {
    const code = part(p, 'code')?.valueCode;
    const name = display(code);
    return { label: name ? `${code} — ${name.slice(0, 40)}` : code, w: p };
  });
  const summary = list.length
    ? t('figures.services-summary', { list: list.map((x) => `${x.label}: ${num(x.w, 'wait-median-days') ?? '—'}`).join(', ') })
    : t('figures.no-bookings');
  fill(ctx.el['fig-services'], figure('fig-services', 'figures.services', hbars(waitRows(list), summary), waitLegend(false), waitTable(list)));
}

// The districts are those of the region's facilities.
async function districts(ctx, q) {
  const locs = await get('Location', { _elements: 'address', _count: 1000 });
  const names = [...new Set((locs.entry || []).map((e) => e.resource?.address?.district).filter(Boolean))].sort();
  const list = await Promise.all(names.map(async (d) => ({ label: d, w: await get('$waiting-times', { ...q, district: d }) })));
  const summary = t('figures.districts-summary', { list: list.map((x) => `${x.label}: ${num(x.w, 'wait-median-days') ?? '—'}`).join(', ') });
  fill(ctx.el['fig-districts'], figure('fig-districts', 'figures.districts', hbars(waitRows(list), summary), waitLegend(false), waitTable(list)));
}

// --- tickets -----------------------------------------------------------------------

function span(period) {
  const days = daysOf(period);
  return [`ge${days[0]}`, `lt${addDays(days[days.length - 1], 1)}`];
}

async function tickets(ctx, q) {
  const states = ['issued', 'balanced', 'cancelled'];
  const counts = await Promise.all(states.map(async (st) => (await get('Invoice', { status: st, date: span(q.period), _summary: 'count' })).total || 0));
  const rows = states.map((st, i) => ({ label: t(`figures.invoice.${st}`), bars: [{ value: counts[i], colour: PALETTE[[5, 2, 7][i]], name: t(`figures.invoice.${st}`) }] }));
  const summary = states.map((st, i) => `${t(`figures.invoice.${st}`)}: ${counts[i]}`).join(', ');
  fill(ctx.el['fig-tickets'], figure('fig-tickets', 'figures.tickets', hbars(rows, summary), null,
    table([t('figures.status'), t('figures.count')], states.map((st, i) => [t(`figures.invoice.${st}`), String(counts[i])]))));
}

// --- messages per provider -----------------------------------------------------------

async function messages(ctx) {
  const out = await get('$outbox-summary');
  const list = (out.parameter || []).filter((p) => p.name === 'provider').map((p) => {
    const code = part(p, 'provider')?.valueString || part(p, 'provider')?.valueCode || '?';
    const n = (k) => part(p, k)?.valueInteger || 0;
    const lag = part(p, 'lag')?.valueDuration?.value ?? 0;
    return { code, pending: n('pending'), unroutable: n('unroutable'), failed: n('failed'), parked: n('parked'), lagMin: Math.round(lag / 6) / 10 };
  });
  const kinds = ['pending', 'unroutable', 'failed', 'parked'];
  const rows = list.map((x) => ({ label: x.code, bars: [
    { value: kinds.reduce((a, k) => a + x[k], 0), colour: PALETTE[0], name: t('figures.waiting') },
    { value: x.lagMin, colour: PALETTE[3], name: t('figures.lag') }] }));
  const summary = list.map((x) => `${x.code}: ${x.pending} / ${x.lagMin} min`).join(', ') || t('figures.none');
  fill(ctx.el['fig-messages'], figure('fig-messages', 'figures.messages', hbars(rows, summary),
    legend([[t('figures.waiting'), PALETTE[0]], [t('figures.lag'), PALETTE[3]]]),
    table([t('figures.provider'), ...kinds.map((k) => t(`figures.msg.${k}`)), t('figures.lag')],
      list.map((x) => [x.code, ...kinds.map((k) => String(x[k])), String(x.lagMin)]))));
}
