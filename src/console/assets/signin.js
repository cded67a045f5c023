// Sign-in: with the region's identity provider (when the gateway names it: see
// oauth.js), or — on a demo gateway — pick a demo role and its organisation; or paste
// a bearer token (`cupola token`). The token is tried against the API before it is kept.

import { h, field, errorArea, showError, clearError, focus, onEnter, ready, section } from './dom.js';
import { t } from './i18n.js';
import { get, setToken, token, who, whoami, consoleJson, getSettings } from './api.js';
import * as oauth from './oauth.js';

const LAST = 'cupola.demo-choice';

export function render(view, params, done) {
  const parts = [];
  const regional = getSettings()?.oauth;
  const demo = getSettings()?.demo && !regional;
  if (regional) parts.push(regionalSection(regional, done));
  else if (demo) parts.push(demoSection(done));
  parts.push(tokenSection(done, !demo && !regional));
  const reason = params.get('why');
  view.replaceChildren(h('div', { class: 'desk signin', id: 'signin', test: 'signin' },
    h('h1', { class: 'desk-title', i18n: 'signin.title' }),
    reason ? h('p', { class: 'notice', role: 'status', test: 'signin-reason', text: reason }) : null,
    ...parts));
  if (!demo && !regional) ready('signin');
  return { dispose: () => {}, onKey: () => false };
}

// Keeps `tok` once the API has taken it for a read every role may do. An issuer's
// token says role and organisation in its own claims: the gateway maps them.
async function tryToken(tok, area, done) {
  // Kept with what the gateway said of it, so a refused token leaves the old sign-in whole.
  const previous = token();
  const previousWho = who();
  setToken(tok);
  let me = who();
  if (!me) {
    setToken(previous, previousWho);
    showError(area, { key: 'signin.not-a-token' });
    return;
  }
  try {
    if (!me.role) {
      setToken(tok, await whoami());
      me = who();
    }
    await get('Organization', { _count: 1, _total: 'none', _elements: 'id' });
    done(me);
  } catch (e) {
    setToken(previous, previousWho);
    showError(area, e);
  }
}

function tokenSection(done, first) {
  const f = field({ id: 'token', label: 'signin.token', test: 'token', type: 'password', hint: 'signin.token-hint' });
  const err = errorArea('token-error');
  const go = h('button', { type: 'button', id: 'token-signin', class: first ? 'primary' : '', test: 'token-signin', i18n: 'signin.enter',
    on: { click: () => { clearError(err); tryToken(f.input.value.trim(), err, done); } } });
  onEnter(f.input, () => go.click());
  if (first) queueMicrotask(() => focus(f.input));
  return section('signin-token', 'signin.with-token', f.box, err, h('div', { class: 'actions' }, go));
}

// The region's identity provider: one button; on return from it, the code is
// exchanged here and the token tried like any other.
function regionalSection(o, done) {
  const err = errorArea('oauth-error');
  const go = h('button', { type: 'button', id: 'oauth-signin', class: 'primary', test: 'oauth-signin', i18n: 'signin.oauth-enter',
    on: { click: () => { clearError(err); oauth.begin(o).catch((e) => showError(err, e)); } } });
  const sec = section('signin-oauth', 'signin.oauth', h('p', { class: 'note', i18n: 'signin.oauth-note' }), err,
    h('div', { class: 'actions' }, go));
  const back = oauth.returned();
  const finished = back
    ? oauth.finish(o, back).then((tok) => tryToken(tok, err, done)).catch((e) => showError(err, e))
    : Promise.resolve();
  finished.finally(() => { focus(go); ready('signin'); });
  return sec;
}

function demoSection(done) {
  const role = field({ id: 'demo-role', label: 'signin.role', type: 'select', test: 'demo-role' });
  const org = field({ id: 'demo-org', label: 'signin.org', type: 'select', test: 'demo-org' });
  const err = errorArea('demo-error');
  const go = h('button', { type: 'button', id: 'demo-signin', class: 'primary', test: 'demo-signin', i18n: 'signin.enter',
    on: { click: () => demoSignIn(role.input.value, org.input.value, err, done) } });
  onEnter(role.input, () => go.click());
  onEnter(org.input, () => go.click());
  const sec = section('signin-demo', 'signin.demo', h('p', { class: 'note', i18n: 'signin.demo-note' }), role.box, org.box, err,
    h('div', { class: 'actions' }, go));
  loadRoles(role.input, org.input, err);
  return sec;
}

async function loadRoles(roleSel, orgSel, err) {
  try {
    const { roles } = await consoleJson('GET', '/console/demo-roles');
    const last = JSON.parse(sessionStorage.getItem(LAST) || '{}');
    const fill = () => {
      const r = roles.find((x) => x.role === roleSel.value) || roles[0];
      orgSel.replaceChildren(...r.organizations.map((o) => h('option', { value: o.reference,
        text: `${o.name}${o.channel ? ` — ${t(`channel.${o.channel}`)}` : ''}` })));
      if (last.org && [...orgSel.options].some((o) => o.value === last.org)) orgSel.value = last.org;
    };
    roleSel.replaceChildren(...roles.map((r) => h('option', { value: r.role, i18n: `role.${r.role}` })));
    if (last.role) roleSel.value = last.role;
    roleSel.addEventListener('change', fill);
    fill();
  } catch (e) {
    showError(err, e);
  } finally {
    focus(roleSel);
    ready('signin');
  }
}

async function demoSignIn(role, org, err, done) {
  clearError(err);
  try {
    const minted = await consoleJson('POST', '/console/demo-token', { role, org });
    sessionStorage.setItem(LAST, JSON.stringify({ role, org }));
    await tryToken(minted.token, err, done);
  } catch (e) {
    showError(err, e);
  }
}
