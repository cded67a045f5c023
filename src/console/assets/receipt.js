// Paying a ticket (POST PaymentNotice), its receipt (the API's own text, printed
// on an 80 mm receipt printer or A4) and the point's remittance of the day
// (Rendiconto giornaliero: PaymentReconciliation remittance-<point>-<day>).

import { h, fill, errorArea, showError, clearError, focus, pushBack, clearBacks, typing, section } from './dom.js';
import { lang } from './i18n.js';
import { fhir, get, post, getSettings, who } from './api.js';
import { money, dateTime, romeDay, ident } from './format.js';
import { payer, organisationName } from './directory.js';

// The PaymentNotice of the ticket being paid (see billing.md, Payments).
async function notice(p) {
  const s = getSettings();
  const recipient = await payer();
  if (!recipient) throw { key: 'pay.no-payer' };
  return {
    resourceType: 'PaymentNotice',
    status: 'active',
    created: new Date().toISOString(),
    identifier: [{ system: `urn:x-cupola-console:${p.point}`, value: p.reference }],
    request: { reference: `Invoice/${p.invoice.id}` },
    payment: { identifier: { system: `${s.canonicalBase}/sid/remittance`, value: `${p.point}/${romeDay()}` } },
    recipient: { reference: recipient },
    amount: { value: Number(p.amount), currency: 'EUR' },
  };
}

export async function pay(ctx) {
  const p = ctx.s.paying;
  if (!p) return;
  clearError(ctx.el.payConfirmError);
  const button = ctx.el.payConfirm;
  button.disabled = true;
  try {
    const paid = await post('PaymentNotice', await notice(p));
    await ctx.showReceipt(p.invoice, { paid, amount: p.amount, reference: p.reference });
    ctx.s.paying = null;
  } catch (e) {
    showError(ctx.el.payConfirmError, e);
    focus(button);
  } finally {
    button.disabled = false;
  }
}

export function receiptSection(ctx) {
  const head = h('div', { id: 'receipt-head', class: 'receipt-head' });
  const text = h('pre', { id: 'receipt-text', class: 'receipt-text', test: 'receipt-text' });
  const box = h('div', { id: 'receipt', class: 'receipt print-target', test: 'receipt' }, head, text);
  const err = errorArea('receipt-error');
  const print = (paper) => () => { document.body.dataset.print = 'receipt'; document.body.dataset.paper = paper; window.print(); };
  const actions = h('div', { class: 'actions' },
    h('button', { type: 'button', id: 'print-receipt', class: 'primary', test: 'print-receipt', i18n: 'receipt.print', on: { click: print('80mm') } }),
    h('button', { type: 'button', id: 'print-receipt-a4', test: 'print-receipt-a4', i18n: 'receipt.print-a4', on: { click: print('a4') } }),
    h('button', { type: 'button', id: 'next-payment', test: 'next-payment', i18n: 'receipt.next', on: { click: () => ctx.again() } }));
  Object.assign(ctx.el, { receiptHead: head, receiptText: text, receiptError: err, receiptActions: actions });
  ctx.showReceipt = (inv, payment) => showReceipt(ctx, inv, payment);
  const sec = section('receipt-step', 'receipt.title', err, box, actions, h('p', { class: 'keys', i18n: 'receipt.keys' }));
  sec.addEventListener('keydown', (e) => {
    if (typing(e) || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === 'n' || e.key === 'N') { e.preventDefault(); ctx.again(); }
  });
  ctx.el.receipt = sec;
  return sec;
}

async function showReceipt(ctx, inv, payment) {
  clearError(ctx.el.receiptError);
  const me = who();
  const point = me?.org ? await organisationName(me.org) : '';
  const at = payment?.paid?.created || new Date().toISOString();
  fill(ctx.el.receiptHead,
    h('p', { class: 'receipt-title', i18n: 'receipt.title' }),
    h('p', { text: point }),
    payment ? h('p', {}, h('time', { dataset: { datetime: at }, text: dateTime(at, lang()) })) : null,
    payment ? h('p', {}, h('span', { i18n: 'pay.reference' }), ' ', h('span', { class: 'code', text: payment.reference })) : null,
    payment ? h('p', { class: 'paid' }, h('span', { i18n: 'receipt.paid' }), ' ',
      h('strong', { test: 'receipt-amount', dataset: { money: String(payment.amount) }, text: money(payment.amount, lang()) })) : null,
    h('p', {}, h('span', { i18n: 'ticket.notice' }), ' ', h('span', { class: 'code', text: ident(inv, '/pagopa-notice') || '—' })));
  try {
    ctx.el.receiptText.textContent = await fhir('GET', `Invoice/${inv.id}`, { params: { _format: 'text' }, accept: 'text/plain' });
  } catch (e) {
    ctx.el.receiptText.textContent = '';
    showError(ctx.el.receiptError, e);
  }
  ctx.hide('owed', 'confirm');
  ctx.show('receipt');
  clearBacks();
  pushBack(() => ctx.again());
  focus(ctx.el.receiptActions.querySelector('#print-receipt'));
  if (payment && me?.org) loadRemittance(ctx);
}

// --- the remittance of the day ----------------------------------------------------

export function remittanceSection(ctx) {
  const body = h('div', { id: 'remittance', class: 'remittance print-target', test: 'remittance' });
  const err = errorArea('remittance-error');
  const show = h('button', { type: 'button', id: 'show-remittance', test: 'show-remittance', i18n: 'remittance.show',
    on: { click: () => loadRemittance(ctx, true) } });
  const print = h('button', { type: 'button', id: 'print-remittance', test: 'print-remittance', i18n: 'remittance.print',
    on: { click: () => { document.body.dataset.print = 'remittance'; document.body.dataset.paper = 'a4'; window.print(); } } });
  Object.assign(ctx.el, { remittance: body, remittanceError: err });
  // Whoever takes payments for an organisation (a pharmacy, a counter) reads its
  // remittance; the API shows a counter its own only.
  const point = Boolean(who()?.org);
  const sec = section('remittance-step', 'remittance.title',
    point ? h('div', { class: 'actions' }, show, print) : h('p', { class: 'note', i18n: 'remittance.points-only' }), err, body);
  ctx.el.remittanceStep = sec;
  return sec;
}

export async function loadRemittance(ctx, focusIt = false) {
  const me = who();
  clearError(ctx.el.remittanceError);
  if (!me?.org) return;
  const day = romeDay();
  try {
    const r = await get(`PaymentReconciliation/remittance-${me.org}-${day}`);
    drawRemittance(ctx, r, day);
  } catch (e) {
    if (e.status === 404) {
      fill(ctx.el.remittance, h('p', { test: 'remittance-none', i18n: 'remittance.none', i18nArgs: { day } }));
    } else {
      showError(ctx.el.remittanceError, e);
    }
  }
  if (focusIt) focus(ctx.el.remittanceStep.querySelector('h2'));
}

function drawRemittance(ctx, r, day) {
  const lines = r.detail || [];
  const amount = (v) => h('span', { dataset: { money: String(v ?? '') }, text: money(v ?? 0, lang()) });
  fill(ctx.el.remittance,
    h('p', {}, h('span', { i18n: 'remittance.day' }), ` ${day}`),
    h('p', {}, h('span', { i18n: 'remittance.total' }), ' ', h('strong', { test: 'remittance-total' }, amount(r.paymentAmount?.value))),
    h('p', {}, h('span', { i18n: 'remittance.count' }), ` ${lines.length}`),
    h('table', { class: 'lines' },
      h('thead', {}, h('tr', {}, ['remittance.reference', 'remittance.invoice', 'remittance.kind', 'remittance.amount']
        .map((k) => h('th', { scope: 'col', i18n: k })))),
      h('tbody', {}, lines.map((l) => h('tr', { test: 'remittance-line' },
        h('td', { class: 'code', text: l.identifier?.value || '' }),
        h('td', { text: (l.request?.reference || '').replace('Invoice/', '') }),
        h('td', { i18n: `remittance.${l.type?.coding?.[0]?.code || 'payment'}` }),
        h('td', { class: 'num' }, amount(l.amount?.value)))))));
  ctx.el.remittance.dataset.total = String(r.paymentAmount?.value ?? '');
}
