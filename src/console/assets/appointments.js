// The patient's coming appointments, each with Sposta (reschedule: $find for its
// service, then $book with cancelled-appt-id) and Disdici ($cancel, after a
// confirmation; what the ticket became is shown once the API has cancelled).

import { h, fill, field, errorArea, showError, clearError, focus, onEnter, pushBack, section } from './dom.js';
import { t, lang } from './i18n.js';
import { get, post, parameters, resources } from './api.js';
import { dateTime, money, ext, ident, romeDay } from './format.js';
import { resolve, place, placeRefs, serviceOf } from './directory.js';

export function appointmentsSection(ctx) {
  const list = h('ul', { id: 'appointments', class: 'appointments', test: 'appointments' });
  const panel = h('div', { id: 'appointment-cancel-panel', class: 'panel warn', test: 'appointment-cancel-panel', hidden: true });
  const err = errorArea('appointments-error');
  Object.assign(ctx.el, { appointmentList: list, appointmentPanel: panel, appointmentsError: err });
  const sec = section('appointments', 'appointments.title', err, list, panel);
  ctx.el.appointments = sec;
  return sec;
}

// The patient's booked appointments from today, earliest first.
export async function loadAppointments(ctx) {
  const p = ctx.s.patient;
  if (!p) return;
  clearError(ctx.el.appointmentsError);
  try {
    const bundle = await get('Appointment', { patient: `Patient/${p.id}`, status: 'booked', date: `ge${romeDay()}`, _sort: 'date', _count: 20 });
    const list = resources(bundle, 'Appointment');
    await resolve(list.flatMap(placeRefs));
    fill(ctx.el.appointmentList, ...list.map((a) => row(ctx, a)));
    if (!list.length) ctx.el.appointmentList.append(h('li', { class: 'muted', i18n: 'appointments.none' }));
    ctx.show('appointments');
    // Opened to move one appointment (an agenda's list to rebook): its proposals at once.
    const move = ctx.s.move && list.find((a) => a.id === ctx.s.move);
    ctx.s.move = null;
    if (move) reschedule(ctx, move);
  } catch (e) {
    showError(ctx.el.appointmentsError, e);
    ctx.show('appointments');
  }
}

function row(ctx, a) {
  const where = place(a);
  const code = ident(a, '/booking-code');
  const opener = () => ctx.el.appointmentList.querySelector(`[data-id="${a.id}"] [data-test="cancel-appointment"]`);
  return h('li', { class: 'appointment', test: 'appointment', dataset: { id: a.id } },
    h('time', { dataset: { datetime: a.start }, text: dateTime(a.start, lang()) }),
    where.location ? ` · ${where.location}${where.town ? ` (${where.town})` : ''}` : '',
    ` · ${serviceOf(a) || where.service}`,
    code ? h('span', { class: 'code' }, ` ${code}`) : null,
    h('span', { class: 'actions inline' },
      h('button', { type: 'button', test: 'reschedule', i18n: 'appointments.reschedule', on: { click: () => reschedule(ctx, a) } }),
      h('button', { type: 'button', class: 'danger', test: 'cancel-appointment', i18n: 'appointments.cancel',
        on: { click: () => confirmCancel(ctx, a, ctx.el.appointmentPanel, ctx.el.appointmentsError, opener) } })));
}

// Sposta: proposals for the same service; the booking replaces this appointment.
function reschedule(ctx, a) {
  const coding = [].concat(a.serviceType || []).flatMap((c) => c.coding || [])[0];
  if (!coding) { showError(ctx.el.appointmentsError, { key: 'appointments.no-service' }); return; }
  ctx.s.replacing = a.id;
  ctx.s.requests = [];
  ctx.el.service.value = coding.code;
  ctx.el.nre.value = '';
  fill(ctx.el.summary, h('p', { class: 'notice', test: 'rescheduling' },
    h('span', { i18n: 'appointments.rescheduling' }), ` ${dateTime(a.start, lang())}`));
  ctx.find({ service: coding.code, klass: ext(a, 'priority-class')?.code || null });
}

// Disdici: the refund rule's outcome ($cancel with preview=true, which changes
// nothing) above the confirmation, then $cancel, then what the ticket became.
export function confirmCancel(ctx, a, panel, errors, opener) {
  for (const other of [ctx.el.cancelPanel, ctx.el.appointmentPanel]) {
    if (other !== panel) { other.hidden = true; other.replaceChildren(); }
  }
  const reason = field({ id: 'cancel-reason', label: 'cancel.reason', test: 'cancel-reason', attrs: { value: t('cancel.default-reason') } });
  let unback = null;
  const close = () => { panel.hidden = true; if (unback) unback(); focus(opener()); };
  const go = h('button', { type: 'button', id: 'cancel-confirm', class: 'danger', test: 'cancel-confirm', i18n: 'cancel.confirm',
    on: { click: () => cancel(ctx, a, reason.input.value, panel, errors) } });
  onEnter(reason.input, () => go.click());
  fill(panel,
    h('h3', { i18n: 'cancel.title' }),
    h('p', {}, h('time', { dataset: { datetime: a.start }, text: dateTime(a.start, lang()) }), ` · ${place(a).location}`),
    previewBox(a),
    reason.box,
    h('div', { class: 'actions' }, go, h('button', { type: 'button', test: 'cancel-back', i18n: 'common.back', on: { click: close } })));
  panel.hidden = false;
  unback = pushBack(close);
  focus(go);
}

async function cancel(ctx, a, reason, panel, errors) {
  clearError(errors);
  try {
    await post(`Appointment/${a.id}/$cancel`, parameters([['reason', 'valueString', reason || t('cancel.default-reason')]]));
    const code = ident(a, '/booking-code');
    const invoice = code ? await invoiceOf(code) : null;
    fill(panel, h('h3', { test: 'cancelled', i18n: 'cancel.done' }),
      invoice ? afterCancel(invoice) : h('p', { i18n: 'cancel.no-ticket' }));
    panel.hidden = false;
    loadAppointments(ctx);
    focus(panel.querySelector('h3'));
  } catch (e) {
    showError(errors, e);
  }
}

async function invoiceOf(code) {
  try {
    return resources(await get('Invoice', { 'booking-code': code }), 'Invoice')[0] || null;
  } catch {
    return null;
  }
}

function afterCancel(invoice) {
  const paid = ext(invoice, 'amount-paid')?.value;
  const amount = (v) => h('strong', { dataset: { money: v ?? '' }, text: money(v ?? 0, lang()) });
  return h('dl', { class: 'ticket', test: 'after-cancel' },
    h('dt', { i18n: 'cancel.ticket-now' }), h('dd', {}, amount(invoice.totalNet?.value)),
    h('dt', { i18n: 'cancel.paid' }), h('dd', {}, amount(paid)),
    h('dt', { i18n: 'cancel.invoice-status' }), h('dd', { i18n: `pay.status.${invoice.status}` }));
}

// The box that shows what confirming would do; filled when the preview answers.
function previewBox(a) {
  const box = h('div', { class: 'note', test: 'refund-preview', 'aria-live': 'polite', dataset: { outcome: '' } },
    h('p', { i18n: 'cancel.preview-loading' }));
  const body = parameters([['reason', 'valueString', t('cancel.default-reason')], ['preview', 'valueBoolean', true]]);
  post(`Appointment/${a.id}/$cancel`, body).then((p) => drawPreview(box, p), () => {
    fill(box, h('p', { test: 'refund-note', i18n: 'cancel.preview-failed' }));
  });
  return box;
}

function drawPreview(box, p) {
  const part = (name) => (p.parameter || []).find((x) => x.name === name) || {};
  const outcome = part('outcome').valueCode || 'no-ticket';
  const refund = part('refund').valueMoney?.value;
  const owed = part('owed-after').valueMoney?.value;
  const amount = (v, test) => h('strong', { test, dataset: { money: v ?? '' }, text: money(v ?? 0, lang()) });
  box.dataset.outcome = outcome;
  fill(box,
    h('h4', { i18n: 'cancel.preview-title' }),
    h('p', { test: 'refund-outcome' }, h('span', { i18n: `cancel.preview.${outcome}` }),
      outcome === 'refund' ? [' ', amount(refund, 'refund-amount'), '.'] : null),
    owed !== undefined ? h('p', {}, h('span', { i18n: 'cancel.preview-owed' }), ': ', amount(owed, 'refund-owed-after')) : null);
}
