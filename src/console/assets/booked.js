// $hold with its countdown (a warning before it lapses), $book, and what a booking
// gives at once: the booking code, the ticket to pay (amount, exemption, pagoPA
// notice) and the printable booking sheet (Foglio di prenotazione).

import { h, fill, errorArea, showError, clearError, focus, typing, section } from './dom.js';
import { t, lang } from './i18n.js';
import { get, getSettings, post, parameters, resources, who } from './api.js';
import { dateTime, money, countdown, ext, ident, personName } from './format.js';
import { place, serviceOf, organisationName } from './directory.js';
import { confirmCancel, loadAppointments, appointmentsSection } from './appointments.js';

export { loadAppointments, appointmentsSection };

// Seconds before a hold lapses when the warning shows.
const WARN_SECONDS = 60;

export function holdSection(ctx) {
  const summary = h('div', { id: 'hold-summary', class: 'summary', test: 'hold-summary' });
  const clock = h('strong', { id: 'hold-countdown', class: 'countdown', test: 'hold-countdown', role: 'timer' });
  const warning = h('p', { id: 'hold-warning', class: 'warning', test: 'hold-warning', role: 'alert', hidden: true });
  const book = h('button', { type: 'button', id: 'book', class: 'primary big', test: 'book', i18n: 'hold.book',
    on: { click: () => bookHeld(ctx) } });
  const release = h('button', { type: 'button', id: 'release', test: 'release', i18n: 'hold.release',
    on: { click: () => releaseHold(ctx) } });
  const err = errorArea('hold-error');
  Object.assign(ctx.el, { holdSummary: summary, clock, holdWarning: warning, bookButton: book, holdError: err });
  const sec = section('hold', 'hold.title', summary,
    h('p', { class: 'countdown-line' }, h('span', { i18n: 'hold.left' }), ' ', clock),
    warning, err, h('div', { class: 'actions' }, book, release), h('p', { class: 'keys', i18n: 'hold.keys' }));
  ctx.el.hold = sec;
  return sec;
}

function describe(a) {
  const where = place(a);
  return [
    h('p', { class: 'when' }, h('time', { dataset: { datetime: a.start }, text: dateTime(a.start, lang()) })),
    h('p', {}, `${where.location}${where.address ? ` — ${where.address}` : ''}`),
    h('p', {}, [where.provider, where.practitioner].filter(Boolean).join(' · ')),
    h('p', {}, serviceOf(a) || where.service),
  ];
}

// Holds the proposal: its place is taken until the hold expires.
export async function holdProposal(ctx, proposal) {
  clearError(ctx.el.proposalsError);
  try {
    const held = await post('Appointment/$hold', parameters([['appointment-reference', 'valueReference', { reference: `Appointment/${proposal.id}` }]]));
    ctx.s.held = held;
    ctx.s.proposal = proposal;
    clearError(ctx.el.holdError);
    fill(ctx.el.holdSummary, ...describe({ ...proposal, ...held, participant: held.participant || proposal.participant }));
    ctx.hide('proposals', 'booked');
    ctx.show('hold');
    startCountdown(ctx, ext(held, 'hold-expires'));
    ctx.backs(() => ctx.backToRequest(), () => releaseHold(ctx));
    focus(ctx.el.bookButton);
  } catch (e) {
    showError(ctx.el.proposalsError, e);
  }
}

function startCountdown(ctx, expires) {
  stopHold(ctx);
  const until = Date.parse(expires);
  const warning = ctx.el.holdWarning;
  warning.hidden = true;
  ctx.el.clock.classList.remove('warn');
  const tick = () => {
    const left = Math.max(0, (until - Date.now()) / 1000);
    ctx.el.clock.textContent = countdown(left);
    ctx.el.clock.dataset.seconds = String(Math.floor(left));
    if (left <= WARN_SECONDS && warning.hidden) {
      warning.hidden = false;
      warning.dataset.i18n = 'hold.warning';
      warning.textContent = t('hold.warning');
      ctx.el.clock.classList.add('warn');
    }
    if (left <= 0) lapsed(ctx);
  };
  tick();
  ctx.s.timer = setInterval(tick, 500);
}

export function stopHold(ctx) {
  if (ctx.s.timer) clearInterval(ctx.s.timer);
  ctx.s.timer = null;
}

async function lapsed(ctx) {
  stopHold(ctx);
  ctx.s.held = null;
  await ctx.find(ctx.s.query);
  showError(ctx.el.proposalsError, { key: 'hold.lapsed' });
}

// Esc on a hold: it is cancelled (its place frees at once) and new proposals drawn.
async function releaseHold(ctx) {
  stopHold(ctx);
  const held = ctx.s.held;
  ctx.s.held = null;
  if (held) {
    try {
      await post(`Appointment/${held.id}/$cancel`, parameters([['reason', 'valueString', t('hold.released-reason')]]));
    } catch {
      // The hold lapses by itself.
    }
  }
  await ctx.find(ctx.s.query);
}

async function bookHeld(ctx) {
  const held = ctx.s.held;
  if (!held) return;
  clearError(ctx.el.holdError);
  const list = [['appointment-reference', 'valueReference', { reference: `Appointment/${held.id}` }]];
  if (ctx.s.replacing) list.push(['cancelled-appt-id', 'valueString', ctx.s.replacing]);
  try {
    const bundle = await post('Appointment/$book', parameters(list));
    stopHold(ctx);
    const appointments = resources(bundle, 'Appointment');
    const booked = appointments.find((a) => a.status === 'booked') || appointments[0];
    const invoice = resources(bundle, 'Invoice')[0] || null;
    ctx.s.held = null;
    ctx.s.replacing = null;
    ctx.s.booked = { ...booked, participant: booked.participant || held.participant };
    await showBooked(ctx, ctx.s.booked, invoice);
  } catch (e) {
    showError(ctx.el.holdError, e);
    focus(ctx.el.bookButton);
  }
}

// --- the booking -----------------------------------------------------------------

export function bookedSection(ctx) {
  const code = h('strong', { id: 'booking-code', class: 'code big', test: 'booking-code' });
  const amount = h('strong', { id: 'ticket-amount', class: 'amount', test: 'ticket-amount' });
  const exemption = h('span', { id: 'exemption', test: 'exemption' });
  const notice = h('span', { id: 'pagopa-notice', class: 'code', test: 'pagopa-notice' });
  const summary = h('div', { id: 'booked-summary', class: 'summary', test: 'booked-summary' });
  const cancelPanel = h('div', { id: 'cancel-panel', class: 'panel warn', test: 'cancel-panel', hidden: true });
  const sheet = h('article', { id: 'booking-sheet', class: 'sheet print-only', test: 'booking-sheet', 'aria-hidden': 'true' });
  const err = errorArea('booked-error');
  const button = (id, key, fn, cls) => h('button', { type: 'button', id, test: id, class: cls, i18n: key, on: { click: fn } });
  const actions = h('div', { class: 'actions' },
    button('print-sheet', 'booked.print', () => printSheet('a4'), 'primary'),
    button('print-sheet-80', 'booked.print-80', () => printSheet('80mm')),
    button('to-payment', 'booked.pay', () => toPayment(ctx)),
    button('cancel-booking', 'booked.cancel', () => cancelBooked(ctx), 'danger'),
    button('new-booking', 'booked.new', () => ctx.backToRequest()));
  Object.assign(ctx.el, { code, amount, exemption, notice, bookedSummary: summary, cancelPanel, sheet, bookedError: err, bookedActions: actions });
  const sec = section('booked', 'booked.title',
    h('p', { class: 'code-line' }, h('span', { i18n: 'booked.code' }), ' ', code),
    summary,
    h('dl', { class: 'ticket' },
      h('dt', { i18n: 'ticket.owed' }), h('dd', {}, amount),
      h('dt', { i18n: 'ticket.exemption' }), h('dd', {}, exemption),
      h('dt', { i18n: 'ticket.notice' }), h('dd', {}, notice)),
    err, actions, cancelPanel, h('p', { class: 'keys', i18n: 'booked.keys' }), sheet);
  sec.addEventListener('keydown', (e) => bookedKeys(ctx, e));
  ctx.el.booked = sec;
  return sec;
}

function bookedKeys(ctx, e) {
  if (typing(e) || e.altKey || e.ctrlKey || e.metaKey) return;
  const k = e.key.toLowerCase();
  const map = { s: 'print-sheet', i: 'to-payment', n: 'new-booking', d: 'cancel-booking' };
  if (map[k]) { e.preventDefault(); ctx.el.booked.querySelector(`#${map[k]}`).click(); }
}

// What the patient owes for the booking's prescription, as the API counts it.
async function ticketOf(ctx, invoice) {
  const out = { owed: null, exemptions: [], notice: invoice ? ident(invoice, '/pagopa-notice') : null };
  if (!invoice) return out;
  const [owed, charges] = await Promise.all([
    get(`Patient/${ctx.s.patient.id}/$outstanding`).catch(() => null),
    chargeItems(invoice),
  ]);
  const part = (owed?.parameter || []).find((p) => p.name === 'invoice'
    && (p.part || []).some((x) => x.valueReference?.reference === `Invoice/${invoice.id}`));
  out.owed = part ? part.part.find((x) => x.name === 'amount')?.valueMoney?.value : 0;
  out.exemptions = charges.map((c) => ext(c, 'exemption')?.code).filter(Boolean);
  return out;
}

async function chargeItems(invoice) {
  const ids = (invoice.lineItem || []).map((l) => (l.chargeItemReference?.reference || '').replace('ChargeItem/', '')).filter(Boolean);
  if (!ids.length) return [];
  try {
    return resources(await get('ChargeItem', { _id: ids.join(','), _count: 100 }), 'ChargeItem');
  } catch {
    return [];
  }
}

async function showBooked(ctx, booked, invoice) {
  const code = ident(booked, '/booking-code') || '—';
  ctx.el.code.textContent = code;
  fill(ctx.el.bookedSummary, ...describe(booked));
  ctx.el.cancelPanel.hidden = true;
  clearError(ctx.el.bookedError);
  const ticket = await ticketOf(ctx, invoice);
  ctx.s.invoice = invoice;
  ctx.s.ticket = ticket;
  setMoney(ctx.el.amount, ticket.owed);
  fill(ctx.el.exemption, ticket.exemptions.length
    ? h('span', { class: 'badge ok' }, h('span', { i18n: 'ticket.exempt' }), ` ${ticket.exemptions.join(', ')}`)
    : h('span', { i18n: 'ticket.not-exempt' }));
  ctx.el.notice.textContent = ticket.notice || '—';
  await drawSheet(ctx, booked, code, ticket);
  ctx.hide('proposals', 'hold');
  ctx.show('booked');
  ctx.backs(() => ctx.backToRequest());
  loadAppointments(ctx);
  // A call centre reads the code back and moves on; a counter prints first.
  focus(ctx.el.bookedActions.querySelector(who()?.channel === 'call-centre' ? '#new-booking' : '#print-sheet'));
}

function setMoney(el, value) {
  el.dataset.money = value ?? '';
  el.textContent = value === null || value === undefined ? '—' : money(value, lang());
}

async function drawSheet(ctx, booked, code, ticket) {
  const where = place(booked);
  const me = who();
  const [point, preparation] = await Promise.all([me?.org ? organisationName(me.org) : '', preparationOf(booked)]);
  const row = (key, value, test) => [h('dt', { i18n: key }), h('dd', { test }, value)];
  const amount = h('span', { dataset: { money: ticket.owed ?? '' }, text: ticket.owed === null ? '—' : money(ticket.owed, lang()) });
  const notice = getSettings()?.cancellationNoticeHours;
  fill(ctx.el.sheet,
    h('h1', { i18n: 'sheet.title' }),
    h('p', { class: 'sheet-code' }, h('span', { i18n: 'booked.code' }), ' ', h('strong', { text: code })),
    h('dl', {},
      row('sheet.patient', `${personName(ctx.s.patient)} — ${ident(ctx.s.patient, 'codiceFiscale') || ''}`),
      row('sheet.when', h('time', { dataset: { datetime: booked.start }, text: dateTime(booked.start, lang()) })),
      row('sheet.service', serviceOf(booked) || where.service),
      row('sheet.where', `${where.location}${where.address ? `, ${where.address}` : ''}`),
      row('sheet.provider', [where.provider, where.practitioner].filter(Boolean).join(' — ')),
      row('ticket.owed', amount, 'sheet-amount'),
      row('ticket.exemption', ticket.exemptions.length ? `${t('ticket.exempt')} ${ticket.exemptions.join(', ')}` : t('ticket.not-exempt')),
      row('ticket.notice', ticket.notice || '—'),
      row('sheet.booked-at', point)),
    preparation ? h('p', { class: 'sheet-preparation', test: 'preparation' },
      h('strong', { i18n: 'sheet.preparation' }), ' ', h('span', { text: preparation })) : null,
    h('p', { class: 'sheet-note', i18n: 'sheet.note' }),
    // The notice in force (the dated billing rules, through the console's settings).
    notice != null ? h('p', { class: 'sheet-note', test: 'cancel-notice', i18n: 'sheet.cancel-notice', i18nArgs: { hours: notice } }) : null);
}

// The catalog's preparation notes for the booked service (the `preparation` extension
// of its ActivityDefinition, one search by catalog code), or '' when it has none.
async function preparationOf(booked) {
  const c = [].concat(booked.serviceType || []).flatMap((x) => x.coding || [])[0];
  if (!c?.system || !c.code) return '';
  try {
    const bundle = await get('ActivityDefinition', { identifier: `${c.system}|${c.code}`, _count: 1 });
    return ext(resources(bundle, 'ActivityDefinition')[0], 'preparation') || '';
  } catch {
    return '';
  }
}

function printSheet(paper) {
  document.body.dataset.print = 'booking-sheet';
  document.body.dataset.paper = paper;
  window.print();
}

function toPayment(ctx) {
  const code = ctx.el.code.textContent;
  location.hash = `#/payment?q=${encodeURIComponent(code)}`;
}

function cancelBooked(ctx) {
  confirmCancel(ctx, ctx.s.booked, ctx.el.cancelPanel, ctx.el.bookedError, () => ctx.el.bookedActions.querySelector('#cancel-booking'));
}
