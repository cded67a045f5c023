// An agenda's template (sessions, slot length, reserves for classes U and B) edited
// in place, saved with PUT and generated with $generate-slots. The API's refusal
// (a save's, or generation's, which is where a template is checked) names the
// element (Schedule.extension[0].extension[j]…): it is shown next to the field
// that element came from.
//
// Keys: Enter on a field saves, Esc closes the editor.

import { h, fill, errorArea, showError, clearError, focus, onEnter, pushBack, section } from './dom.js';
import { t } from './i18n.js';
import { fhir, post, parameters, getSettings } from './api.js';
import { romeDay } from './format.js';

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const isTemplate = (e) => typeof e.url === 'string' && e.url.endsWith('/agenda-template');
const sub = (part, name) => (part.extension || []).find((x) => x.url === name);
const val = (part, name) => { const x = sub(part, name); return x ? x[Object.keys(x).find((k) => k.startsWith('value'))] : undefined; };

export function templateSection(ctx) {
  const body = h('div', { class: 'template', test: 'template-body' });
  const status = h('p', { class: 'hint good', test: 'template-status', 'aria-live': 'polite' });
  const error = errorArea('template-error');
  ctx.el.tplBody = body;
  ctx.el.tplStatus = status;
  ctx.el.tplError = error;
  const box = section('agenda-template', 'agenda.template', body, error, status,
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'primary', test: 'template-save', i18n: 'agenda.save', on: { click: () => save(ctx) } }),
      h('button', { type: 'button', test: 'generate', i18n: 'agenda.generate', on: { click: () => generate(ctx) } }),
      h('button', { type: 'button', test: 'template-cancel', i18n: 'common.cancel', on: { click: () => { box.hidden = true; } } })));
  box.hidden = true;
  ctx.el.template = box;
  return box;
}

export function openTemplate(ctx) {
  const s = ctx.s.schedule;
  if (!s) return;
  const tpl = (s.resource.extension || []).find(isTemplate) || { extension: [] };
  ctx.s.tpl = { parts: tpl.extension || [], rows: [] };
  clearError(ctx.el.tplError);
  ctx.el.tplStatus.textContent = '';
  drawTemplate(ctx);
  ctx.el.template.hidden = false;
  pushBack(() => { ctx.el.template.hidden = true; focus(ctx.el.schedule); });
  focus(ctx.el.tplBody.querySelector('input, select'));
}

// One labelled input per template element; `key` is where the API's expression
// for it ends (the part's own index is added when the template is built).
function input(ctx, test, label, value, attrs = {}) {
  const id = attrs.n ? `${test}-${attrs.n}` : test;
  const el = attrs.options
    ? h('select', { id, test }, attrs.options.map((o) => h('option', { value: o, selected: o === value, text: attrs.optionLabel ? t(attrs.optionLabel + o) : o })))
    : h('input', { id, test, value: value ?? '', type: attrs.type || 'text', min: attrs.min, step: attrs.step, class: 'short' });
  const hint = h('p', { class: 'hint', id: `${id}-hint`, 'aria-live': 'polite', test: `${test}-hint` });
  el.setAttribute('aria-describedby', hint.id);
  onEnter(el, () => save(ctx));
  return { el, hint, box: h('div', { class: 'field' }, h('label', { for: id, i18n: label }), el, hint) };
}

function drawTemplate(ctx) {
  const parts = ctx.s.tpl.parts;
  const rows = [];
  const tz = input(ctx, 'tpl-timezone', 'agenda.tpl.timezone', parts.find((p) => p.url === 'timeZone')?.valueCode ?? 'Europe/Rome');
  const horizon = input(ctx, 'tpl-horizon', 'agenda.tpl.horizon', parts.find((p) => p.url === 'horizonDays')?.valueInteger ?? 56, { type: 'number', min: 1 });
  rows.push({ kind: 'timeZone', fields: { value: tz } }, { kind: 'horizonDays', fields: { value: horizon } });
  parts.filter((p) => p.url === 'session').forEach((p) => rows.push(sessionRow(ctx, p)));
  parts.filter((p) => p.url === 'reserve').forEach((p) => rows.push(reserveRow(ctx, p)));
  ctx.s.tpl.rows = rows;
  redraw(ctx);
}

function sessionRow(ctx, p = { extension: [] }) {
  const n = ctx.s.tpl.rows.length + Math.random().toString(36).slice(2, 6);
  return { kind: 'session', service: sub(p, 'service'), fields: {
    day: input(ctx, 'tpl-day', 'agenda.tpl.day', val(p, 'day') || 'mon', { options: DAYS, optionLabel: 'agenda.day.', n }),
    start: input(ctx, 'tpl-start', 'agenda.tpl.start', (val(p, 'start') || '08:00:00').slice(0, 5), { type: 'time', n }),
    end: input(ctx, 'tpl-end', 'agenda.tpl.end', (val(p, 'end') || '12:00:00').slice(0, 5), { type: 'time', n }),
    slotMinutes: input(ctx, 'tpl-minutes', 'agenda.tpl.minutes', val(p, 'slotMinutes') ?? 20, { type: 'number', min: 1, n }),
    capacity: input(ctx, 'tpl-capacity', 'agenda.tpl.capacity', val(p, 'capacity') ?? 1, { type: 'number', min: 1, n }),
  } };
}

function reserveRow(ctx, p = { extension: [] }) {
  const n = ctx.s.tpl.rows.length + Math.random().toString(36).slice(2, 6);
  return { kind: 'reserve', fields: {
    priority: input(ctx, 'tpl-priority', 'agenda.tpl.priority', val(p, 'priority') || 'U', { options: ['U', 'B'], n }),
    perSession: input(ctx, 'tpl-per-session', 'agenda.tpl.per-session', val(p, 'perSession') ?? 1, { type: 'number', min: 1, n }),
    releaseHours: input(ctx, 'tpl-release', 'agenda.tpl.release', val(p, 'releaseHours') ?? 72, { type: 'number', min: 0, n }),
  } };
}

function redraw(ctx) {
  const rows = ctx.s.tpl.rows;
  const drop = (row) => h('button', { type: 'button', class: 'small', test: 'tpl-remove', i18n: 'agenda.tpl.remove',
    on: { click: () => { rows.splice(rows.indexOf(row), 1); redraw(ctx); } } });
  const line = (row) => h('div', { class: `row tpl-${row.kind}`, test: `tpl-row-${row.kind}` },
    Object.values(row.fields).map((f) => f.box), row.kind === 'session' || row.kind === 'reserve' ? drop(row) : null);
  fill(ctx.el.tplBody,
    h('div', { class: 'row' }, rows.filter((r) => r.kind === 'timeZone' || r.kind === 'horizonDays').map((r) => r.fields.value.box)),
    h('h3', { i18n: 'agenda.tpl.sessions' }), rows.filter((r) => r.kind === 'session').map(line),
    h('button', { type: 'button', test: 'tpl-add-session', i18n: 'agenda.tpl.add-session', on: { click: () => { rows.push(sessionRow(ctx)); redraw(ctx); } } }),
    h('h3', { i18n: 'agenda.tpl.reserves' }), rows.filter((r) => r.kind === 'reserve').map(line),
    h('button', { type: 'button', test: 'tpl-add-reserve', i18n: 'agenda.tpl.add-reserve', on: { click: () => { rows.push(reserveRow(ctx)); redraw(ctx); } } }));
}

// The template extension from the fields, and where each field's element sits.
function build(ctx) {
  const where = new Map();
  const parts = ctx.s.tpl.rows.map((row, j) => {
    const at = `Schedule.extension[0].extension[${j}]`;
    if (row.kind === 'timeZone' || row.kind === 'horizonDays') {
      where.set(at, row.fields.value);
      const v = row.fields.value.el.value.trim();
      return row.kind === 'timeZone' ? { url: 'timeZone', valueCode: v } : { url: 'horizonDays', valueInteger: Number(v) };
    }
    const subs = Object.entries(row.fields).map(([name, f], k) => {
      where.set(`${at}.extension[${k}]`, f);
      const v = f.el.value.trim();
      if (name === 'day' || name === 'priority') return { url: name, valueCode: v };
      if (name === 'start' || name === 'end') return { url: name, valueTime: v.length === 5 ? `${v}:00` : v };
      return { url: name, valueInteger: Number(v) };
    });
    where.set(at, Object.values(row.fields)[0]);
    if (row.service) subs.push(row.service);
    return { url: row.kind, extension: subs };
  });
  return { parts, where };
}

function clearHints(ctx) {
  for (const el of ctx.el.tplBody.querySelectorAll('.hint')) { el.textContent = ''; el.classList.remove('bad'); }
}

// Each issue's words beside the field its expression names (the longest match).
function placeIssues(ctx, err, where) {
  let placed = false;
  for (const issue of err.outcome?.issue || []) {
    const expr = (issue.expression || [])[0] || '';
    const key = [...where.keys()].filter((k) => expr === k || expr.startsWith(`${k}.`)).sort((a, b) => b.length - a.length)[0];
    if (!key) continue;
    const f = where.get(key);
    f.hint.textContent = issue.details?.text || issue.diagnostics || '';
    f.hint.classList.add('bad');
    if (!placed) focus(f.el);
    placed = true;
  }
  if (!placed) showError(ctx.el.tplError, err);
}

async function save(ctx) {
  const s = ctx.s.schedule;
  const { parts, where } = build(ctx);
  clearHints(ctx);
  clearError(ctx.el.tplError);
  const others = (s.resource.extension || []).filter((e) => !isTemplate(e));
  const body = { ...s.resource, extension: [{ url: templateUrl(s.resource), extension: parts }, ...others] };
  delete body.meta;
  try {
    s.resource = await fhir('PUT', `Schedule/${s.id}`, { body });
    ctx.el.tplStatus.textContent = t('agenda.saved');
    return true;
  } catch (e) {
    placeIssues(ctx, e, where);
    return false;
  }
}

function templateUrl(schedule) {
  const e = (schedule.extension || []).find(isTemplate);
  if (e) return e.url;
  return `${getSettings()?.canonicalBase || ''}/StructureDefinition/agenda-template`;
}

// Generates from the shown week's Monday (or today, if that is later): the owning
// provider may, as an administrator may.
// The API checks a template when it generates from it: its refusal is placed as
// a save's would be, and the last good slots stay as they were.
async function generate(ctx) {
  if (!(await save(ctx))) return;
  const { where } = build(ctx);
  const from = ctx.s.week > romeDay() ? ctx.s.week : romeDay();
  try {
    const out = await post(`Schedule/${ctx.s.schedule.id}/$generate-slots`, parameters([['from', 'valueDate', from]]));
    const n = (name) => (out.parameter || []).find((p) => p.name === name)?.valueInteger ?? 0;
    const held = (out.parameter || []).filter((p) => p.name === 'held').length;
    ctx.el.tplStatus.textContent = t('agenda.generated', { created: n('created'), kept: n('kept'), removed: n('removed'), held });
    ctx.reload();
  } catch (e) {
    placeIssues(ctx, e, where);
  }
}
