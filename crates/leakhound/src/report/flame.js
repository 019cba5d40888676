// The flame graph of the report: one global function, `flameGraph`, and `flame_` helpers.
// Frames are positioned <div>s, not a canvas, so their labels are text the browser can find,
// copy and print. Labels only ever go in through textContent: they are arbitrary symbols.

// Draws `tree` ({n: label, v: bytes, k: kind, c: children}) into the empty `container`,
// root at the bottom. `options`: {unit: "bytes" or a word for what v counts, title}.
function flameGraph(container, tree, options) {
  'use strict';
  const opts = options || {};
  const ROW = 18; // px per stack level, the frame's height plus a 1px gap
  const MIN_W = 0.5; // px: narrower frames are not drawn, nor anything above them
  const LABEL_W = 24; // narrower frames get no label: an ellipsis alone says nothing
  const MAX_FRAMES = 3000; // keeps the page light whatever the tree's shape
  const KINDS = {
    js: 'JavaScript', builtin: 'V8 builtin', native: 'native (C/C++)', libc: 'libc', other: 'other',
  };
  const unit = opts.unit && opts.unit !== 'bytes' ? opts.unit : null;
  const fmt = (n) => (unit ? flame_count(n) + ' ' + unit : flame_bytes(n));

  container.textContent = '';
  container.classList.add('flame');
  if (opts.title) flame_el(container, 'div', 'flame-title', opts.title);
  const total = flame_val(tree);
  if (!total || !tree.c || !tree.c.length) {
    flame_el(container, 'p', 'flame-empty', 'Nothing grew.');
    return;
  }

  const bar = flame_el(container, 'div', 'flame-bar');
  const input = flame_el(flame_el(bar, 'label', 'flame-search', 'Search frames '), 'input');
  Object.assign(input, { type: 'search', autocomplete: 'off', spellcheck: false });
  const reset = flame_el(bar, 'button', 'flame-reset', 'Reset zoom');
  Object.assign(reset, { type: 'button', disabled: true });
  const status = flame_el(bar, 'span', 'flame-status');
  status.setAttribute('aria-live', 'polite');
  const note = flame_el(bar, 'span', 'flame-note');

  // The legend lists only the kinds this tree has.
  const kinds = new Set();
  flame_walk(tree, (n) => kinds.add(flame_kind(n)));
  const legend = flame_el(container, 'div', 'flame-legend');
  for (const [k, text] of Object.entries(KINDS)) {
    if (!kinds.has(k)) continue;
    const key = flame_el(legend, 'span', 'flame-key');
    flame_el(key, 'span', 'flame-swatch flame-k-' + k);
    key.append(text);
  }

  const scroller = flame_el(container, 'div', 'flame-scroll');
  const graph = flame_el(scroller, 'div', 'flame-graph');
  graph.setAttribute('role', 'group');
  graph.setAttribute('aria-label', opts.title || 'Flame graph');
  const tip = Object.assign(flame_el(container, 'div', 'flame-tip'), { hidden: true });

  let path = [tree]; // the root, then each frame down to the zoomed one
  // The drawn frames, breadth first: {n: node, d: depth, x, w: px, p: parent's index, el}.
  let recs = [];
  let query = '';
  let drawnWidth = 0;

  // The frames to draw at width W, breadth first, or null past the budget (unless `force`).
  // Frames under minW px are not drawn, nor anything above them.
  function layout(W, minW, force) {
    const scale = W / flame_val(path[path.length - 1]);
    const out = path.map((n, d) => ({ n, d, x: 0, w: W, p: d - 1 }));
    for (let i = path.length - 1; i < out.length; i++) {
      const r = out[i];
      const end = r.x + r.w;
      let x = r.x;
      // A run of frames each too narrow to draw is drawn as one hatched block, so that their
      // sum does not look like the parent's own bytes.
      let run = null;
      const flush = () => {
        if (run && run.w >= MIN_W) {
          const n = { n: `(${run.count} frames too narrow to draw)`, v: run.v, k: 'other' };
          out.push({ n, d: r.d + 1, x: run.x, w: run.w, p: i, rest: true });
        }
        run = null;
      };
      for (const c of r.n.c || []) {
        if (x >= end) break; // bad data: children larger than their parent
        const w = Math.min(flame_val(c) * scale, end - x);
        if (w < minW) {
          run = run || { x, w: 0, v: 0, count: 0 };
          run.w += w;
          run.v += flame_val(c);
          run.count++;
        } else {
          flush();
          out.push({ n: c, d: r.d + 1, x, w, p: i });
        }
        x += w;
      }
      flush();
      if (out.length > MAX_FRAMES) {
        if (!force) return null;
        out.length = MAX_FRAMES;
        break;
      }
    }
    return out;
  }

  function render() {
    const W = graph.clientWidth;
    drawnWidth = W;
    recs = [];
    graph.textContent = '';
    if (!W) return; // hidden (a closed <details>, say): drawn when it is shown
    // Over budget, the narrowest frames go first: a deep, wide stack keeps its whole height.
    let minW = MIN_W;
    while (!(recs = layout(W, minW, minW > W))) minW *= 2;
    note.hidden = minW === MIN_W;
    note.textContent = `Frames narrower than ${minW}px are not drawn: click a frame to zoom in.`;
    const rows = recs[recs.length - 1].d + 1;
    const frag = document.createDocumentFragment();
    recs.forEach((r, i) => {
      const name = flame_name(r.n);
      const h = flame_hash(name);
      const cls = 'flame-frame flame-k-' + flame_kind(r.n) + (r.d < path.length - 1 ? ' flame-dim' : '');
      const el = flame_el(frag, 'div', cls, r.w >= LABEL_W ? name : null);
      // Percentages, so that print and a resize before the redraw keep the proportions; the
      // 1px gap separates neighbours, but would swallow a frame thinner than 2px.
      const width = (100 * r.w) / W + '%';
      el.style.cssText = `left:${(100 * r.x) / W}%;top:${(rows - 1 - r.d) * ROW}px;` +
        `width:${r.w >= 2 ? `calc(${width} - 1px)` : width};` +
        `--flame-dh:${(h % 21) - 10};--flame-dl:${((h >>> 8) % 9) - 4}`;
      el.dataset.i = i;
      el.setAttribute('aria-label', name + ', ' + fmt(flame_val(r.n)));
      r.el = el;
      if (r.rest) return el.classList.add('flame-rest'); // nothing to zoom into
      // One tab stop, the zoomed frame (the root at first); the arrow keys move from there.
      el.tabIndex = i === path.length - 1 ? 0 : -1;
      el.setAttribute('role', 'button');
    });
    graph.style.height = rows * ROW + 'px';
    graph.append(frag);
    highlight();
  }

  // Zooms to the frame drawn as `r`, or back to the root without one.
  function zoom(r, keyboard) {
    path = [];
    for (let q = r; q; q = recs[q.p]) path.unshift(q.n);
    if (!path.length) path = [tree];
    hide();
    render();
    reset.disabled = path.length === 1;
    // The zoomed frame near the bottom of the view: what is above it, and a hint of its ancestors.
    const z = recs[path.length - 1];
    if (z) scroller.scrollTop = z.el.offsetTop + 3 * ROW - scroller.clientHeight;
    // A keyboard user keeps their place; the old element is gone.
    if (keyboard && z) z.el.focus({ preventScroll: true });
  }

  const matches = (n) => !!query && flame_name(n).toLowerCase().includes(query);

  function search() {
    query = input.value.trim().toLowerCase();
    highlight();
    // A match's whole subtree counts once: nested matches are not added again.
    let sum = 0;
    let hits = 0;
    flame_walk(tree, (n) => {
      if (!matches(n)) return true;
      sum += flame_val(n);
      hits++;
      return false;
    });
    const found = `matched: ${fmt(sum)} (${flame_pct(sum, total)} of the total)`;
    status.textContent = !query ? '' : hits ? found : 'no frame matches';
  }

  function highlight() {
    for (const r of recs) r.el.classList.toggle('flame-match', !r.rest && matches(r.n));
  }

  function fill(r) {
    const v = flame_val(r.n);
    tip.textContent = '';
    tip.hidden = false;
    flame_el(tip, 'strong', null, flame_name(r.n));
    let line = `${fmt(v)} · ${flame_pct(v, total)} of the total`;
    // Percent of the zoomed frame means nothing for the frames below it.
    const zoomed = flame_val(path[path.length - 1]);
    if (path.length > 1 && r.d >= path.length) line += ` · ${flame_pct(v, zoomed)} of the zoomed frame`;
    flame_el(tip, 'div', null, line);
    if (r.rest) return;
    let more = r.n.k ? KINDS[flame_kind(r.n)] : '';
    if (r.n.c && r.n.c.length) {
      const self = v - r.n.c.reduce((s, c) => s + flame_val(c), 0);
      if (self > 0) more += (more && ' · ') + `self ${fmt(self)}`;
    }
    if (more) flame_el(tip, 'div', 'flame-tip-more', more);
  }

  // Beside the point (px, py), flipped to the other side near the window's right or bottom edge.
  function place(px, py) {
    const tw = tip.offsetWidth;
    const th = tip.offsetHeight;
    tip.style.left = Math.max(4, px + 14 + tw > innerWidth ? px - tw - 10 : px + 14) + 'px';
    tip.style.top = Math.max(4, py + 18 + th > innerHeight ? py - th - 10 : py + 18) + 'px';
  }

  const hide = () => { tip.hidden = true; };

  const recOf = (e) => {
    const el = e.target.closest('.flame-frame');
    return el ? recs[+el.dataset.i] : null;
  };
  graph.addEventListener('mouseover', (e) => {
    const r = recOf(e);
    if (!r) return hide();
    fill(r);
    place(e.clientX, e.clientY);
  });
  graph.addEventListener('mousemove', (e) => { if (!tip.hidden) place(e.clientX, e.clientY); });
  graph.addEventListener('mouseleave', hide);
  graph.addEventListener('focusin', (e) => {
    const r = recOf(e);
    if (!r || !r.el.matches(':focus-visible')) return; // a click: the pointer has its own
    fill(r);
    const b = r.el.getBoundingClientRect();
    place(b.left, b.bottom - 14);
  });
  graph.addEventListener('focusout', hide);
  graph.addEventListener('click', (e) => {
    const r = recOf(e);
    if (r && !r.rest) zoom(r, e.detail === 0);
  });
  graph.addEventListener('keydown', (e) => {
    const r = recOf(e);
    if (!r) return;
    const i = +r.el.dataset.i;
    let next = null;
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      if (!r.rest) zoom(r, true);
    } else if (e.key === 'ArrowDown') {
      next = recs[r.p]; // towards the root, which is below
    } else if (e.key === 'ArrowUp') {
      for (const c of recs) if (c.p === i && !c.rest && (!next || c.w > next.w)) next = c;
    } else if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
      // Breadth first order puts each row's frames side by side, left to right.
      const step = e.key === 'ArrowLeft' ? -1 : 1;
      let j = i + step;
      while (recs[j] && recs[j].rest) j += step;
      if (recs[j] && recs[j].d === r.d) next = recs[j];
    }
    if (next) {
      e.preventDefault();
      next.el.focus();
    }
  });
  reset.addEventListener('click', (e) => zoom(null, e.detail === 0));
  input.addEventListener('input', flame_debounce(search, 150));
  input.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape') return;
    e.preventDefault();
    input.value = '';
    search();
  });

  // Redraw when the width changes (window resize, a scroll bar coming or going, a <details>
  // opened), keeping the view's distance from the bottom, where the root is, and the focus.
  let fromBottom = 0;
  scroller.addEventListener('scroll', () => {
    hide();
    fromBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight;
  });
  const resized = flame_debounce(() => {
    if (graph.clientWidth === drawnWidth) return;
    hide();
    const focused = recs.find((r) => r.el === document.activeElement);
    render();
    scroller.scrollTop = scroller.scrollHeight - scroller.clientHeight - fromBottom;
    const again = focused && recs.find((r) => r.n === focused.n && !r.rest);
    if (again) again.el.focus();
  }, 100);
  if (window.ResizeObserver) new ResizeObserver(resized).observe(scroller);
  else window.addEventListener('resize', resized);

  render();
  scroller.scrollTop = scroller.scrollHeight;
}

function flame_el(parent, tag, cls, text) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (text != null) el.textContent = text;
  parent.append(el);
  return el;
}

// The tree comes from a file: a missing or odd field must not break the page.
function flame_val(n) { return n && n.v > 0 ? +n.v : 0; }
function flame_name(n) { return n.n == null ? '' : String(n.n); }
function flame_kind(n) { return ['js', 'builtin', 'native', 'libc'].includes(n.k) ? n.k : 'other'; }

// Calls visit(node) on `root` and its descendants, skipping the children of a node for which
// it returns false. A loop, not recursion: a tree may be deeper than the call stack.
function flame_walk(root, visit) {
  const stack = [root];
  while (stack.length) {
    const n = stack.pop();
    if (visit(n) !== false && n.c) for (const c of n.c) stack.push(c);
  }
}

// FNV-1a: the same name gets the same shade on every render and in every report.
function flame_hash(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

// Decimal units, as DevTools and heapsnap's human_size: 999 B, 1.5 kB, 117.2 MB.
function flame_bytes(n) {
  if (n < 1000) return Math.round(n) + ' B';
  const units = ['kB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  n /= 1000;
  // Round first, so that 999,960 B reads 1.0 MB, not 1000.0 kB.
  while (n >= 999.95 && i < units.length - 1) { n /= 1000; i++; }
  return n.toFixed(1) + ' ' + units[i];
}

function flame_count(n) { return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ','); }

function flame_pct(part, whole) {
  const p = whole > 0 ? (100 * part) / whole : 0;
  return p > 0 && p < 0.1 ? '< 0.1 %' : p.toFixed(1) + ' %';
}

function flame_debounce(fn, ms) {
  let timer = 0;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}
