// The booking desk (role booking-point): find the patient, then the prescription
// (NRE) or a service of the catalog, then $find's proposals, $hold, $book. The
// patient's name and codice fiscale stay in view once found.
//
// Keys: Enter confirms the field or the focused proposal, Esc goes back one step,
// Alt+N a new patient. From a found patient: type the NRE + Enter → proposals
// (the first focused), Enter holds it, Enter books it.

import { h, fill, field, errorArea, showError, clearError, focus, onEnter, pushBack, clearBacks, ready, section } from './dom.js';
import { t } from './i18n.js';
import { get, post, resources, getSettings } from './api.js';
import { cfProblem, nrePattern, romeDay, ident, personName } from './format.js';
import { catalog, catalogCode, priorityClasses, serviceOf } from './directory.js';
import { findProposals, proposalsSection } from './proposals.js';
import { holdSection, bookedSection, loadAppointments, appointmentsSection, stopHold } from './booked.js';

const CF_END = 'codiceFiscale';

export function render(view, params) {
  const ctx = { s: { patient: null, query: null, requests: [], replacing: null }, el: {} };
  ctx.show = (id) => { ctx.el[id].hidden = false; };
  ctx.hide = (...ids) => ids.forEach((id) => { ctx.el[id].hidden = true; });
  ctx.backToRequest = () => backToRequest(ctx);
  ctx.find = (query) => findProposals(ctx, query);
  // Esc goes back: to a new patient, then through the steps `fns` name.
  ctx.backs = (...fns) => { clearBacks(); pushBack(() => newPatient(ctx)); fns.forEach((fn) => pushBack(fn)); };

  const banner = h('div', { id: 'patient-banner', class: 'banner', test: 'patient-banner', hidden: true, 'aria-live': 'polite' });
  ctx.el.banner = banner;
  const desk = h('div', { class: 'desk', id: 'booking-desk', test: 'booking-desk' },
    h('h1', { class: 'desk-title', i18n: 'desk.booking' }),
    banner,
    patientSection(ctx),
    requestSection(ctx),
    proposalsSection(ctx),
    holdSection(ctx),
    bookedSection(ctx),
    appointmentsSection(ctx));
  fill(view, desk);
  ctx.hide('request', 'proposals', 'hold', 'booked', 'appointments');
  focus(ctx.el.cf);
  clearBacks();
  // The desk's first data: the catalog and the classes the service field offers.
  Promise.all([catalog().then((list) => fillCatalog(ctx, list)).catch(() => {}), priorityClasses()])
    .finally(() => ready('booking'));
  if (params?.get('patient')) openFor(ctx, params.get('patient'), params.get('move'));
  return {
    dispose: () => stopHold(ctx),
    onKey: (e) => {
      if (e.altKey && e.code === 'KeyN') { e.preventDefault(); newPatient(ctx); return true; }
      return false;
    },
  };
}

// --- the patient ---------------------------------------------------------------

function patientSection(ctx) {
  const cf = field({ id: 'cf', label: 'patient.cf', test: 'cf', hint: 'cf.hint',
    attrs: { maxlength: 16, class: 'code', autocapitalize: 'characters', inputmode: 'text' } });
  const family = field({ id: 'family', label: 'patient.family', test: 'family' });
  const birth = field({ id: 'birthdate', label: 'patient.birthdate', type: 'date', test: 'birthdate' });
  const byName = h('button', { type: 'button', id: 'find-by-name', test: 'find-by-name', i18n: 'patient.search',
    on: { click: () => byNameSearch(ctx) } });
  const matches = h('ul', { id: 'patient-matches', class: 'choices', test: 'patient-matches' });
  const err = errorArea('patient-error');
  Object.assign(ctx.el, { cf: cf.input, cfHint: cf.hint, family: family.input, birthdate: birth.input, matches, patientError: err });
  cf.input.addEventListener('input', () => checkCf(ctx));
  onEnter(cf.input, () => byCf(ctx));
  onEnter(family.input, () => byNameSearch(ctx));
  onEnter(birth.input, () => byNameSearch(ctx));
  const sec = section('patient', 'patient.title', cf.box,
    h('fieldset', { class: 'alt' }, h('legend', { i18n: 'patient.or-name' }), family.box, birth.box, byName),
    err, matches);
  ctx.el.patient = sec;
  return sec;
}

// Capitals as typed, the check character verified at the 16th.
function checkCf(ctx) {
  const input = ctx.el.cf;
  const at = input.selectionStart;
  input.value = input.value.toUpperCase().replace(/\s/g, '');
  input.setSelectionRange(at, at);
  const problem = input.value ? cfProblem(input.value) : null;
  const hard = problem && problem.key !== 'cf.partial';
  input.setAttribute('aria-invalid', hard ? 'true' : 'false');
  ctx.el.cfHint.classList.toggle('bad', !!hard);
  ctx.el.cfHint.classList.toggle('good', !problem && input.value.length === 16);
  const key = problem ? problem.key : (input.value ? 'cf.valid' : 'cf.hint');
  ctx.el.cfHint.dataset.i18n = key;
  ctx.el.cfHint.dataset.i18nArgs = JSON.stringify(problem?.args || {});
  ctx.el.cfHint.textContent = t(key, problem?.args);
  return problem;
}

async function byCf(ctx) {
  const problem = checkCf(ctx);
  if (problem) { showError(ctx.el.patientError, problem); return; }
  await searchPatients(ctx, { identifier: ctx.el.cf.value, _count: 10 });
}

async function byNameSearch(ctx) {
  const family = ctx.el.family.value.trim();
  const birthdate = ctx.el.birthdate.value;
  if (!family || !birthdate) {
    showError(ctx.el.patientError, { key: 'patient.need-name' });
    focus(family ? ctx.el.birthdate : ctx.el.family);
    return;
  }
  await searchPatients(ctx, { family, birthdate, _count: 20 });
}

async function searchPatients(ctx, params) {
  clearError(ctx.el.patientError);
  ctx.el.matches.replaceChildren();
  try {
    const found = resources(await get('Patient', params), 'Patient');
    if (found.length === 0) showError(ctx.el.patientError, { key: 'patient.none' });
    else if (found.length === 1) selectPatient(ctx, found[0]);
    else listPatients(ctx, found);
  } catch (e) {
    showError(ctx.el.patientError, e);
  }
}

// Opened from an agenda's list to rebook (#/booking?patient=…&move=…): the patient
// chosen, and the appointment to move offered with its proposals.
async function openFor(ctx, id, move) {
  clearError(ctx.el.patientError);
  try {
    ctx.s.move = move || null;
    selectPatient(ctx, await get(`Patient/${encodeURIComponent(id)}`));
  } catch (e) {
    showError(ctx.el.patientError, e);
  }
}

function listPatients(ctx, patients) {
  for (const p of patients) {
    const b = h('button', { type: 'button', class: 'choice', test: 'patient-match', dataset: { id: p.id },
      on: { click: () => selectPatient(ctx, p) } },
    h('strong', { text: personName(p) }), ' · ', h('span', { class: 'code', text: ident(p, CF_END) || '' }),
    p.birthDate ? ` · ${p.birthDate}` : '');
    ctx.el.matches.append(h('li', {}, b));
  }
  focus(ctx.el.matches.querySelector('button'));
}

function selectPatient(ctx, p) {
  ctx.s.patient = p;
  ctx.el.matches.replaceChildren();
  fill(ctx.el.banner,
    h('span', { class: 'label', i18n: 'patient.banner' }),
    h('strong', { id: 'patient-name', test: 'patient-name', text: personName(p) }),
    h('span', { id: 'patient-cf', class: 'code', test: 'patient-cf', text: ident(p, CF_END) || '—' }),
    p.birthDate ? h('span', {}, h('span', { i18n: 'patient.born' }), ` ${p.birthDate}`) : null,
    h('button', { type: 'button', class: 'link', test: 'change-patient', i18n: 'patient.change', on: { click: () => newPatient(ctx) } }));
  ctx.el.banner.hidden = false;
  ctx.hide('patient', 'proposals', 'hold', 'booked');
  ctx.show('request');
  ctx.s.replacing = null;
  ctx.backs();
  loadAppointments(ctx);
  focus(ctx.el.nre);
}

function newPatient(ctx) {
  stopHold(ctx);
  ctx.s.patient = null;
  ctx.el.banner.hidden = true;
  ctx.hide('request', 'proposals', 'hold', 'booked', 'appointments');
  ctx.show('patient');
  clearBacks();
  focus(ctx.el.cf);
}

// --- the prescription or the service ----------------------------------------------

function requestSection(ctx) {
  const nre = field({ id: 'nre', label: 'request.nre', test: 'nre', hint: 'request.nre-hint',
    attrs: { class: 'code', maxlength: 20, autocapitalize: 'characters' } });
  const service = field({ id: 'service', label: 'request.service', test: 'service', hint: 'request.service-hint',
    attrs: { list: 'catalog-list' } });
  const klass = field({ id: 'priority-class', label: 'request.class', type: 'select', test: 'priority-class' });
  const from = field({ id: 'from', label: 'request.from', type: 'date', test: 'from', attrs: { value: romeDay() } });
  const summary = h('div', { id: 'request-summary', class: 'summary', test: 'request-summary', 'aria-live': 'polite' });
  const err = errorArea('request-error');
  const register = h('div', { id: 'register', class: 'panel', test: 'register', hidden: true });
  Object.assign(ctx.el, { nre: nre.input, nreHint: nre.hint, service: service.input, klass: klass.input,
    from: from.input, summary, requestError: err, register });
  nre.input.addEventListener('input', () => { nre.input.value = nre.input.value.toUpperCase().replace(/\s/g, ''); });
  onEnter(nre.input, () => byNre(ctx));
  onEnter(service.input, () => byService(ctx));
  onEnter(klass.input, () => byService(ctx));
  onEnter(from.input, () => (ctx.el.nre.value ? byNre(ctx) : byService(ctx)));
  const sec = section('request', 'request.title', nre.box,
    h('fieldset', { class: 'alt' }, h('legend', { i18n: 'request.or-service' }), service.box, klass.box),
    from.box, h('datalist', { id: 'catalog-list' }), err, register, summary);
  ctx.el.request = sec;
  return sec;
}

function fillCatalog(ctx, list) {
  const dl = ctx.el.request.querySelector('#catalog-list');
  fill(dl, ...list.map((c) => h('option', { value: `${c.code} — ${c.display}` })));
  const sel = ctx.el.klass;
  fill(sel, h('option', { value: '', i18n: 'request.no-class' }));
  priorityClasses().then((classes) => {
    for (const [code, c] of classes) sel.append(h('option', { value: code, text: `${code} · ${c.display || ''}` }));
  });
}

function backToRequest(ctx) {
  stopHold(ctx);
  ctx.hide('proposals', 'hold', 'booked');
  ctx.show('request');
  ctx.backs();
  focus(ctx.s.query?.nre ? ctx.el.nre : (ctx.s.query?.service ? ctx.el.service : ctx.el.nre));
}

async function byNre(ctx) {
  const nre = ctx.el.nre.value.trim().toUpperCase();
  const settings = getSettings();
  clearError(ctx.el.requestError);
  ctx.el.register.hidden = true;
  if (!nrePattern(settings.nre?.format).test(nre)) {
    showError(ctx.el.requestError, { key: 'request.nre-bad', args: { format: settings.nre?.format || '' } });
    focus(ctx.el.nre);
    return;
  }
  try {
    const bundle = await get('ServiceRequest', { requisition: `${settings.nre.system}|${nre}`, _count: 50 });
    const requests = resources(bundle, 'ServiceRequest');
    if (requests.length === 0) { offerRegister(ctx, nre); return; }
    const mine = `Patient/${ctx.s.patient.id}`;
    const other = requests.find((r) => r.subject?.reference !== mine);
    if (other) {
      showError(ctx.el.requestError, { key: 'request.other-patient', args: { nre, who: other.subject?.reference || '?' } });
      return;
    }
    ctx.s.requests = requests;
    await summarise(ctx, nre, requests);
    await ctx.find({ nre });
  } catch (e) {
    showError(ctx.el.requestError, e);
  }
}

async function summarise(ctx, nre, requests) {
  const classes = await priorityClasses();
  fill(ctx.el.summary, h('p', {}, h('span', { i18n: 'request.prescription' }), ' ', h('strong', { class: 'code', text: nre })),
    h('ul', {}, requests.map((r) => {
      const code = r.extension?.find((x) => x.url?.endsWith('/priority-class'))?.valueCoding?.code;
      const c = code && classes.get(code);
      return h('li', { test: 'prescribed' }, serviceOf(r), code ? h('span', { class: 'badge', title: c?.definition || '' },
        `${t('request.class-short')} ${code}${c?.display ? ` · ${c.display}` : ''}`) : null,
      r.status !== 'active' ? h('span', { class: 'badge muted', text: r.status }) : null);
    })));
}

// No prescription with that NRE yet: the counter records the paper one.
function offerRegister(ctx, nre) {
  const svc = field({ id: 'sr-service', label: 'request.service', test: 'sr-service', attrs: { list: 'catalog-list' } });
  const cls = field({ id: 'sr-class', label: 'request.class', type: 'select', test: 'sr-class' });
  cls.input.append(...[...ctx.el.klass.options].map((o) => h('option', { value: o.value, text: o.textContent })));
  const save = h('button', { type: 'button', class: 'primary', test: 'register-save', i18n: 'request.register-save',
    on: { click: () => register(ctx, nre, svc.input.value, cls.input.value) } });
  onEnter(svc.input, () => save.click());
  onEnter(cls.input, () => save.click());
  fill(ctx.el.register, h('p', { i18n: 'request.register', i18nArgs: { nre } }), svc.box, cls.box, save);
  ctx.el.register.hidden = false;
  focus(svc.input);
}

async function register(ctx, nre, typed, klass) {
  const settings = getSettings();
  const code = catalogCode(typed);
  clearError(ctx.el.requestError);
  if (!code) { showError(ctx.el.requestError, { key: 'request.need-service' }); return; }
  const base = settings.canonicalBase;
  const sr = {
    resourceType: 'ServiceRequest', status: 'active', intent: 'order',
    requisition: { system: settings.nre.system, value: nre },
    subject: { reference: `Patient/${ctx.s.patient.id}` },
    code: { coding: [{ system: `${base}/CodeSystem/catalog`, code }] },
  };
  if (klass) {
    sr.extension = [{ url: `${base}/StructureDefinition/priority-class`,
      valueCoding: { system: `${base}/CodeSystem/priority-class`, code: klass } }];
  }
  try {
    await post('ServiceRequest', sr);
    ctx.el.register.hidden = true;
    await byNre(ctx);
  } catch (e) {
    showError(ctx.el.requestError, e);
  }
}

async function byService(ctx) {
  clearError(ctx.el.requestError);
  const code = catalogCode(ctx.el.service.value);
  if (!code) { showError(ctx.el.requestError, { key: 'request.need-service' }); focus(ctx.el.service); return; }
  ctx.s.requests = [];
  ctx.el.summary.replaceChildren();
  await ctx.find({ service: code, klass: ctx.el.klass.value || null });
}
