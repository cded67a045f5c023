// Closing a day or a session of an agenda (doctor ill, room closed) with
// Schedule/$close, then the list of appointments to rebook ("Da riprenotare"),
// worked through one by one: each marked done stays done on this browser.
//
// Keys: Enter on a field closes, Esc leaves the form; in the list, the arrow keys
// move and Space marks the focused appointment done.

import { h, fill, field, errorArea, showError, clearError, focus, onEnter, pushBack, section, arrowList } from './dom.js';
import { t } from './i18n.js';
import { get, post, parameters, resources, included } from './api.js';
import { dateTime, personName } from './format.js';
import { romeMidnight } from './agenda.js';
import { addDays } from './format.js';

const DONE = 'cupola.rebooked';

export function closeSection(ctx) {
  const day = field({ id: 'close-day', label: 'agenda.close.day', type: 'date', test: 'close-day' });
  const from = field({ id: 'close-from', label: 'agenda.close.from', type: 'time', test: 'close-from', hint: 'agenda.close.whole-day' });
  const to = field({ id: 'close-to', label: 'agenda.close.to', type: 'time', test: 'close-to' });
  const reason = field({ id: 'close-reason', label: 'agenda.close.reason', test: 'close-reason', attrs: { maxlength: 200 } });
  for (const f of [day, from, to, reason]) onEnter(f.input, () => closeNow(ctx));
  const error = errorArea('close-error');
  Object.assign(ctx.el, { closeDay: day.input, closeFrom: from.input, closeTo: to.input, closeReason: reason.input, closeError: error });
  const box = section('agenda-close', 'agenda.close', h('div', { class: 'row' }, day.box, from.box, to.box, reason.box), error,
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'danger primary', test: 'close-confirm', i18n: 'agenda.close.confirm', on: { click: () => closeNow(ctx) } }),
      h('button', { type: 'button', test: 'close-cancel', i18n: 'common.cancel', on: { click: () => { box.hidden = true; } } })));
  box.hidden = true;
  ctx.el.close = box;
  return box;
}

export function openClose(ctx, day) {
  ctx.el.closeDay.value = day;
  clearError(ctx.el.closeError);
  ctx.el.close.hidden = false;
  pushBack(() => { ctx.el.close.hidden = true; focus(ctx.el.schedule); });
  focus(ctx.el.closeReason);
}

// The closure's instants: the whole day, or from…to that day, in Europe/Rome.
function span(ctx) {
  const day = ctx.el.closeDay.value;
  const midnight = romeMidnight(day);
  const offset = midnight.slice(19);
  const at = (hhmm) => `${day}T${hhmm}:00${offset}`;
  const from = ctx.el.closeFrom.value;
  const to = ctx.el.closeTo.value;
  return { start: from ? at(from) : midnight, end: to ? at(to) : romeMidnight(addDays(day, 1)) };
}

async function closeNow(ctx) {
  clearError(ctx.el.closeError);
  if (!ctx.el.closeDay.value) { showError(ctx.el.closeError, { key: 'agenda.close.need-day' }); focus(ctx.el.closeDay); return; }
  const { start, end } = span(ctx);
  const reason = ctx.el.closeReason.value.trim() || t('agenda.close.default-reason');
  try {
    const out = await post(`Schedule/${ctx.s.schedule.id}/$close`, parameters([
      ['start', 'valueDateTime', start], ['end', 'valueDateTime', end], ['reason', 'valueString', reason]]));
    const params = out.parameter || [];
    const closed = params.filter((p) => p.name === 'closed').length;
    const rebook = params.filter((p) => p.name === 'rebook').map((p) => p.valueReference?.reference?.replace(/^Appointment\//, '')).filter(Boolean);
    ctx.el.close.hidden = true;
    ctx.reload();
    await showRebook(ctx, closed, rebook);
  } catch (e) {
    showError(ctx.el.closeError, e);
  }
}

// --- Da riprenotare ----------------------------------------------------------------

export function rebookSection(ctx) {
  const summary = h('p', { test: 'rebook-summary', 'aria-live': 'polite' });
  const list = h('ul', { class: 'rebook-list', test: 'rebook-list' });
  arrowList(list, 'li');
  const error = errorArea('rebook-error');
  Object.assign(ctx.el, { rebookSummary: summary, rebookList: list, rebookError: error });
  const box = section('agenda-rebook', 'agenda.rebook', summary, error, list);
  box.hidden = true;
  ctx.el.rebook = box;
  return box;
}

function doneSet() {
  try { return new Set(JSON.parse(localStorage.getItem(DONE) || '[]')); } catch { return new Set(); }
}
function setDone(id, on) {
  const s = doneSet();
  if (on) s.add(id); else s.delete(id);
  try { localStorage.setItem(DONE, JSON.stringify([...s].slice(-500))); } catch { /* private mode */ }
}

// The appointments on the closed slots, read in one search by id with their patients.
async function showRebook(ctx, closed, ids) {
  ctx.el.rebook.hidden = false;
  clearError(ctx.el.rebookError);
  ctx.el.rebookSummary.textContent = t('agenda.rebook.summary', { closed, count: ids.length });
  fill(ctx.el.rebookList);
  if (!ids.length) { focus(ctx.el.schedule); return; }
  try {
    const bundle = await get('Appointment', { _id: ids.join(','), _include: 'Appointment:patient', _count: ids.length });
    const refs = included(bundle);
    const items = resources(bundle, 'Appointment').sort((a, b) => String(a.start).localeCompare(String(b.start))).map((a) => rebookItem(a, refs));
    fill(ctx.el.rebookList, items);
    focus(items[0]);
  } catch (e) {
    showError(ctx.el.rebookError, e);
  }
}

function rebookItem(a, refs) {
  const pref = (a.participant || []).map((p) => p.actor?.reference).find((r) => r?.startsWith('Patient/'));
  const patient = refs.get(pref);
  const who = patient ? personName(patient) : ((a.participant || []).find((p) => p.actor?.reference === pref)?.actor?.display || pref || '—');
  const coding = (a.serviceType || [])[0]?.coding?.[0] || {};
  const service = coding.display || coding.code || (a.serviceType || [])[0]?.text || '—';
  const done = doneSet().has(a.id);
  const box = h('input', { type: 'checkbox', id: `rebook-${a.id}`, test: 'rebook-done', checked: done,
    on: { change: (e) => { setDone(a.id, e.target.checked); li.classList.toggle('done', e.target.checked); } } });
  const li = h('li', { class: done ? 'rebook done' : 'rebook', tabindex: '0', test: 'rebook-item', dataset: { appointment: a.id },
    on: { keydown: (e) => { if (e.key === ' ' && e.target === li) { e.preventDefault(); box.click(); } } } },
    box, ' ',
    h('label', { for: `rebook-${a.id}` },
      h('strong', { test: 'rebook-patient', text: who }), ' · ',
      h('span', { test: 'rebook-service', text: service }), ' · ',
      h('span', { test: 'rebook-time', dataset: { datetime: a.start }, text: dateTime(a.start) })),
    ' ', h('span', { class: 'muted', i18n: 'agenda.rebook.done' }),
    // The booking desk with the patient chosen and this appointment's new dates offered.
    pref ? [' ', h('a', { href: `#/booking?patient=${encodeURIComponent(pref.slice(8))}&move=${encodeURIComponent(a.id)}`,
      test: 'rebook-open', i18n: 'agenda.rebook.open' })] : null);
  return li;
}
