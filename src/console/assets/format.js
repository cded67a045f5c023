// Dates (Europe/Rome), money, and the codes an operator types: the codice fiscale
// (checked as typed), the NRE, booking codes and pagoPA notices. Pure functions.

const ZONE = 'Europe/Rome';
const LOCALES = { it: 'it-IT', en: 'en-GB' };

function parts(iso, lang, options) {
  const d = iso instanceof Date ? iso : new Date(iso);
  if (Number.isNaN(d.getTime())) return null;
  const f = new Intl.DateTimeFormat(LOCALES[lang] || LOCALES.it, { ...options, timeZone: ZONE });
  return Object.fromEntries(f.formatToParts(d).map((p) => [p.type, p.value]));
}

// `lun 14 dic 2026, 09:10` (it) / `Mon 14 Dec 2026, 09:10` (en), in Europe/Rome.
export function dateTime(iso, lang) {
  const p = parts(iso, lang, { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  if (!p) return String(iso ?? '');
  return `${p.weekday.replace('.', '')} ${p.day} ${p.month.replace('.', '')} ${p.year}, ${p.hour}:${p.minute}`;
}

// `lun 14 dic 2026` / `Mon 14 Dec 2026`.
export function date(iso, lang) {
  const p = parts(iso.length === 10 ? `${iso}T12:00:00Z` : iso, lang, { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' });
  if (!p) return String(iso ?? '');
  return `${p.weekday.replace('.', '')} ${p.day} ${p.month.replace('.', '')} ${p.year}`;
}

// `09:10`.
export function time(iso, lang) {
  const p = parts(iso, lang, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  return p ? `${p.hour}:${p.minute}` : '';
}

// Today (or `at`) as YYYY-MM-DD in Europe/Rome.
export function romeDay(at = new Date()) {
  const p = parts(at, 'en', { year: 'numeric', month: '2-digit', day: '2-digit' });
  return `${p.year}-${p.month}-${p.day}`;
}

// YYYY-MM-DD plus `n` days.
export function addDays(day, n) {
  const d = new Date(`${day}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

// `€ 36,15` (it) / `€ 36.15` (en); `value` a number or a decimal string.
export function money(value, lang) {
  if (value === undefined || value === null || value === '') return '';
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  const [int, dec] = Math.abs(n).toFixed(2).split('.');
  const group = lang === 'en' ? ',' : '.';
  const point = lang === 'en' ? '.' : ',';
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, group);
  return `${n < 0 ? '−' : ''}€ ${grouped}${point}${dec}`;
}

// Seconds as `4:05`.
export function countdown(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

// --- codice fiscale ------------------------------------------------------------

const ODD = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23];
const OMOCODIA = '0123456789LMNPQRSTUV'; // a digit, or the letter that replaces it
const MONTHS = 'ABCDEHLMPRST';

function oddValue(c) {
  return /[0-9]/.test(c) ? ODD[Number(c)] : ODD[c.charCodeAt(0) - 65];
}
function evenValue(c) {
  return /[0-9]/.test(c) ? Number(c) : c.charCodeAt(0) - 65;
}

// The check character of the first 15 characters.
export function cfCheck(first15) {
  let sum = 0;
  for (let i = 0; i < 15; i++) sum += i % 2 === 0 ? oddValue(first15[i]) : evenValue(first15[i]);
  return String.fromCharCode(65 + (sum % 26));
}

// What is wrong with a codice fiscale being typed: null when valid, else
// {key, args} for the dictionary ('cf.partial' while it may still become valid).
export function cfProblem(raw) {
  const cf = raw.toUpperCase();
  if (/[^A-Z0-9]/.test(cf)) return { key: 'cf.chars' };
  const shape = [/[A-Z]/, /[A-Z]/, /[A-Z]/, /[A-Z]/, /[A-Z]/, /[A-Z]/, 'D', 'D', 'M', 'D', 'D', /[A-Z]/, 'D', 'D', 'D', /[A-Z]/];
  for (let i = 0; i < cf.length && i < 16; i++) {
    const rule = shape[i];
    const ok = rule === 'D' ? OMOCODIA.includes(cf[i]) : rule === 'M' ? MONTHS.includes(cf[i]) : rule.test(cf[i]);
    if (!ok) return { key: 'cf.position', args: { n: i + 1, c: cf[i] } };
  }
  if (cf.length < 16) return { key: 'cf.partial', args: { n: 16 - cf.length } };
  if (cf.length > 16) return { key: 'cf.long' };
  const expected = cfCheck(cf.slice(0, 15));
  if (cf[15] !== expected) return { key: 'cf.check', args: { c: expected } };
  return null;
}

export function isCf(raw) {
  return raw.length === 16 && cfProblem(raw) === null;
}

// --- other codes ---------------------------------------------------------------

// The NRE's shape from the rules' format (`999A99999999999`: 9 a digit, A a letter).
export function nrePattern(format) {
  const f = format || '999A99999999999';
  const body = [...f].map((c) => (c === '9' ? '[0-9]' : c === 'A' ? '[A-Z]' : c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('');
  return new RegExp(`^${body}$`);
}

// What an operator typed in the payment desk's one field.
export function classify(raw, nreRe) {
  const v = raw.trim().toUpperCase().replace(/\s+/g, '');
  if (!v) return { kind: 'empty', value: v };
  if (/^[A-Z]{6}/.test(v) && v.length === 16) return { kind: 'cf', value: v };
  if (nreRe.test(v)) return { kind: 'nre', value: v };
  if (/^3\d{17}$/.test(v)) return { kind: 'notice', value: v };
  if (/^\d{17}$/.test(v)) return { kind: 'iuv', value: v };
  if (/^[A-Z0-9]{4}-?[A-Z0-9]{4}$/.test(v)) return { kind: 'booking-code', value: v.length === 8 ? `${v.slice(0, 4)}-${v.slice(4)}` : v };
  return { kind: 'other', value: v };
}

// The value of the extension whose URL ends with `/name`.
export function ext(resource, name) {
  const e = (resource?.extension || []).find((x) => typeof x.url === 'string' && x.url.endsWith(`/${name}`));
  if (!e) return undefined;
  const key = Object.keys(e).find((k) => k.startsWith('value'));
  return key ? e[key] : e;
}

// The value of the identifier whose system ends with `end`.
export function ident(resource, end) {
  return (resource?.identifier || []).find((i) => typeof i.system === 'string' && i.system.endsWith(end))?.value;
}

// A HumanName as `Mario Rossi`.
export function personName(resource) {
  const n = (resource?.name || [])[0];
  if (!n) return '';
  return [...(n.prefix || []), ...(n.given || []), n.family].filter(Boolean).join(' ');
}

// The payload of a JWT (nothing is checked here: the API checks every request).
export function jwtClaims(token) {
  try {
    const b64 = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = decodeURIComponent([...atob(b64)].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join(''));
    return JSON.parse(json);
  } catch {
    return null;
  }
}
