// The agendas desk (roles provider and admin): pick an agenda by provider and
// facility, see its week of slots at a glance, edit its template and generate,
// close a day or a session and work through the appointments to rebook.
//
// Keys: PageUp / PageDown the week before / after, Home this week, Enter on a
// field confirms it, Esc goes back (closes the template or the closure form).

import { h, fill, field, errorArea, showError, clearError, focus, ready, section, typing } from './dom.js';
import { t } from './i18n.js';
import { get, resources, included } from './api.js';
import { romeDay, addDays, time, date, ext } from './format.js';
import { templateSection, openTemplate } from './agenda-template.js';
import { closeSection, rebookSection, openClose } from './agenda-close.js';

// A slot's state, its letter (so colour is never the only sign) and its class.
export const STATES = ['free', 'busy', 'held', 'U', 'B', 'closed'];
const LETTER = { free: 'L', busy: 'P', held: 'T', U: 'U', B: 'B', closed: 'C' };

export function slotState(slot) {
  if (slot.status === 'busy-unavailable') return 'closed';
  if (slot.status === 'busy-tentative') return 'held';
  if (slot.status === 'busy') return 'busy';
  const reserved = ext(slot, 'slot-reserved-for');
  const release = ext(slot, 'slot-release');
  // A reserve opens to everyone at its release instant; before it, only U/B book it.
  if ((reserved === 'U' || reserved === 'B') && (!release || new Date(release) > new Date())) return reserved;
  return 'free';
}

// The Monday (YYYY-MM-DD, Europe/Rome) of the week holding `day`.
export function monday(day) {
  const wd = new Date(`${day}T12:00:00Z`).getUTCDay();
  return addDays(day, -((wd + 6) % 7));
}

// Midnight of `day` in Europe/Rome as an instant with its offset, so the server's
// instant search cuts the week where Rome's days begin (also across DST changes).
export function romeMidnight(day) {
  const f = new Intl.DateTimeFormat('en', { timeZone: 'Europe/Rome', timeZoneName: 'longOffset' });
  const name = f.formatToParts(new Date(`${day}T00:30:00Z`)).find((p) => p.type === 'timeZoneName')?.value || 'GMT+01:00';
  const off = name.replace('GMT', '') || '+00:00';
  return `${day}T00:00:00${off}`;
}

export function render(view, params) {
  const ctx = { s: { schedules: [], schedule: null, week: monday(params.get('week') || romeDay()), slots: [] }, el: {} };
  ctx.reload = () => loadWeek(ctx);
  ctx.error = errorArea('agenda-error');
  const desk = h('div', { class: 'desk', id: 'agenda-desk', test: 'agenda-desk' },
    h('h1', { class: 'desk-title', i18n: 'desk.agenda' }),
    pickSection(ctx), ctx.error, weekSection(ctx), templateSection(ctx), closeSection(ctx), rebookSection(ctx));
  fill(view, desk);
  loadSchedules(ctx).catch((e) => showError(ctx.error, e)).finally(() => { if (!ctx.s.schedule) ready('agenda'); });
  return { dispose: () => {}, onKey: (e) => onKey(ctx, e) };
}

function onKey(ctx, e) {
  if (typing(e) || e.altKey || e.ctrlKey || e.metaKey || !ctx.s.schedule) return false;
  const step = { PageUp: -7, PageDown: 7 }[e.key];
  if (step) { e.preventDefault(); moveWeek(ctx, step); return true; }
  if (e.key === 'Home') { e.preventDefault(); ctx.s.week = monday(romeDay()); loadWeek(ctx); return true; }
  return false;
}

// --- which agenda ----------------------------------------------------------------

function pickSection(ctx) {
  const provider = field({ id: 'agenda-provider', label: 'agenda.provider', type: 'select', test: 'agenda-provider' });
  const location = field({ id: 'agenda-location', label: 'agenda.location', type: 'select', test: 'agenda-location' });
  const schedule = field({ id: 'agenda-schedule', label: 'agenda.schedule', type: 'select', test: 'agenda-schedule' });
  Object.assign(ctx.el, { provider: provider.input, location: location.input, schedule: schedule.input });
  provider.input.addEventListener('change', () => fillSchedules(ctx));
  location.input.addEventListener('change', () => fillSchedules(ctx));
  schedule.input.addEventListener('change', () => pick(ctx, schedule.input.value));
  return section('agenda-pick', 'agenda.pick', h('div', { class: 'row' }, provider.box, location.box, schedule.box));
}

// The agendas this caller sees (the server filters them by role and organisation),
// with their actors included for names.
async function loadSchedules(ctx) {
  const bundle = await get('Schedule', { _include: 'Schedule:actor', _count: 200 });
  const refs = included(bundle);
  const name = (ref) => { const r = refs.get(ref); return r?.name || ref; };
  ctx.s.schedules = resources(bundle, 'Schedule').map((s) => {
    const actors = (s.actor || []).map((a) => a.reference || '');
    const services = actors.filter((a) => a.startsWith('HealthcareService/')).map((a) => refs.get(a)).filter(Boolean);
    const provider = services.map((x) => x.providedBy?.reference).find(Boolean) || '';
    const location = actors.find((a) => a.startsWith('Location/')) || services.flatMap((x) => x.location || []).map((l) => l.reference)[0] || '';
    const label = [s.id, ...actors.filter((a) => !a.startsWith('Location/')).map(name)].join(' — ');
    return { id: s.id, resource: s, provider, location, label, providerName: name(provider), locationName: name(location) };
  });
  const options = (key, nameKey) => [...new Map(ctx.s.schedules.filter((s) => s[key]).map((s) => [s[key], s[nameKey]])).entries()];
  fill(ctx.el.provider, h('option', { value: '', i18n: 'agenda.all' }), options('provider', 'providerName').map(([v, n]) => h('option', { value: v, text: n })));
  fill(ctx.el.location, h('option', { value: '', i18n: 'agenda.all' }), options('location', 'locationName').map(([v, n]) => h('option', { value: v, text: n })));
  fillSchedules(ctx);
  focus(ctx.el.schedule);
}

function fillSchedules(ctx) {
  const p = ctx.el.provider.value;
  const l = ctx.el.location.value;
  const list = ctx.s.schedules.filter((s) => (!p || s.provider === p) && (!l || s.location === l));
  fill(ctx.el.schedule, list.length ? null : h('option', { value: '', i18n: 'agenda.none' }),
    list.map((s) => h('option', { value: s.id, text: s.label })));
  if (list.length) pick(ctx, list.find((s) => s.id === ctx.s.schedule?.id)?.id || list[0].id);
}

function pick(ctx, id) {
  const s = ctx.s.schedules.find((x) => x.id === id);
  if (!s) return;
  ctx.s.schedule = s;
  ctx.el.schedule.value = id;
  ctx.el.week.hidden = false;
  loadWeek(ctx);
}

// --- the week ------------------------------------------------------------------

function weekSection(ctx) {
  const title = h('span', { class: 'week-title', test: 'week-title', 'aria-live': 'polite' });
  const grid = h('div', { class: 'week-grid', id: 'week-grid', test: 'week-grid', role: 'grid', 'aria-labelledby': 'agenda-week-title' });
  const legend = h('ul', { class: 'slot-legend', test: 'slot-legend' },
    STATES.map((st) => h('li', {}, h('span', { class: `slot slot-${st}`, 'aria-hidden': 'true', text: LETTER[st] }), ' ', h('span', { i18n: `agenda.state.${st}` }))));
  const nav = h('div', { class: 'actions' },
    h('button', { type: 'button', test: 'week-prev', 'aria-keyshortcuts': 'PageUp', i18n: 'agenda.week-prev', on: { click: () => moveWeek(ctx, -7) } }),
    title,
    h('button', { type: 'button', test: 'week-next', 'aria-keyshortcuts': 'PageDown', i18n: 'agenda.week-next', on: { click: () => moveWeek(ctx, 7) } }),
    h('button', { type: 'button', test: 'open-template', i18n: 'agenda.template', on: { click: () => openTemplate(ctx) } }),
    h('button', { type: 'button', test: 'open-close', i18n: 'agenda.close', on: { click: () => openClose(ctx, ctx.s.week) } }));
  const counts = h('p', { class: 'week-counts', test: 'week-counts', 'aria-live': 'polite' });
  Object.assign(ctx.el, { weekTitle: title, grid, counts });
  ctx.el.week = section('agenda-week', 'agenda.week', nav, legend, counts, grid);
  ctx.el.week.hidden = true;
  return ctx.el.week;
}

function moveWeek(ctx, days) {
  ctx.s.week = addDays(ctx.s.week, days);
  loadWeek(ctx);
}

// One search the server filters: this agenda's slots from Monday to the next.
async function loadWeek(ctx) {
  const { schedule, week } = ctx.s;
  if (!schedule) return;
  clearError(ctx.error);
  ctx.el.weekTitle.textContent = t('agenda.week-of', { from: date(week), to: date(addDays(week, 6)) });
  ctx.el.grid.setAttribute('aria-busy', 'true');
  try {
    const bundle = await get('Slot', {
      schedule: `Schedule/${schedule.id}`, start: [`ge${romeMidnight(week)}`, `lt${romeMidnight(addDays(week, 7))}`],
      _sort: 'start', _count: 1000,
    });
    ctx.s.slots = resources(bundle, 'Slot');
    drawWeek(ctx);
  } catch (e) {
    showError(ctx.error, e);
  } finally {
    ctx.el.grid.removeAttribute('aria-busy');
    ready('agenda');
  }
}

function drawWeek(ctx) {
  const days = [...Array(7).keys()].map((i) => addDays(ctx.s.week, i));
  const byDay = new Map(days.map((d) => [d, []]));
  for (const s of ctx.s.slots) byDay.get(romeDay(new Date(s.start)))?.push(s);
  const tally = Object.fromEntries(STATES.map((st) => [st, 0]));
  fill(ctx.el.grid, days.map((d) => {
    const slots = byDay.get(d);
    return h('div', { class: 'week-day', role: 'row', test: `day-${d}`, dataset: { day: d } },
      h('div', { class: 'week-day-head', role: 'rowheader' },
        h('span', { dataset: { date: d }, text: date(d) }),
        h('button', { type: 'button', class: 'small', test: `close-day-${d}`, i18n: 'agenda.close-day', disabled: !slots.length,
          on: { click: () => openClose(ctx, d) } })),
      h('ol', { class: 'week-slots', role: 'gridcell' }, slots.length ? slots.map((s) => {
        const st = slotState(s);
        tally[st] += 1;
        const label = `${time(s.start)} ${t(`agenda.state.${st}`)}${s.comment ? ` — ${s.comment}` : ''}`;
        return h('li', { class: `slot slot-${st}`, test: 'slot', dataset: { state: st, slot: s.id }, title: label, 'aria-label': label },
          h('span', { class: 'slot-letter', 'aria-hidden': 'true', text: LETTER[st] }), ' ', h('span', { text: time(s.start) }));
      }) : h('li', { class: 'week-empty', i18n: 'agenda.no-slots' })));
  }));
  ctx.el.counts.textContent = STATES.map((st) => `${t(`agenda.state.${st}`)}: ${tally[st]}`).join(' · ');
}
