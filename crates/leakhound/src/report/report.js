// The report page: draws the sections from the JSON data embedded in the page (#data). Text
// from the data only ever goes in through textContent: class names, paths and frames are the
// app's own strings. Works offline from file://; fetches nothing.
(function () {
  'use strict';
  const data = JSON.parse(document.getElementById('data').textContent);
  const main = document.getElementById('report');

  // ---- helpers

  /** An element with a class and text; appended to `parent` when given. */
  function el(parent, tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (parent) parent.appendChild(e);
    return e;
  }

  /** Sizes in decimal units, as DevTools and the CLI print them: 512 B, 1.5 kB, 117.2 MB. */
  function size(bytes) {
    if (bytes === null || bytes === undefined) return '';
    const units = ['kB', 'MB', 'GB', 'TB', 'PB'];
    if (bytes < 1000) return Math.round(bytes) + ' B';
    let v = bytes / 1000;
    let u = 0;
    while (v >= 999.95 && u + 1 < units.length) {
      v /= 1000;
      u += 1;
    }
    return v.toFixed(1) + ' ' + units[u];
  }
  function signedSize(n) {
    return (n < 0 ? '-' : '+') + size(Math.abs(n));
  }
  function count(n) {
    if (n === null || n === undefined) return '';
    return Math.round(n).toLocaleString('en-US');
  }
  function signedCount(n) {
    return (n < 0 ? '-' : '+') + count(Math.abs(n));
  }
  function seconds(s) {
    if (s === null || s === undefined) return '';
    return s < 100 ? s.toFixed(1) + ' s' : Math.round(s).toLocaleString('en-US') + ' s';
  }
  const FORMAT = {
    text: (v) => (v === null || v === undefined ? '' : String(v)),
    count: count,
    size: size,
    signed_count: signedCount,
    signed_size: signedSize,
    seconds: seconds,
  };
  /** A position, with where its script's source map says it came from: `dist/a.js:3:1 (src/a.ts:5:1)`. */
  function location(l) {
    if (!l) return '';
    const script = l.script || 'script ' + l.script_id;
    return withOriginal(script + ':' + l.line + ':' + l.column, l.original);
  }
  function withOriginal(generated, o) {
    return o ? generated + ' (' + o.source + ':' + o.line + ':' + o.column + ')' : generated;
  }
  /** A script path shortened for display; the full one is the title. */
  function shortPath(p) {
    const parts = String(p).split('/');
    return parts.length > 3 ? '…/' + parts.slice(-2).join('/') : String(p);
  }
  function series(values, fmt) {
    return values.map((v) => (v === null || v === undefined ? '–' : fmt(v))).join(' → ');
  }
  function section(id, title) {
    const s = el(main, 'section', 'section');
    s.id = id;
    el(s, 'h2', null, title);
    toc.push([id, title]);
    return s;
  }
  function defs(parent, pairs) {
    const dl = el(parent, 'dl', 'facts');
    for (const [k, v] of pairs) {
      if (v === '' || v === null || v === undefined) continue;
      el(dl, 'dt', null, k);
      const dd = el(dl, 'dd');
      if (v instanceof Node) dd.appendChild(v);
      else dd.textContent = String(v);
    }
    return dl;
  }
  /**
   * An element showing at most `max` characters of `text` (names can be thousands of
   * characters long); the whole text is its tooltip when cut.
   */
  function clipped(parent, tag, cls, text, max) {
    const full = String(text);
    const e = el(parent, tag, cls, full.length > max ? full.slice(0, max - 1) + '…' : full);
    if (full.length > max) e.title = full;
    return e;
  }
  /**
   * Like `clipped`, with `code` between backticks set as code, as the terminal's messages
   * write commands and names.
   */
  function rich(parent, tag, cls, text, max) {
    const full = String(text);
    const shown = full.length > max ? full.slice(0, max - 1) + '…' : full;
    const e = el(parent, tag, cls);
    shown.split('`').forEach((part, i) => {
      if (i % 2) el(e, 'code', null, part);
      else if (part) e.append(part);
    });
    if (shown !== full) e.title = full;
    return e;
  }
  /** `text` with a capital first letter, as a sentence on its own starts. */
  function sentence(text) {
    return text ? text.charAt(0).toUpperCase() + text.slice(1) : '';
  }
  function code(text) {
    return el(null, 'code', null, text);
  }

  const toc = [];
  // V8 builtins worth showing in a native stack: where C++ calls JS or JS calls C++; the
  // trampolines and adaptors between say only that JS was called.
  const BOUNDARY = /CEntry|CallApiCallback|CallFunctionTemplate/;

  // ---- header and verdict

  const header = el(main, 'header', 'top');
  el(header, 'p', 'brand', 'leakhound ' + data.command);
  clipped(header, 'h1', null, data.title, 200);
  defs(header, data.facts);
  const nav = el(header, 'nav', 'toc');
  nav.setAttribute('aria-label', 'Sections');

  const verdict = section('verdict', 'Verdict');
  verdict.classList.add('verdict', 'level-' + (data.verdict.level || 'ok'));
  el(verdict, 'p', 'headline', sentence(data.verdict.headline));
  for (const w of data.warnings) rich(verdict, 'p', 'warning', 'Warning: ' + w, 600);
  if (data.verdict.next && data.verdict.next.length) {
    el(verdict, 'h3', null, 'What to do next');
    const ol = el(verdict, 'ol', 'next');
    for (const step of data.verdict.next) rich(ol, 'li', null, step, 600);
  }

  // ---- timelines

  if (data.timelines.length) {
    const s = section('timeline', 'Memory over time');
    const snapshots = data.timelines.some((t) => t.points.some((p) => p[3]));
    el(s, 'p', 'caption', 'RSS split into the V8 heap, the malloc heap and other memory, sampled while leakhound ran' + (snapshots ? '; the purple bands follow each heap snapshot (a snapshot leaves freed memory resident: not a leak)' : '') + '. Hover or use the arrow keys for values.');
    data.timelines.forEach((t, i) => {
      const fig = el(s, 'figure', 'timeline');
      const chart = document.getElementById('chart-' + i);
      if (chart) fig.appendChild(chart);
      if (t.note) rich(fig, 'figcaption', null, t.note, 1000);
      hover(chart, t);
    });
  }

  /** The read-out under the pointer (or the arrow keys) on a timeline chart. */
  function hover(box, t) {
    const svg = box && box.querySelector('svg');
    if (!svg || !svg.dataset.t0 || !t.points.length) return;
    const t0 = Number(svg.dataset.t0);
    const t1 = Number(svg.dataset.t1);
    const left = Number(svg.dataset.left);
    const right = Number(svg.dataset.right);
    const ns = 'http://www.w3.org/2000/svg';
    const line = document.createElementNS(ns, 'line');
    line.setAttribute('class', 'cursor');
    line.setAttribute('y1', '48');
    line.setAttribute('y2', '372');
    line.style.display = 'none';
    svg.appendChild(line);
    const tip = el(box, 'div', 'tip');
    tip.hidden = true;
    tip.setAttribute('role', 'status');
    box.tabIndex = 0;
    box.setAttribute('aria-label', 'Memory timeline: use the left and right arrow keys to read values');
    let at = -1;
    function nearest(list, time) {
      let lo = 0;
      let hi = list.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (list[mid][0] < time) lo = mid + 1;
        else hi = mid;
      }
      if (lo > 0 && Math.abs(list[lo - 1][0] - time) <= Math.abs(list[lo][0] - time)) lo -= 1;
      return lo;
    }
    function show(i) {
      at = Math.max(0, Math.min(t.points.length - 1, i));
      const [time, rss, used, after] = t.points[at];
      const x = left + ((time - t0) / (t1 - t0 || 1)) * (right - left);
      line.setAttribute('x1', x.toFixed(1));
      line.setAttribute('x2', x.toFixed(1));
      line.style.display = '';
      tip.textContent = '';
      el(tip, 'strong', null, seconds(time));
      const rows = [['RSS', size(rss)]];
      if (used >= 0) rows.push(['V8 heap used', size(used)]);
      let splitAt = null;
      if (t.breakdowns.length) {
        // smaps is read less often than RSS: the split is the nearest one, at its own time.
        const [at, b] = t.breakdowns[nearest(t.breakdowns, time)];
        splitAt = at;
        rows.push(['V8 heap', size(b[0])], ['malloc heap', size(b[1])], ['other anonymous', size(b[2])], ['file-backed', size(b[3])], ['stacks', size(b[4])]);
      }
      for (const [k, v] of rows) {
        const r = el(tip, 'div');
        el(r, 'span', null, k + ' ');
        el(r, 'b', null, v);
      }
      if (splitAt !== null && splitAt !== time) el(tip, 'div', 'muted', '(the split as read at ' + seconds(splitAt) + ')');
      if (after) el(tip, 'div', 'muted', 'after a snapshot');
      tip.hidden = false;
      const frac = (x - 0) / 900;
      tip.style.left = Math.min(frac * box.clientWidth + 12, box.clientWidth - tip.offsetWidth - 4) + 'px';
    }
    svg.addEventListener('mousemove', (e) => {
      const ctm = svg.getScreenCTM();
      if (!ctm) return;
      const p = svg.createSVGPoint();
      p.x = e.clientX;
      p.y = e.clientY;
      const v = p.matrixTransform(ctm.inverse());
      const time = t0 + ((v.x - left) / (right - left)) * (t1 - t0);
      show(nearest(t.points, time));
    });
    svg.addEventListener('mouseleave', () => {
      line.style.display = 'none';
      tip.hidden = true;
    });
    box.addEventListener('keydown', (e) => {
      const step = Math.max(1, Math.round(t.points.length / 50));
      if (e.key === 'ArrowRight') show(at < 0 ? 0 : at + step);
      else if (e.key === 'ArrowLeft') show(at < 0 ? t.points.length - 1 : at - step);
      else if (e.key === 'Escape') {
        line.style.display = 'none';
        tip.hidden = true;
      } else return;
      e.preventDefault();
    });
  }

  // ---- the JS heap: clusters, trees, growth

  if (data.leaks) {
    const L = data.leaks;
    const r = L.report;
    const s = section('clusters', 'What leaks in the JS heap');
    for (const w of r.warnings) el(s, 'p', 'warning', 'Warning: ' + w);
    el(s, 'p', 'caption', count(r.candidate_count) + ' objects are new since the baseline and still alive in every later snapshot; ' + count(r.leaked_count) + ' of them are not part of another, in ' + count(r.cluster_count) + ' clusters retaining ' + size(r.leaked_retained_size) + ' (of a ' + size(r.total_size) + ' heap). Snapshots: ' + r.snapshots.join(' → ') + '.');
    if (!r.clusters.length) el(s, 'p', 'muted', 'No cluster: nothing new stayed alive.');
    // Clusters too small for a verdict are folded away, as the terminal report leaves them out.
    const isSmall = (c) => !c.suspect && c.count < L.min_count;
    r.clusters.forEach((c, i) => isSmall(c) || cluster(s, c, i + 1, L));
    const small = r.clusters.filter(isSmall).length;
    if (small) {
      const fold = el(s, 'details', 'fold');
      el(fold, 'summary', null, count(small) + (small === 1 ? ' smaller cluster' : ' smaller clusters') + ' (fewer than ' + count(L.min_count) + ' objects each: no verdict)');
      r.clusters.forEach((c, i) => isSmall(c) && cluster(fold, c, i + 1, L));
    }
    growth(r);
  }

  function cluster(parent, c, rank, L) {
    const small = c.count < L.min_count;
    const card = el(parent, 'article', 'card cluster' + (c.suspect ? ' suspect' : '') + (small ? ' small' : ''));
    card.id = 'cluster-' + rank;
    const h = el(card, 'h3');
    el(h, 'span', 'rank', '#' + rank + ' ');
    clipped(h, 'span', null, c.headline, 160);
    if (c.suspect) el(h, 'span', 'badge leak', 'grows with the load');
    else if (small) el(h, 'span', 'badge', 'fewer than ' + L.min_count + ': no verdict');
    else el(h, 'span', 'badge', 'did not grow every round');
    const [held, reached] = L.holders[rank - 1] || [null, null];
    const perSnapshot = c.class_counts && c.class_counts.length ? series(c.class_counts, count) : '';
    const shortClass = c.class.length > 40 ? c.class.slice(0, 39) + '…' : c.class;
    defs(card, [
      ['Leaked', count(c.count)],
      ['Retained', size(c.retained_size) + (c.native_size ? ', ' + size(c.native_size) + ' of it native memory (' + c.native.map((n) => n.name + ' ' + size(n.size)).join(', ') + ')' : '')],
      ['Held by', held ? clipped(null, 'span', null, held, 400) : ''],
      ['Reached from', reached ? clipped(null, 'span', null, reached, 400) : ''],
      ['Instances of ' + shortClass + ' per snapshot', perSnapshot],
      ['Defined at', c.location ? code(location(c.location)) : ''],
      ['Your functions in it', c.functions.map((f) => count(f.count) + ' × ' + f.name + ' (' + location(f.location) + ')').join('; ')],
      ['Allocated at', c.allocation_stack.length ? c.allocation_stack.slice(0, 4).map((f) => f.function + ' (' + withOriginal(f.script + ':' + f.line, f.original) + ')').join(' ← ') : ''],
    ]);
    if (c.parts.length > 1 || (c.parts[0] && c.parts[0].label !== c.class)) {
      const t = el(card, 'table', 'parts');
      el(t, 'caption', null, 'What the leaked objects are');
      const head = el(el(t, 'thead'), 'tr');
      for (const x of ['Kind', 'Count', 'Retained']) el(head, 'th', null, x).scope = 'col';
      const body = el(t, 'tbody');
      for (const p of c.parts) {
        const tr = el(body, 'tr');
        el(tr, 'td', null, p.label);
        el(tr, 'td', 'num', count(p.count));
        el(tr, 'td', 'num', size(p.retained_size));
      }
    }
    el(card, 'h4', null, 'Retaining path');
    el(card, 'p', 'hint', 'From the root’s side to a leaked object. Open a step to see what else holds it and what it holds.');
    const tree = el(card, 'ul', 'tree path');
    tree.setAttribute('role', 'tree');
    if (c.scope) {
      const li = el(tree, 'li', 'scope');
      li.textContent = (c.scope.script ? shortPath(c.scope.script) : 'a function') + (c.scope.module ? ' (module scope)' : ' (closure of ' + c.scope.functions.join(', ') + ')');
      if (c.scope.script) li.title = c.scope.script;
    }
    const cut = L.path_cuts[rank - 1] || 0;
    c.path.forEach((step, i) => {
      if (cut && i === L.path_head) el(tree, 'li', 'muted cut', '… ' + count(cut) + ' more steps, left out of this page …');
      const li = el(tree, 'li');
      li.appendChild(node(L, step.node.id, step.edge, step.edge_type, step.node, 0));
    });
    if (!c.path.length) el(tree, 'li', 'muted', 'no retaining path from the root (only weak retainers)');
    if (c.sample_ids.length) {
      el(card, 'p', 'hint', 'Look around one of them: ').appendChild(code('leakhound show @' + c.sample_ids[0] + ' ' + L.last_snapshot));
    }
  }

  /**
   * One object in a tree: a <details> that opens to its retainers and edges when the
   * excerpt has them, a line otherwise. `ref` describes it when the excerpt does not.
   */
  function node(L, id, edge, edgeType, ref, depth) {
    const n = L.graph[id] || null;
    const cls = (n && n.class) || (ref && ref.class) || '?';
    const self = n ? n.self_size : ref && ref.self_size;
    const retained = n ? n.retained_size : ref && ref.retained_size;
    const label = el(null, 'span', 'node');
    if (edge !== null) {
      clipped(label, 'span', 'edge edge-' + edgeType, edge, 60);
      label.append(' → ');
    }
    clipped(label, 'span', 'class', cls, 80);
    el(label, 'span', 'id', ' @' + id);
    if (n && n.name) clipped(label, 'span', 'name', ' ' + n.name, 60);
    el(label, 'span', 'sizes', ' ' + size(self) + ' self, ' + size(retained) + ' retained');
    if (!n || !n.links || depth > 40) {
      const leaf = el(null, 'div', 'leaf');
      leaf.appendChild(label);
      leaf.title = 'Not expanded in this report: leakhound show @' + id + ' ' + L.last_snapshot;
      return leaf;
    }
    const d = el(null, 'details', 'open-node');
    const sum = el(d, 'summary');
    sum.appendChild(label);
    d.addEventListener('toggle', () => {
      if (!d.open || d.dataset.filled) return;
      d.dataset.filled = '1';
      const links = n.links;
      const groups = [
        ['Retained by', links.retainers, links.retainer_count, 'nearest to the root'],
        ['Holds', links.edges, links.edge_count, 'largest'],
      ];
      for (const [title, list, total, which] of groups) {
        const g = el(d, 'div', 'links');
        el(g, 'div', 'links-title', title + ' (' + count(total) + (total > list.length ? '; the ' + list.length + ' ' + which + ' shown' : '') + ')');
        const ul = el(g, 'ul', 'tree');
        ul.setAttribute('role', 'group');
        for (const [e, ty, other] of list) el(ul, 'li').appendChild(node(L, other, e, ty, null, depth + 1));
        if (!list.length) el(ul, 'li', 'muted', 'none');
      }
    });
    return d;
  }

  function growth(r) {
    if (!r.growing_classes.length && !r.growing_collections.length) return;
    const s = section('growth', 'Growing in every snapshot');
    if (r.growing_classes.length) {
      table(s, {
        title: 'Classes',
        caption: 'Instance counts that grew at every step',
        columns: [['Class', 'text'], ['Instances per snapshot', 'text'], ['Growth', 'signed_count']],
        rows: r.growing_classes.map((g) => [g.class, series(g.counts, count), g.counts[g.counts.length - 1] - g.counts[0]]),
        total_rows: r.growing_classes.length,
      });
    }
    if (r.growing_collections.length) {
      table(s, {
        title: 'Collections',
        caption: 'Maps, Sets, arrays and objects whose entry count grew at every step, keeping pace with the load',
        columns: [['Collection', 'text'], ['Class', 'text'], ['Object', 'text'], ['Entries per snapshot', 'text'], ['Growth', 'signed_count']],
        rows: r.growing_collections.map((g) => [
          (g.name || '(unnamed)') + (g.instances > 1 ? ' (the largest of ' + count(g.instances) + ' such)' : ''),
          g.class,
          '@' + g.id,
          series(g.entries, count),
          g.entries[g.entries.length - 1] - g.entries[0],
        ]),
        total_rows: r.growing_collections.length,
      });
    }
  }

  // ---- tables: sortable by every column, filterable by the first

  /** Rows of a table: `t` as the page's data has it. Titled unless its section is. */
  function table(parent, t, titled) {
    const box = el(parent, 'div', 'table-box');
    if (titled !== false) el(box, 'h3', null, t.title);
    if (t.caption) el(box, 'p', 'caption', t.caption);
    let filter = null;
    if (t.rows.length > 10) {
      const lab = el(box, 'label', 'filter', 'Filter by ' + t.columns[0][0].toLowerCase() + ' ');
      filter = el(lab, 'input');
      filter.type = 'search';
    }
    const wrap = el(box, 'div', 'scroll');
    const tab = el(wrap, 'table', 'data');
    const head = el(el(tab, 'thead'), 'tr');
    const body = el(tab, 'tbody');
    let order = { col: -1, desc: true };
    const buttons = t.columns.map(([title, kind], i) => {
      const th = el(head, 'th', kind === 'text' ? null : 'num');
      th.scope = 'col';
      const b = el(th, 'button', 'sort', title);
      b.type = 'button';
      b.addEventListener('click', () => {
        order = { col: i, desc: order.col === i ? !order.desc : kind !== 'text' };
        draw();
      });
      return [th, b];
    });
    const shown = el(box, 'p', 'muted');
    function key(v) {
      return v === null || v === undefined ? null : v;
    }
    function draw() {
      let rows = t.rows.slice();
      const q = filter ? filter.value.trim().toLowerCase() : '';
      if (q) rows = rows.filter((r) => String(r[0]).toLowerCase().includes(q));
      if (order.col >= 0) {
        const c = order.col;
        const text = t.columns[c][1] === 'text';
        rows.sort((a, b) => {
          const x = key(a[c]);
          const y = key(b[c]);
          if (x === null || y === null) return x === null ? (y === null ? 0 : 1) : -1;
          const d = text ? String(x).localeCompare(String(y)) : x - y;
          return order.desc ? -d : d;
        });
      }
      body.textContent = '';
      for (const r of rows) {
        const tr = el(body, 'tr');
        r.forEach((v, i) => clipped(tr, 'td', t.columns[i][1] === 'text' ? null : 'num', FORMAT[t.columns[i][1]](v), 200));
      }
      buttons.forEach(([th], i) => th.setAttribute('aria-sort', i === order.col ? (order.desc ? 'descending' : 'ascending') : 'none'));
      const cut = t.total_rows > t.rows.length ? ' (the first ' + count(t.rows.length) + ' of ' + count(t.total_rows) + ')' : '';
      shown.textContent = count(rows.length) + (rows.length === 1 ? ' row' : ' rows') + ' shown' + cut;
    }
    if (filter) filter.addEventListener('input', draw);
    draw();
    return box;
  }

  if (data.comparison) {
    const s = section('comparison', 'Comparison');
    table(s, data.comparison, false);
  }

  // ---- findings

  if (data.findings.length) {
    const s = section('findings', 'Findings');
    el(s, 'p', 'caption', 'Patterns in the last snapshot that often explain memory: each with what it usually means.');
    for (const f of data.findings) {
      const card = el(s, 'article', 'card finding');
      el(card, 'h3', null, f.title);
      el(card, 'p', null, f.meaning);
      const extra = [];
      if (f.location) extra.push(['Where', code(location(f.location))]);
      if (f.ids.length) extra.push(['Objects', f.ids.slice(0, 5).map((i) => '@' + i).join(', ')]);
      defs(card, extra);
    }
  }

  // ---- native memory

  if (data.native) {
    const N = data.native;
    const s = section('native', 'Native memory');
    el(s, 'p', 'headline', sentence(N.verdict));
    for (const p of N.processes) native(s, p);
    if (N.quiet_processes) el(s, 'p', 'muted', count(N.quiet_processes) + ' more processes were recorded, with no tracked growth.');
    if (N.flame) {
      el(s, 'h3', null, 'Flame graph of the live growth');
      el(s, 'p', 'caption', 'Each frame’s width is the live memory that grew under it between the first and the last checkpoint (sampled estimates), explained growth included (V8’s bookkeeping of leakhound’s own snapshots, Buffers held from JS); stacks whose live memory shrank are not drawn. Click a frame to zoom; search to highlight.');
      const box = el(s, 'div', 'flame-box');
      flameGraph(box, N.flame, { unit: 'bytes', title: N.flame_title });
    }
    el(s, 'p', 'muted', 'Recording: ' + N.dir);
  }

  function change(c) {
    const g = c.after - c.before;
    return size(c.before) + ' → ' + size(c.after) + ' (' + signedSize(g) + ')';
  }

  function native(parent, p) {
    const card = el(parent, 'article', 'card process');
    const words = p.cmdline.split(' ').filter((w) => !w.startsWith('--inspect') && !w.startsWith('--perf-') && !w.startsWith('--interpreted-frames') && !w.startsWith('--max-inlined') && w !== '--no-turbo-inlining' && w !== '--no-maglev-inlining');
    el(card, 'h3', null, 'PID ' + p.pid + ': ' + words.join(' '));
    const cps = p.checkpoints;
    defs(card, [
      ['Checkpoints', cps.length ? cps.length + ', from ' + seconds(cps[0] / 1000) + ' to ' + seconds(cps[cps.length - 1] / 1000) : 'none'],
      ['RSS', change(p.rss)],
      ['malloc in use', change(p.malloc_in_use)],
      ['free in malloc’s arenas', change(p.malloc_free)],
      ['Tracked live allocations', change(p.tracked) + ' ± ' + size(p.tracked_error)],
      ['Sampling', 'once per ' + size(p.interval) + ' allocated on average; the tracker’s tables use ' + size(p.tracker_memory) + (p.halvings ? '; the tables filled ' + p.halvings + ' times: the rate was halved, estimates stay unbiased' : '')],
      ['Tracker', p.state === 'on' ? '' : p.state],
    ]);
    if (p.fragmentation) el(card, 'p', 'warning', 'glibc’s free memory grew while tracked live memory did not: fragmentation, not a leak.');
    const shown = p.stacks.filter((st) => st.suspect || st.live.after - st.live.before >= 1 << 20);
    const list = shown.length ? shown : p.stacks.slice(0, 5);
    if (list.length) el(card, 'h4', null, 'Stacks whose live memory grew most');
    for (const st of list) stack(card, st, p);
    const more = p.stacks.length - list.length + p.more_stacks;
    if (more > 0) el(card, 'p', 'muted', count(more) + (more === 1 ? ' more stack' : ' more stacks') + ' grew less: in the flame graph and in --json.');
  }

  function stack(parent, st, p) {
    const g = st.live.after - st.live.before;
    const d = el(parent, 'details', 'stack' + (st.suspect ? ' suspect' : ''));
    d.open = st.suspect;
    const sum = el(d, 'summary');
    el(sum, 'span', 'growth', signedSize(g) + ' ± ' + size(st.error));
    sum.append(' live, ' + Math.round(st.retained_share * 100) + ' % of what it allocated is still alive');
    if (st.allocated_by) {
      sum.append(' · ');
      el(sum, 'code', null, st.allocated_by.name);
    }
    if (st.suspect) el(sum, 'span', 'badge leak', 'suspect');
    else if (st.signature) el(sum, 'span', 'badge', 'explained');
    const callers = st.js_callers.slice(0, 3);
    const total = st.js_callers.reduce((a, c) => a + c.growth, 0);
    defs(d, [
      ['Live at each checkpoint', series(st.series, size)],
      ['Per hour at this pace', p.checkpoints.length > 1 && p.checkpoints[p.checkpoints.length - 1] - p.checkpoints[0] >= 60000 ? size(Math.max(0, st.per_hour)) : ''],
      ['Called from (JS)', callers.map((c) => frameLabel(c.frame) + (st.js_callers.length > 1 && total ? ' (' + Math.round((c.growth * 100) / total) + ' %)' : '')).join('; ')],
      ['What it is', st.signature ? signatureText(st.signature) : ''],
      ['Why', st.why],
      ['Recorded as', st.merged > 1 ? st.merged + ' stacks of one call path (JIT tiers or call routes differ)' : ''],
    ]);
    const ol = el(d, 'ol', 'frames');
    for (const f of st.frames) {
      if (f.kind === 'builtin' && !BOUNDARY.test(f.name)) continue;
      const li = el(ol, 'li', 'frame-' + f.kind);
      el(li, 'code', null, frameLabel(f));
      el(li, 'span', 'module', f.kind === 'js' ? 'JS' : f.kind === 'builtin' ? 'V8' : f.module);
    }
  }

  function frameLabel(f) {
    return f.location ? f.name + ' (' + withOriginal(f.location, f.original) + ')' : f.name;
  }

  function signatureText(sig) {
    return data.native.signatures[sig] || String(sig).replace(/_/g, ' ');
  }

  // ---- load, commands, what was cut

  if (data.rounds) {
    const s = section('load', 'Load');
    table(s, data.rounds, false);
  }

  if (data.commands.length) {
    const s = section('reproduce', 'Reproduce');
    el(s, 'p', 'caption', 'The exact command lines: run them again after a fix, or go further.');
    for (const [what, line] of data.commands) {
      const fig = el(s, 'figure', 'command');
      el(fig, 'figcaption', null, what);
      const pre = el(fig, 'pre');
      el(pre, 'code', null, line);
      if (navigator.clipboard) {
        const b = el(fig, 'button', 'copy', 'Copy');
        b.type = 'button';
        b.addEventListener('click', () => {
          navigator.clipboard.writeText(line).then(
            () => (b.textContent = 'Copied'),
            () => (b.textContent = 'Select the text to copy'),
          );
        });
      }
    }
  }

  const foot = el(main, 'footer', 'foot');
  if (data.cut.length) {
    el(foot, 'h2', null, 'Left out of this page');
    const ul = el(foot, 'ul');
    for (const c of data.cut) el(ul, 'li', null, c);
    el(foot, 'p', 'muted', 'Everything is in the command’s --json output (and a hunt’s report.json).');
  }
  el(foot, 'p', 'muted', 'Made by leakhound. This page works offline and fetches nothing; it holds names from the app’s memory: share it as you would the snapshots.');

  // On paper nothing can be opened: the folded clusters and the native stacks print open.
  window.addEventListener('beforeprint', () => {
    for (const d of document.querySelectorAll('details.fold, details.stack')) d.open = true;
  });

  for (const [id, title] of toc) {
    const a = el(nav, 'a', null, title);
    a.href = '#' + id;
  }
})();
