// Small DOM helpers: elements built with createElement (never innerHTML of data),
// labelled fields, and the keys every desk shares.

import { t } from './i18n.js';

// h('button', {class: 'primary', test: 'book', i18n: 'book', on: {click}}, ...children)
//   test → data-test, i18n → data-i18n (text from the dictionary, redrawn on a
//   language switch), i18nArgs → its parameters, text → plain text.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'test') el.dataset.test = v;
    else if (k === 'i18n') el.dataset.i18n = v;
    else if (k === 'i18nArgs') el.dataset.i18nArgs = JSON.stringify(v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  if (attrs.i18n) el.textContent = t(attrs.i18n, attrs.i18nArgs);
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// Replaces an element's children; null, undefined and false are left out.
export function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

let fieldCount = 0;

// A labelled field: <div class="field"><label for=id>…</label><input id=…>
// <p class="hint" id=…-hint aria-live="polite"></p></div>. Returns {box, input, hint}.
export function field({ id, label, type = 'text', test, hint, attrs = {} }) {
  const fid = id || `f${++fieldCount}`;
  const hintEl = h('p', { class: 'hint', id: `${fid}-hint`, 'aria-live': 'polite', test: test && `${test}-hint` });
  if (hint) { hintEl.dataset.i18n = hint; hintEl.textContent = t(hint); }
  const input = type === 'select'
    ? h('select', { id: fid, test, 'aria-describedby': `${fid}-hint`, ...attrs })
    : h('input', { id: fid, type, test, 'aria-describedby': `${fid}-hint`, autocomplete: 'off', spellcheck: 'false', ...attrs });
  const box = h('div', { class: 'field' }, h('label', { for: fid, i18n: label }), input, hintEl);
  return { box, input, hint: hintEl };
}

// An area where a refusal is shown next to what caused it.
export function errorArea(id) {
  return h('div', { id, class: 'error', role: 'alert', test: 'error', hidden: true });
}

// Shows the words of an error (an ApiError's OperationOutcome, or a dictionary key).
export function showError(area, err) {
  area.replaceChildren();
  if (!err) { area.hidden = true; return; }
  const lines = err.messages && err.messages.length ? err.messages : [err.key ? t(err.key, err.args) : String(err.message || err)];
  for (const line of lines) area.append(h('p', { text: line }));
  area.hidden = false;
}

export function clearError(area) { showError(area, null); }

// Moves the caret to `el` (and selects its text, where the next thing is typed).
export function focus(el) {
  if (!el) return;
  el.focus();
  if (el.select && (el.tagName === 'INPUT') && el.type !== 'date') el.select();
}

// Whether a key event comes from a place where letters are typed.
export function typing(event) {
  const el = event.target;
  return el && (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA' || el.tagName === 'SELECT' || el.isContentEditable);
}

// Enter on a field runs `fn` (and does not submit anything else).
export function onEnter(input, fn) {
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.isComposing) { e.preventDefault(); fn(e); }
  });
}

// A list navigated with the arrow keys: items are its focusable children.
export function arrowList(list, selector) {
  list.addEventListener('keydown', (e) => {
    const items = [...list.querySelectorAll(selector)];
    const i = items.indexOf(document.activeElement);
    if (i < 0) return;
    let next = null;
    if (e.key === 'ArrowDown') next = items[Math.min(i + 1, items.length - 1)];
    else if (e.key === 'ArrowUp') next = items[Math.max(i - 1, 0)];
    else if (e.key === 'Home') next = items[0];
    else if (e.key === 'End') next = items[items.length - 1];
    if (next) { e.preventDefault(); next.focus(); }
  });
}

// The "Esc goes back" stack: each step that can be left pushes what leaving it does.
const backs = [];
export function pushBack(fn) { backs.push(fn); return () => { const i = backs.lastIndexOf(fn); if (i >= 0) backs.splice(i, 1); }; }
export function clearBacks() { backs.length = 0; }
export function goBack() {
  const fn = backs.pop();
  if (fn) { fn(); return true; }
  return false;
}

// Marks a desk's first data as drawn, for the benchmark and the browser tests.
export function ready(desk) {
  document.body.dataset.ready = desk;
  performance.mark('ready', { detail: { desk } });
}

// A section of a desk: a heading and its content, hidden until shown.
export function section(id, titleKey, ...children) {
  return h('section', { id, class: 'step', 'aria-labelledby': `${id}-title`, test: id },
    h('h2', { id: `${id}-title`, i18n: titleKey }), ...children);
}
