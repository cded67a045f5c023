// The integration desk's dead-letter queue ($dead-letter): each message with its
// origin and reason in plain words, replayed one at a time or all at once
// ($dead-letter-replay). Reading the queue leaves every message in it.

import { h, fill, errorArea, showError, clearError, focus, section, pushBack } from './dom.js';
import { t } from './i18n.js';
import { fhir, post, parameters } from './api.js';
import { partsOf, named, when } from './integration.js';

export function deadLetterSection(ctx) {
  Object.assign(ctx.el, {
    deadTotal: h('p', { test: 'dead-total' }),
    deadList: h('tbody', { test: 'dead-rows' }),
    deadResult: h('div', { class: 'summary', test: 'replay-result', 'aria-live': 'polite' }),
    deadConfirm: h('div', { class: 'confirm', test: 'replay-confirm', role: 'alertdialog', hidden: true }),
    deadError: errorArea('dead-error'),
    replayAll: h('button', { type: 'button', test: 'replay-all', i18n: 'int.replay-all', disabled: true,
      on: { click: () => askReplayAll(ctx) } }),
  });
  const head = ['int.created', 'int.dead-origin', 'int.provider', 'int.reason', 'int.replay'].map((k) => h('th', { scope: 'col', i18n: k }));
  return section('int-dead', 'int.dead', ctx.el.deadError, ctx.el.deadTotal,
    h('table', { class: 'lines', test: 'dead-table' }, h('thead', {}, h('tr', {}, head)), ctx.el.deadList),
    h('div', { class: 'actions' }, ctx.el.replayAll), ctx.el.deadConfirm, ctx.el.deadResult);
}

export async function loadDeadLetters(ctx) {
  try {
    const answer = await fhir('GET', '$dead-letter');
    const total = answer.parameter?.find((p) => p.name === 'total')?.valueInteger ?? 0;
    const rows = named(answer, 'message').map((p) => partsOf(p.part));
    ctx.deadCount = total;
    fill(ctx.el.deadTotal, h('span', { i18n: total ? 'int.dead-total' : 'int.dead-empty', i18nArgs: { n: total } }));
    fill(ctx.el.deadList, rows.map((d) => deadRow(ctx, d)));
    ctx.el.replayAll.disabled = total === 0;
    clearError(ctx.el.deadError);
  } catch (err) {
    // Without a broker the queue does not exist (409): say so, not the status.
    if (err.status === 409) fill(ctx.el.deadTotal, h('span', { i18n: 'int.no-broker' }));
    else showError(ctx.el.deadError, err);
  }
}

function deadRow(ctx, d) {
  const id = d['dead-letter-id'];
  return h('tr', { test: `dead-${id}` },
    h('td', {}, when(d.died)),
    h('td', { text: d.origin || '' }),
    h('td', { text: d.provider || d['routing-key'] || d.queue || '' }),
    h('td', { class: 'reason', test: `dead-reason-${id}`, text: d.reason || '' }),
    h('td', {}, h('button', { type: 'button', test: `replay-${id}`, i18n: 'int.replay',
      on: { click: (e) => replay(ctx, [['dead-letter-id', 'valueString', id]], e.target) } })));
}

function askReplayAll(ctx) {
  const yes = h('button', { type: 'button', class: 'primary', test: 'replay-yes', i18n: 'int.resend-yes',
    on: { click: (e) => { closeConfirm(ctx); replay(ctx, [['all', 'valueBoolean', true]], e.target); } } });
  const no = h('button', { type: 'button', test: 'replay-no', i18n: 'common.cancel', on: { click: () => closeConfirm(ctx) } });
  fill(ctx.el.deadConfirm, h('p', { i18n: 'int.replay-confirm', i18nArgs: { n: ctx.deadCount || 0 } }),
    h('div', { class: 'actions' }, yes, no));
  ctx.el.deadConfirm.hidden = false;
  ctx.undoDead = pushBack(() => closeConfirm(ctx));
  focus(yes);
}

function closeConfirm(ctx) {
  ctx.el.deadConfirm.hidden = true;
  if (ctx.undoDead) { ctx.undoDead(); ctx.undoDead = null; }
}

// One request at a time: every replay button is disabled while one is in flight.
async function replay(ctx, list, button) {
  if (ctx.replaying) return;
  ctx.replaying = true;
  const buttons = [ctx.el.replayAll, ...ctx.el.deadList.querySelectorAll('button')];
  for (const b of buttons) b.disabled = true;
  try {
    const answer = await post('$dead-letter-replay', parameters(list));
    const n = answer.parameter?.find((p) => p.name === 'replayed-count')?.valueInteger ?? 0;
    const lines = named(answer, 'replayed').map((p) => partsOf(p.part))
      .map((r) => h('li', { test: `replayed-${r['dead-letter-id']}`, text: `${r['dead-letter-id']}: ${r.outcome} — ${r.detail || ''}` }));
    fill(ctx.el.deadResult, h('p', { test: 'replay-count', i18n: 'int.replayed', i18nArgs: { n } }), h('ul', {}, lines));
  } catch (err) {
    showError(ctx.el.deadError, err);
  }
  ctx.replaying = false;
  await loadDeadLetters(ctx);
  if (button && !button.isConnected) focus(ctx.el.replayAll);
}
