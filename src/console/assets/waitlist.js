// The waiting list at the booking desk: "Metti in lista d'attesa" next to the
// proposals puts the patient in line for the service (an Appointment `waitlist`
// without a slot: the gateway offers them the first slot that frees, see
// docs/booking.md, *Waiting lists*), and the line for that service is listed below,
// in the order the gateway serves it (class, then time in line).

import { h, fill, errorArea, showError, clearError } from './dom.js';
import { lang } from './i18n.js';
import { get, post, resources, getSettings } from './api.js';
import { dateTime, addDays, romeDay, ext } from './format.js';
import { priorityClasses } from './directory.js';

// The period a patient put in line accepts from the chosen day.
const WINDOW_DAYS = 180;

export function waitlistPanel(ctx) {
  const put = h('button', { type: 'button', id: 'waitlist-put', test: 'waitlist-put', i18n: 'waitlist.put',
    on: { click: () => enrol(ctx) } });
  const done = h('p', { id: 'waitlist-done', test: 'waitlist-done', role: 'status', hidden: true });
  const line = h('ol', { id: 'waitlist-line', class: 'line', test: 'waitlist-line' });
  const err = errorArea('waitlist-error');
  Object.assign(ctx.el, { waitlistDone: done, waitlistLine: line, waitlistError: err });
  return h('div', { id: 'waitlist', class: 'panel', test: 'waitlist' },
    put, done, err, h('h3', { i18n: 'waitlist.line' }), line);
}

// What is asked for: the service code, the prescriptions and the class.
function wanted(ctx) {
  const q = ctx.s.query || {};
  const requests = ctx.s.requests || [];
  const code = q.service || requests.flatMap((r) => r.code?.coding || [])[0]?.code;
  const klass = q.klass || requests.map((r) => ext(r, 'priority-class')?.code).find(Boolean);
  return { code, klass, requests };
}

function entry(ctx, { code, klass, requests }) {
  const settings = getSettings();
  const from = ctx.el.from.value || romeDay();
  const a = {
    resourceType: 'Appointment', status: 'waitlist',
    serviceType: [{ coding: [{ system: `${settings.canonicalBase}/CodeSystem/catalog`, code }] }],
    requestedPeriod: [{ start: new Date(`${from}T00:00:00`).toISOString(),
      end: new Date(`${addDays(from, WINDOW_DAYS)}T00:00:00`).toISOString() }],
    participant: [{ actor: { reference: `Patient/${ctx.s.patient.id}` }, status: 'needs-action' }],
  };
  if (requests.length) a.basedOn = requests.map((r) => ({ reference: `ServiceRequest/${r.id}` }));
  if (klass) {
    a.extension = [{ url: `${settings.canonicalBase}/StructureDefinition/priority-class`,
      valueCoding: { system: `${settings.canonicalBase}/CodeSystem/priority-class`, code: klass } }];
  }
  return a;
}

async function enrol(ctx) {
  clearError(ctx.el.waitlistError);
  const want = wanted(ctx);
  try {
    await post('Appointment', entry(ctx, want));
    fill(ctx.el.waitlistDone, h('span', { i18n: 'waitlist.done' }));
    ctx.el.waitlistDone.hidden = false;
    await showLine(ctx);
  } catch (e) {
    showError(ctx.el.waitlistError, e);
  }
}

// The line for the service asked for, most urgent class first, then time in line.
export async function showLine(ctx) {
  const { code } = wanted(ctx);
  ctx.el.waitlistDone.hidden = true;
  if (!code) return fill(ctx.el.waitlistLine);
  try {
    const settings = getSettings();
    const bundle = await get('Appointment', { status: 'waitlist', 'service-type': `${settings.canonicalBase}/CodeSystem/catalog|${code}`, _count: 100 });
    const classes = [...(await priorityClasses()).keys()];
    const rank = (a) => [classes.indexOf(ext(a, 'priority-class')?.code ?? ''), ext(a, 'waitlist-enrolled') || ''];
    const line = resources(bundle, 'Appointment').sort((x, y) => {
      const [cx, tx] = rank(x); const [cy, ty] = rank(y);
      return cx - cy || tx.localeCompare(ty);
    });
    fill(ctx.el.waitlistLine, ...line.map((a) => item(a)));
  } catch (e) {
    showError(ctx.el.waitlistError, e);
  }
}

function item(a) {
  const patient = a.participant?.find((p) => p.actor?.reference?.startsWith('Patient/'))?.actor;
  const since = ext(a, 'waitlist-enrolled');
  return h('li', { test: 'waitlist-entry', dataset: { id: a.id } },
    h('span', { class: 'badge', text: ext(a, 'priority-class')?.code || '?' }), ' ',
    h('span', { text: patient?.display || patient?.reference || '' }), ' · ',
    since ? h('time', { dateTime: since, dataset: { datetime: since }, text: dateTime(since, lang()) }) : null);
}
