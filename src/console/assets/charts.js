// Charts drawn by hand as inline SVG (no library, nothing from elsewhere): stacked
// bars by day, horizontal bars with a deadline mark. Each chart is a <figure> with
// its numbers in a table a click away ("Mostra i numeri"), the table being what a
// screen reader reads (the SVG is one image with a summary label).

import { h } from './dom.js';
import { t } from './i18n.js';

const NS = ['http:', '', 'www.w3.org', '2000', 'svg'].join('/'); // not a URL to load: the SVG namespace
// Dark enough against white for text and marks (WCAG AA, 3:1 for graphics at least).
export const PALETTE = ['#0b4f8a', '#b45309', '#14532d', '#7a1f5c', '#4a1d7a', '#8a1c1c', '#1f5f5f', '#575757'];

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

const fmt = (n) => (Number.isInteger(n) ? String(n) : n.toLocaleString(undefined, { maximumFractionDigits: 1 }));

// A figure: title, the SVG, a legend, and the table behind a toggle.
export function figure(id, titleKey, svg, legend, table) {
  const tableBox = h('div', { class: 'chart-numbers', id: `${id}-numbers`, test: `${id}-numbers`, hidden: true }, table);
  const toggle = h('button', { type: 'button', class: 'small', test: `${id}-toggle`, 'aria-controls': `${id}-numbers`, 'aria-expanded': 'false', i18n: 'figures.show-numbers',
    on: { click: () => { tableBox.hidden = !tableBox.hidden; toggle.setAttribute('aria-expanded', String(!tableBox.hidden)); } } });
  return h('figure', { class: 'chart', id, test: id },
    h('figcaption', { i18n: titleKey }), svg, legend, toggle, tableBox);
}

export function legend(items) {
  // The colour through the CSSOM: the page's policy allows no inline style attribute.
  const swatch = (colour) => { const el = h('span', { class: 'swatch', 'aria-hidden': 'true' }); el.style.backgroundColor = colour; return el; };
  return h('ul', { class: 'chart-legend' }, items.map(([label, colour]) => h('li', {}, swatch(colour), ' ', label)));
}

export function table(head, rows) {
  return h('table', { class: 'figures-table' },
    h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col', text: c })))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c, i) => (i === 0 ? h('th', { scope: 'row', text: c }) : h('td', { text: c })))))));
}

// Stacked columns: `columns` [{label, values: {key: n}}], `keys` in stacking order.
export function stacked(columns, keys, colours, summary) {
  const W = 720; const H = 220; const pad = { l: 36, b: 28, t: 8 };
  const max = Math.max(1, ...columns.map((c) => keys.reduce((a, k) => a + (c.values[k] || 0), 0)));
  const bw = (W - pad.l) / Math.max(columns.length, 1);
  const y = (v) => H - pad.b - (v / max) * (H - pad.b - pad.t);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart-svg', role: 'img', 'aria-label': summary });
  svg.append(s('line', { x1: pad.l, x2: W, y1: y(0), y2: y(0), stroke: '#575757' }),
    s('text', { x: pad.l - 4, y: y(max) + 4, 'text-anchor': 'end', class: 'chart-axis' }, fmt(max)),
    s('text', { x: pad.l - 4, y: y(0), 'text-anchor': 'end', class: 'chart-axis' }, '0'));
  columns.forEach((c, i) => {
    let base = 0;
    keys.forEach((k, j) => {
      const v = c.values[k] || 0;
      if (!v) return;
      svg.append(s('rect', { x: pad.l + i * bw + 1, width: Math.max(bw - 2, 1), y: y(base + v), height: y(base) - y(base + v), fill: colours[j % colours.length] },
        s('title', {}, `${c.label} · ${k}: ${v}`)));
      base += v;
    });
    const every = Math.ceil(columns.length / 12);
    if (i % every === 0) svg.append(s('text', { x: pad.l + i * bw + bw / 2, y: H - 8, 'text-anchor': 'middle', class: 'chart-axis' }, c.shortLabel || c.label));
  });
  return svg;
}

// Horizontal bars: rows [{label, bars: [{value, colour, name}], mark}], `mark` a
// deadline drawn as a dashed line with its value.
export function hbars(rows, summary) {
  // The label column as wide as the longest label needs (about 7 units a
  // character), within bounds; a longer label is cut, whole in its tooltip.
  const longest = Math.max(0, ...rows.map((r) => String(r.label).length));
  const W = 720; const rowH = 34; const left = Math.min(340, Math.max(120, longest * 7.2 + 10)); const H = rows.length * rowH + 20;
  const cut = (label) => (String(label).length > 46 ? `${String(label).slice(0, 45)}…` : String(label));
  const max = Math.max(1, ...rows.flatMap((r) => [...r.bars.map((b) => b.value || 0), r.mark || 0]));
  const x = (v) => left + (v / max) * (W - left - 50);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart-svg', role: 'img', 'aria-label': summary });
  rows.forEach((r, i) => {
    const top = 10 + i * rowH;
    svg.append(s('text', { x: left - 6, y: top + rowH / 2, 'text-anchor': 'end', class: 'chart-label' }, cut(r.label), s('title', {}, String(r.label))));
    const bh = (rowH - 8) / Math.max(r.bars.length, 1);
    r.bars.forEach((b, j) => {
      if (b.value === null || b.value === undefined) return;
      svg.append(s('rect', { x: left, y: top + j * bh, width: Math.max(x(b.value) - left, 1), height: bh - 1, fill: b.colour }, s('title', {}, `${r.label} · ${b.name}: ${fmt(b.value)}`)),
        s('text', { x: x(b.value) + 4, y: top + j * bh + bh - 3, class: 'chart-axis' }, fmt(b.value)));
    });
    if (r.mark) {
      svg.append(s('line', { x1: x(r.mark), x2: x(r.mark), y1: top - 2, y2: top + rowH - 6, stroke: '#8a1c1c', 'stroke-width': 2, 'stroke-dasharray': '4 3' },
        s('title', {}, `${t('figures.deadline')}: ${r.mark}`)));
    }
  });
  return svg;
}
