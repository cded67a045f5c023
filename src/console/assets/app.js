// The console's shell: sign-in, the operator's role and organisation, the language
// switch, and hash routing between the desks (#/booking, #/payment, #/agenda,
// #/integration, #/figures); each desk is offered only to the roles that use it.
//
// Keys everywhere: Alt+1…5 the desks, Alt+L the language, Esc back one step.

import { h, focus, goBack, clearBacks } from './dom.js';
import { t, lang, setLang } from './i18n.js';
import { loadSettings, who, setToken } from './api.js';
import { organisationName } from './directory.js';
import * as signin from './signin.js';
import { returned as oauthReturned } from './oauth.js';
import * as booking from './booking.js';
import * as payment from './payment.js';
import * as integration from './integration.js';
import * as agenda from './agenda.js';
import * as figures from './figures.js';

const DESKS = [
  // An administrator may book too: the agenda technician who rebooks a closed day.
  { id: 'booking', roles: ['booking-point', 'admin'], page: booking },
  { id: 'payment', roles: ['payment-point', 'booking-point'], page: payment },
  { id: 'agenda', roles: ['provider', 'admin'], page: agenda },
  { id: 'integration', roles: ['admin'], page: integration },
  { id: 'figures', roles: ['admin'], page: figures },
];

let current = null; // {dispose, onKey} of the page shown
let titleKey = 'signin.title';
const view = () => document.getElementById('view');

export function desksFor(role) {
  return DESKS.filter((d) => d.roles.includes(role));
}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query] = raw.split('?');
  return { path: path || '', params: new URLSearchParams(query || '') };
}

function drawNav(me) {
  const nav = document.getElementById('desks');
  const desks = me ? desksFor(me.role) : [];
  const { path } = parseHash();
  nav.replaceChildren(...desks.map((d, i) => h('a', {
    href: `#/${d.id}`, id: `nav-${d.id}`, test: `nav-${d.id}`, class: 'desk-link',
    'aria-current': path === d.id ? 'page' : false, 'aria-keyshortcuts': `Alt+${i + 1}`, i18n: `desk.${d.id}`,
  })));
  nav.hidden = desks.length === 0;
}

async function drawOperator(me) {
  const box = document.getElementById('operator');
  document.getElementById('switch-role').hidden = !me;
  document.getElementById('signout').hidden = !me;
  if (!me) { box.replaceChildren(); return; }
  box.replaceChildren(h('span', { class: 'role', test: 'operator-role', i18n: `role.${me.role}` }));
  if (me.org) {
    const name = await organisationName(me.org).catch(() => me.org);
    box.append(' · ', h('span', { test: 'operator-org', text: name }));
  }
  if (me.channel) box.append(' · ', h('span', { i18n: `channel.${me.channel}` }));
}

// Draws the page of the hash.
function route() {
  if (current) current.dispose();
  current = null;
  clearBacks();
  document.body.removeAttribute('data-ready');
  const me = who();
  const { path, params } = parseHash();
  drawNav(me);
  if (!me || me.expired || path === 'signin') {
    if (me?.expired && path !== 'signin') params.set('why', t('signin.expired'));
    setTitle('signin.title');
    current = signin.render(view(), params, signedIn);
    return;
  }
  const desks = desksFor(me.role);
  const desk = desks.find((d) => d.id === path);
  if (!desk) {
    if (desks.length) location.replace(`#/${desks[0].id}`);
    else view().replaceChildren(h('div', { class: 'desk', test: 'no-desk' }, h('p', { i18n: 'shell.no-desk', i18nArgs: { role: me.role } })));
    return;
  }
  setTitle(`desk.${desk.id}`);
  current = desk.page.render(view(), params);
}

function signedIn(me) {
  drawOperator(me);
  const desks = desksFor(me.role);
  const target = desks.length ? `#/${desks[0].id}` : '#/';
  if (location.hash === target) route(); else location.hash = target;
}

function signOut() {
  setToken(null);
  drawOperator(null);
  location.hash = '#/signin';
}

function onKey(e) {
  if (current?.onKey && current.onKey(e)) return;
  if (e.key === 'Escape' && !e.defaultPrevented) {
    if (goBack()) e.preventDefault();
    return;
  }
  if (!e.altKey || e.ctrlKey || e.metaKey) return;
  const me = who();
  const digit = /^Digit([1-5])$/.exec(e.code || '');
  if (digit && me) {
    const d = desksFor(me.role)[Number(digit[1]) - 1];
    if (d) { e.preventDefault(); location.hash = `#/${d.id}`; }
  } else if (e.code === 'KeyL') {
    e.preventDefault();
    toggleLang();
  }
}

function setTitle(key) {
  titleKey = key;
  document.title = `${t(key)} — cupola`;
}

function toggleLang() {
  setLang(lang() === 'it' ? 'en' : 'it');
  setTitle(titleKey);
}

async function start() {
  setLang(lang());
  await loadSettings();
  document.getElementById('lang').addEventListener('click', toggleLang);
  document.getElementById('switch-role').addEventListener('click', () => { location.hash = '#/signin'; });
  document.getElementById('signout').addEventListener('click', signOut);
  document.addEventListener('keydown', onKey);
  window.addEventListener('hashchange', route);
  window.addEventListener('afterprint', () => { delete document.body.dataset.print; });
  window.addEventListener('cupola:unauthorized', (e) => {
    // The token ran out or was refused: back to sign-in with the API's words.
    if (parseHash().path === 'signin') return;
    setToken(null);
    drawOperator(null);
    location.hash = `#/signin?why=${encodeURIComponent(e.detail.messages.join(' '))}`;
  });
  // Back from the region's identity provider: the new sign-in replaces any old one.
  if (oauthReturned()) setToken(null);
  drawOperator(who());
  route();
  focus(document.querySelector('#view [autofocus]'));
}

start();
