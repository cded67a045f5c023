// The payment desk (payment-point; a counter's booking-point too): one field takes
// a booking code, an NRE, a codice fiscale or a pagoPA notice; what is owed comes
// from Patient/{id}/$outstanding; a payment is a PaymentNotice; the receipt is the
// API's (Invoice?_format=text), printed on A4 or 80 mm; the point's remittance of
// the day is its PaymentReconciliation.
//
// Keys: Enter searches and pays the focused ticket, Enter again confirms, Esc goes
// back, Alt+R the remittance of the day, N (on a receipt) the next payment.

import { h, field, errorArea, showError, clearError, focus, onEnter, arrowList, clearBacks, pushBack, ready, section } from './dom.js';
import { t, lang } from './i18n.js';
import { get, resources, getSettings, who } from './api.js';
import { classify, nrePattern, money, date, ident, ext, personName } from './format.js';
import { payer } from './directory.js';
import { pay, receiptSection, remittanceSection, loadRemittance } from './receipt.js';

export function render(view, params) {
  const ctx = { s: {}, el: {} };
  ctx.show = (id) => { ctx.el[id].hidden = false; };
  ctx.hide = (...ids) => ids.forEach((id) => { ctx.el[id].hidden = true; });
  ctx.again = () => again(ctx);
  const desk = h('div', { class: 'desk', id: 'payment-desk', test: 'payment-desk' },
    h('h1', { class: 'desk-title', i18n: 'desk.payment' }),
    findSection(ctx), owedSection(ctx), confirmSection(ctx), receiptSection(ctx), remittanceSection(ctx));
  view.replaceChildren(desk);
  ctx.hide('owed', 'confirm', 'receipt');
  clearBacks();
  const q = params.get('q');
  if (q) ctx.el.query.value = q;
  focus(ctx.el.query);
  const me = who();
  const first = q ? search(ctx) : (me?.org ? loadRemittance(ctx) : Promise.resolve());
  Promise.all([first, payer().catch(() => null)]).finally(() => ready('payment'));
  return {
    dispose: () => {},
    onKey: (e) => {
      if (e.altKey && e.code === 'KeyR') { e.preventDefault(); loadRemittance(ctx, true); return true; }
      return false;
    },
  };
}

function findSection(ctx) {
  const q = field({ id: 'pay-query', label: 'pay.query', test: 'pay-query', hint: 'pay.query-hint',
    attrs: { class: 'code wide', autocapitalize: 'characters' } });
  const err = errorArea('pay-error');
  Object.assign(ctx.el, { query: q.input, queryHint: q.hint, payError: err });
  q.input.addEventListener('input', () => recognise(ctx));
  onEnter(q.input, () => search(ctx));
  const sec = section('pay-find', 'pay.find', q.box, err);
  ctx.el.find = sec;
  return sec;
}

// Says, as it is typed, what the field has recognised.
function recognise(ctx) {
  const c = classify(ctx.el.query.value, nrePattern(getSettings().nre?.format));
  const key = `pay.kind.${c.kind}`;
  ctx.el.queryHint.dataset.i18n = key;
  ctx.el.queryHint.textContent = t(key);
  return c;
}

// The search for what was typed: Invoices, or the patient of a codice fiscale.
async function invoicesFor(c) {
  const s = getSettings();
  const sid = (name) => `${s.canonicalBase}/sid/${name}`;
  const params = {
    nre: { identifier: `${s.nre.system}|${c.value}` },
    notice: { identifier: `${sid('pagopa-notice')}|${c.value}` },
    iuv: { identifier: `${sid('iuv')}|${c.value}` },
    'booking-code': { 'booking-code': c.value },
    other: { identifier: c.value },
  }[c.kind];
  return resources(await get('Invoice', { ...params, _count: 50 }), 'Invoice');
}

async function search(ctx) {
  const c = recognise(ctx);
  clearError(ctx.el.payError);
  ctx.hide('owed', 'confirm', 'receipt');
  if (c.kind === 'empty') { showError(ctx.el.payError, { key: 'pay.need-query' }); return; }
  try {
    let patients;
    let found = [];
    if (c.kind === 'cf') {
      patients = resources(await get('Patient', { identifier: c.value }), 'Patient');
    } else {
      found = await invoicesFor(c);
      const ids = [...new Set(found.map((i) => (i.subject?.reference || '').replace('Patient/', '')).filter(Boolean))];
      patients = ids.length ? resources(await get('Patient', { _id: ids.join(',') }), 'Patient') : [];
    }
    if (!patients.length && !found.length) { showError(ctx.el.payError, { key: 'pay.none' }); return; }
    await drawOwed(ctx, patients, found);
  } catch (e) {
    showError(ctx.el.payError, e);
  }
}

// --- what is owed -----------------------------------------------------------------

function owedSection(ctx) {
  const who_ = h('p', { id: 'owed-patient', class: 'banner', test: 'owed-patient' });
  const total = h('strong', { id: 'owed-total', class: 'amount', test: 'owed-total' });
  const list = h('ul', { id: 'invoices', class: 'invoices', test: 'invoices' });
  arrowList(list, 'button.pay, button.show-receipt');
  Object.assign(ctx.el, { owedPatient: who_, owedTotal: total, invoices: list });
  const sec = section('owed', 'pay.owed', who_, h('p', {}, h('span', { i18n: 'pay.total' }), ' ', total), list);
  ctx.el.owed = sec;
  return sec;
}

// $outstanding of each patient: {invoice id → amount}, and the total.
async function outstanding(patients) {
  const owed = new Map();
  let total = 0;
  for (const p of patients) {
    const out = await get(`Patient/${p.id}/$outstanding`);
    for (const part of out.parameter || []) {
      if (part.name === 'total') total += Number(part.valueMoney?.value || 0);
      if (part.name !== 'invoice') continue;
      const ref = part.part.find((x) => x.name === 'invoice')?.valueReference?.reference || '';
      owed.set(ref.replace('Invoice/', ''), part.part.find((x) => x.name === 'amount')?.valueMoney?.value);
    }
  }
  return { owed, total };
}

async function drawOwed(ctx, patients, found) {
  const { owed, total } = await outstanding(patients);
  // The invoices found, then the patient's other unpaid ones.
  const missing = [...owed.keys()].filter((id) => !found.some((i) => i.id === id));
  const others = missing.length ? resources(await get('Invoice', { _id: missing.join(','), _count: 100 }), 'Invoice') : [];
  const invoices = [...found, ...others];
  ctx.el.owedPatient.replaceChildren(...patients.map((p) => h('span', {},
    h('strong', { test: 'owed-name', text: personName(p) }), ' ', h('span', { class: 'code', text: ident(p, 'codiceFiscale') || '' }))));
  ctx.el.owedTotal.dataset.money = String(total);
  ctx.el.owedTotal.textContent = money(total, lang());
  ctx.el.invoices.replaceChildren(...invoices.map((inv) => invoiceRow(ctx, inv, owed.get(inv.id))));
  if (!invoices.length) ctx.el.invoices.append(h('li', { class: 'muted', i18n: 'pay.nothing' }));
  ctx.show('owed');
  clearBacks();
  pushBack(() => ctx.again());
  focus(ctx.el.invoices.querySelector('button.pay') || ctx.el.invoices.querySelector('button') || ctx.el.query);
}

function invoiceRow(ctx, inv, owedAmount) {
  const amount = owedAmount === undefined ? 0 : Number(owedAmount);
  const paid = ext(inv, 'amount-paid')?.value;
  const nre = ident(inv, '4.3.9');
  const codes = (inv.identifier || []).filter((i) => i.system?.endsWith('/booking-code')).map((i) => i.value);
  const button = amount > 0
    ? h('button', { type: 'button', class: 'pay primary', test: 'pay', dataset: { id: inv.id },
      on: { click: () => confirmPay(ctx, inv, owedAmount) } },
    h('span', { i18n: 'pay.pay' }), ' ', h('span', { dataset: { money: String(amount) }, text: money(amount, lang()) }))
    : h('button', { type: 'button', class: 'show-receipt', test: 'show-receipt', i18n: 'pay.receipt',
      on: { click: () => ctx.showReceipt(inv, null) } });
  return h('li', { class: 'invoice', test: 'invoice', dataset: { id: inv.id, status: inv.status } },
    h('span', { class: 'what' },
      nre ? h('span', {}, h('span', { i18n: 'pay.nre' }), ' ', h('span', { class: 'code', text: nre })) : null,
      codes.length ? h('span', {}, ' · ', h('span', { i18n: 'booked.code' }), ' ', h('span', { class: 'code', text: codes.join(', ') })) : null),
    h('span', { class: 'notice-no' }, h('span', { i18n: 'ticket.notice' }), ' ', h('span', { class: 'code', text: ident(inv, '/pagopa-notice') || '—' })),
    inv.date ? h('span', { dataset: { date: inv.date } , text: date(inv.date, lang()) }) : null,
    h('span', {}, h('span', { i18n: 'pay.ticket' }), ' ', h('span', { dataset: { money: inv.totalNet?.value ?? '' }, text: money(inv.totalNet?.value ?? 0, lang()) })),
    paid !== undefined ? h('span', {}, h('span', { i18n: 'cancel.paid' }), ' ', h('span', { dataset: { money: paid }, text: money(paid, lang()) })) : null,
    h('strong', { class: 'amount', test: 'invoice-amount', dataset: { money: String(amount) }, text: money(amount, lang()) }),
    h('span', { class: `badge ${amount > 0 ? 'late' : 'ok'}`, i18n: amount > 0 ? 'pay.to-pay' : `pay.status.${inv.status}` }),
    button);
}

// --- paying -----------------------------------------------------------------------

function confirmSection(ctx) {
  const summary = h('div', { id: 'pay-summary', class: 'summary', test: 'pay-summary' });
  const amount = h('strong', { id: 'pay-amount', class: 'amount big', test: 'pay-amount' });
  const go = h('button', { type: 'button', id: 'pay-confirm', class: 'primary big', test: 'pay-confirm', i18n: 'pay.confirm',
    on: { click: () => pay(ctx) } });
  const back = h('button', { type: 'button', test: 'pay-back', i18n: 'common.back', on: { click: () => backToOwed(ctx) } });
  const err = errorArea('pay-confirm-error');
  Object.assign(ctx.el, { paySummary: summary, payAmount: amount, payConfirm: go, payConfirmError: err });
  const sec = section('confirm', 'pay.confirm-title', summary, h('p', {}, h('span', { i18n: 'pay.amount' }), ' ', amount),
    err, h('div', { class: 'actions' }, go, back));
  ctx.el.confirm = sec;
  return sec;
}

function confirmPay(ctx, inv, amount) {
  // One reference per payment: a retry after a lost answer is the same payment.
  const me = who();
  ctx.s.paying = { invoice: inv, amount, reference: `C-${Date.now().toString(36).toUpperCase()}-${Math.random().toString(36).slice(2, 6).toUpperCase()}`, point: me?.org };
  clearError(ctx.el.payConfirmError);
  ctx.el.paySummary.replaceChildren(
    h('p', {}, h('span', { i18n: 'ticket.notice' }), ' ', h('span', { class: 'code', text: ident(inv, '/pagopa-notice') || '—' })),
    h('p', {}, h('span', { i18n: 'pay.reference' }), ' ', h('span', { class: 'code', test: 'pay-reference', text: ctx.s.paying.reference })));
  ctx.el.payAmount.dataset.money = String(amount);
  ctx.el.payAmount.textContent = money(amount, lang());
  ctx.hide('owed');
  ctx.show('confirm');
  pushBack(() => backToOwed(ctx));
  focus(ctx.el.payConfirm);
}

function backToOwed(ctx) {
  ctx.hide('confirm', 'receipt');
  ctx.show('owed');
  focus(ctx.el.invoices.querySelector('button.pay') || ctx.el.query);
}

function again(ctx) {
  ctx.hide('owed', 'confirm', 'receipt');
  clearBacks();
  focus(ctx.el.query);
}

