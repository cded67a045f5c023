// The console's one way to the FHIR API: fetch with the operator's bearer token
// (kept in sessionStorage, so it ends with the browser tab). A refusal becomes an
// ApiError carrying its OperationOutcome's words, shown next to what caused it.

import { jwtClaims } from './format.js';

const TOKEN = 'cupola.token';
const WHO = 'cupola.who'; // the gateway's reading of an issuer's token (whoami)
let base = '/fhir';
let settings = null;

export class ApiError extends Error {
  constructor(status, outcome, messages) {
    super(messages.join(' — '));
    this.status = status;
    this.outcome = outcome;
    this.messages = messages;
    this.expressions = (outcome?.issue || []).flatMap((i) => i.expression || []);
  }
}

// The words of an OperationOutcome: each issue's details.text, else its
// diagnostics, with the element it names.
export function outcomeMessages(outcome) {
  return (outcome?.issue || []).map((i) => {
    const words = i.details?.text || i.diagnostics || i.code || '';
    const where = (i.expression || [])[0];
    return where && !words.includes(where) ? `${words} (${where})` : words;
  }).filter(Boolean);
}

// This gateway's names (canonical base, NRE system and format, demo sign-in).
export async function loadSettings() {
  if (settings) return settings;
  const r = await fetch('/console/settings.json', { headers: { accept: 'application/json' } });
  settings = await r.json();
  base = settings.fhirBase || '/fhir';
  return settings;
}
export function getSettings() { return settings; }

// --- the token -----------------------------------------------------------------

export function token() { return sessionStorage.getItem(TOKEN); }
// `identity`: what GET /console/whoami said of `t`, for tokens without cupola's claims.
export function setToken(t, identity) {
  if (t) sessionStorage.setItem(TOKEN, t); else sessionStorage.removeItem(TOKEN);
  if (t && identity) sessionStorage.setItem(WHO, JSON.stringify(identity)); else sessionStorage.removeItem(WHO);
}

function storedIdentity() {
  try { return JSON.parse(sessionStorage.getItem(WHO) || 'null'); } catch { return null; }
}

// Who the token says the operator is (for the header and the desks offered; the
// API decides what each request may do).
export function who() {
  const t = token();
  const c = t ? jwtClaims(t) : null;
  if (!c) return null;
  const mapped = storedIdentity();
  const claims = mapped || c;
  const org = typeof claims.org === 'string' ? claims.org.replace(/^Organization\//, '') : null;
  const exp = claims.exp || c.exp;
  return { role: claims.role, org, channel: claims.channel || null, sub: claims.sub, exp, expired: exp && exp * 1000 < Date.now() };
}

// Role, organisation and channel the gateway maps the current token to.
export async function whoami() {
  const r = await fetch('/console/whoami', { headers: { accept: 'application/json', authorization: `Bearer ${token()}` } });
  if (!r.ok) throw await refusal(r);
  return r.json();
}

// --- requests ------------------------------------------------------------------

function url(path, params) {
  const u = path.startsWith('/') ? path : `${base}/${path}`;
  if (!params) return u;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    for (const one of Array.isArray(v) ? v : [v]) q.append(k, one);
  }
  const s = q.toString();
  return s ? `${u}${u.includes('?') ? '&' : '?'}${s}` : u;
}

async function refusal(r) {
  const text = await r.text();
  let outcome = null;
  try { outcome = JSON.parse(text); } catch { /* not JSON */ }
  let messages = outcome?.resourceType === 'OperationOutcome' ? outcomeMessages(outcome) : [];
  if (!messages.length) messages = [text.trim() || r.statusText || 'no answer'];
  const err = new ApiError(r.status, outcome, messages);
  if (r.status === 401) window.dispatchEvent(new CustomEvent('cupola:unauthorized', { detail: err }));
  return err;
}

// fhir('GET', 'Patient', {params: {identifier: …}}) → the parsed resource.
// fhir('POST', 'Appointment/$book', {body: {...}}) → the parsed answer.
export async function fhir(method, path, { params, body, accept = 'application/fhir+json', headers = {} } = {}) {
  const h = { accept, ...headers };
  const t = token();
  if (t) h.authorization = `Bearer ${t}`;
  if (body !== undefined) h['content-type'] = 'application/fhir+json';
  let r;
  try {
    r = await fetch(url(path, params), { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, null, [String(e.message || e)]);
  }
  if (!r.ok) throw await refusal(r);
  if (r.status === 204) return null;
  return accept.startsWith('text/') ? r.text() : r.json();
}

export const get = (path, params) => fhir('GET', path, { params });
export const post = (path, body) => fhir('POST', path, { body });

// A Parameters resource from {name: value} with value types given as [type, v].
export function parameters(list) {
  return {
    resourceType: 'Parameters',
    parameter: list.map(([name, type, value]) => ({ name, [type]: value })),
  };
}

// The resources of a searchset's `match` entries (or every entry of another Bundle).
export function resources(bundle, type) {
  return (bundle?.entry || [])
    .filter((e) => e.search?.mode !== 'outcome' && e.search?.mode !== 'include')
    .map((e) => e.resource)
    .filter((r) => r && (!type || r.resourceType === type));
}

// The informational words of a searchset's `outcome` entries.
export function notes(bundle) {
  return (bundle?.entry || [])
    .filter((e) => e.search?.mode === 'outcome' || e.resource?.resourceType === 'OperationOutcome')
    .flatMap((e) => outcomeMessages(e.resource));
}

// The included resources of a searchset, by `Type/id`.
export function included(bundle) {
  const out = new Map();
  for (const e of bundle?.entry || []) if (e.resource) out.set(`${e.resource.resourceType}/${e.resource.id}`, e.resource);
  return out;
}

// The console's own routes (not FHIR): the demo sign-in.
export async function consoleJson(method, path, body) {
  const r = await fetch(path, {
    method,
    headers: { accept: 'application/json', ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!r.ok) throw await refusal(r);
  return r.json();
}
