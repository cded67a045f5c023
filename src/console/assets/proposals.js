// $find's proposals: place, provider, date and time, the priority class and
// whether the proposal meets its deadline ("entro i tempi"), and the guarantee
// pathway (percorso di tutela) when the API says it applies. Enter holds the
// focused proposal; Delete (or R) declines it, after the guarantee warning.

import { h, fill, errorArea, showError, clearError, focus, arrowList, pushBack, section } from './dom.js';
import { t, lang } from './i18n.js';
import { get, post, resources, notes, getSettings } from './api.js';
import { dateTime, date, addDays, ext, romeDay } from './format.js';
import { resolve, place, placeRefs, priorityClasses, serviceOf } from './directory.js';
import { holdProposal } from './booked.js';
import { waitlistPanel, showLine } from './waitlist.js';

// How far ahead $find looks from the chosen day.
const WINDOW_DAYS = 180;
const COUNT = 10;

export function proposalsSection(ctx) {
  const first = h('p', { id: 'first-available', class: 'first', test: 'first-available', 'aria-live': 'polite' });
  const tutela = h('div', { id: 'guarantee-pathway', class: 'notice', test: 'guarantee-pathway', role: 'status', hidden: true });
  const list = h('ol', { id: 'proposals', class: 'proposals', test: 'proposals' });
  const decline = h('div', { id: 'decline', class: 'panel warn', test: 'decline', hidden: true, role: 'alertdialog', 'aria-labelledby': 'decline-title' });
  const err = errorArea('proposals-error');
  arrowList(list, 'button.pick');
  Object.assign(ctx.el, { first, tutela, list, decline, proposalsError: err });
  const sec = section('proposals', 'proposals.title', first, tutela, err, list, decline,
    h('p', { class: 'keys', i18n: 'proposals.keys' }), waitlistPanel(ctx));
  ctx.el.proposals = sec;
  return sec;
}

// The parameters of $find for a prescription (NRE) or a service.
function findParams(ctx, query) {
  const settings = getSettings();
  const from = ctx.el.from.value || romeDay();
  const params = { start: from, end: addDays(from, WINDOW_DAYS), _count: COUNT };
  if (query.nre) params['referral-identifier'] = `${settings.nre.system}|${query.nre}`;
  else {
    params['service-type'] = `${settings.canonicalBase}/CodeSystem/catalog|${query.service}`;
    params['patient-reference'] = `Patient/${ctx.s.patient.id}`;
    if (query.klass) params['priority-class'] = query.klass;
  }
  return params;
}

// Runs $find and draws the proposals, the first focused.
export async function findProposals(ctx, query) {
  ctx.s.query = query;
  clearError(ctx.el.proposalsError);
  clearError(ctx.el.requestError);
  const busy = ctx.el.request.querySelector('#request-summary');
  busy.setAttribute('aria-busy', 'true');
  try {
    const bundle = await get('Appointment/$find', findParams(ctx, query));
    const proposals = resources(bundle, 'Appointment');
    await resolve(proposals.flatMap(placeRefs));
    ctx.s.classes = await priorityClasses();
    ctx.s.proposals = proposals;
    draw(ctx, proposals, notes(bundle));
  } catch (e) {
    showError(ctx.el.requestError, e);
    focus(query.nre ? ctx.el.nre : ctx.el.service);
  } finally {
    busy.removeAttribute('aria-busy');
  }
}

// The class the proposals are held to: the prescription's, or the one chosen.
function classOf(ctx) {
  if (ctx.s.query?.klass) return ctx.s.query.klass;
  for (const r of ctx.s.requests || []) {
    const code = ext(r, 'priority-class')?.code;
    if (code) return code;
  }
  return null;
}

function draw(ctx, proposals, words) {
  ctx.hide('hold', 'booked');
  ctx.show('proposals');
  ctx.el.decline.hidden = true;
  const tutela = words.filter((w) => /tutela|guarantee|declined/i.test(w));
  fill(ctx.el.tutela, h('strong', { i18n: 'proposals.pathway' }), ...tutela.map((w) => h('p', { text: w })));
  ctx.el.tutela.hidden = tutela.length === 0;
  fill(ctx.el.list, ...proposals.map((p, i) => item(ctx, p, i)));
  const first = proposals[0];
  if (first) {
    const where = place(first);
    fill(ctx.el.first, h('span', { i18n: 'proposals.first' }), ' ',
      h('strong', { dataset: { datetime: first.start }, text: dateTime(first.start, lang()) }), ', ',
      h('span', { i18n: 'proposals.at' }), ` ${where.location}${where.town ? ` (${where.town})` : ''}`);
  } else {
    fill(ctx.el.first, h('span', { i18n: 'proposals.none' }));
  }
  showLine(ctx);
  const others = words.filter((w) => !tutela.includes(w));
  if (others.length) showError(ctx.el.proposalsError, { messages: others });
  ctx.backs(() => ctx.backToRequest());
  focus(ctx.el.list.querySelector('button.pick') || ctx.el.nre);
}

function item(ctx, p, i) {
  const where = place(p);
  const within = ext(p, 'within-guarantee');
  const code = classOf(ctx);
  const klass = code ? (ctx.s.classes?.get(code) || {}) : null;
  const expires = ext(p, 'proposal-expires');
  const by = ext(p, 'guarantee-deadline'); // the date the class must be served by
  const pick = h('button', {
    type: 'button', class: 'pick', test: 'proposal', id: `proposal-${i}`,
    dataset: { id: p.id, within: String(within === true) },
    on: { click: () => holdProposal(ctx, p), keydown: (e) => keys(ctx, e, p) },
  },
  h('span', { class: 'when' }, h('time', { dateTime: p.start, dataset: { datetime: p.start }, text: dateTime(p.start, lang()) })),
  h('span', { class: 'where' }, where.location, where.district ? ` · ${where.district}` : '', where.town ? ` (${where.town})` : ''),
  h('span', { class: 'who' }, [where.provider, where.practitioner].filter(Boolean).join(' · ')),
  h('span', { class: 'what' }, serviceOf(p) || where.service),
  h('span', { class: 'class' },
    code ? h('span', { class: 'badge', title: klass.definition || '' }, `${t('request.class-short')} ${code}${klass.display ? ` · ${klass.display}` : ''}`) : null,
    klass?.definition ? h('span', { class: 'deadline', text: klass.definition }) : null,
    within === true ? h('span', { class: 'badge ok', test: 'within', i18n: 'proposals.within' })
      : code ? h('span', { class: 'badge late', test: 'outside', i18n: 'proposals.outside' }) : null,
    by ? h('span', { class: 'deadline', test: 'deadline' }, h('span', { i18n: 'proposals.by' }), ' ',
      h('time', { dateTime: by, dataset: { date: by }, text: date(by, lang()) })) : null),
  expires ? h('span', { class: 'expires' }, h('span', { i18n: 'proposals.expires' }), ' ', h('time', { dataset: { datetime: expires }, text: dateTime(expires, lang()) })) : null);
  return h('li', { class: 'proposal', test: 'proposal-item', dataset: { id: p.id } }, pick);
}

function keys(ctx, e, p) {
  if (e.key === 'Delete' || e.key === 'r' || e.key === 'R') {
    e.preventDefault();
    askDecline(ctx, p, e.currentTarget);
  }
}

// Declining: the guarantee warning first when the proposal met the deadline.
function askDecline(ctx, p, from) {
  const within = ext(p, 'within-guarantee') === true;
  const box = ctx.el.decline;
  const confirm = h('button', { type: 'button', class: 'danger', id: 'decline-confirm', test: 'decline-confirm', i18n: 'proposals.decline-confirm',
    on: { click: () => decline(ctx, p) } });
  let unback = null;
  const close = () => { box.hidden = true; if (unback) unback(); focus(from); };
  const cancel = h('button', { type: 'button', test: 'decline-cancel', i18n: 'common.cancel', on: { click: close } });
  fill(box,
    h('h3', { id: 'decline-title', i18n: 'proposals.decline-title' }),
    h('p', { text: `${dateTime(p.start, lang())} · ${place(p).location}` }),
    within ? h('p', { class: 'warning', test: 'guarantee-warning', i18n: 'proposals.decline-warning' }) : null,
    h('div', { class: 'actions' }, confirm, cancel));
  box.hidden = false;
  unback = pushBack(() => { box.hidden = true; focus(from); });
  focus(confirm);
}

async function decline(ctx, p) {
  const response = {
    resourceType: 'AppointmentResponse',
    appointment: { reference: `Appointment/${p.id}` },
    participantStatus: 'declined',
    actor: { reference: `Patient/${ctx.s.patient.id}` },
  };
  try {
    await post('AppointmentResponse', response);
    ctx.el.decline.hidden = true;
    // Again: a declined offer within the deadline changes what the others mean.
    await findProposals(ctx, ctx.s.query);
  } catch (e) {
    showError(ctx.el.proposalsError, e);
  }
}
