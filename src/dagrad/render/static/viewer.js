// dagrad's gradient-flow viewer. The page carries a model computed by dagrad (dagrad/render/viewer.py):
// every node's and scope's Graphviz attributes, the edges with the gradient norm they carried, and each
// node's backward rank #k. This script assembles the DOT for the scopes that are open, lays it out with
// Graphviz compiled to WebAssembly (@viz-js/viz), and adds pan/zoom (svg-pan-zoom), search, a side
// panel with statistics and histograms, opening and closing scopes, and playback of the backward pass.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("dagrad-data").textContent);
  const nodes = data.nodes;
  const groups = new Map(data.groups.map((g) => [g.id, g]));
  const open = new Set(data.groups.filter((g) => g.open).map((g) => g.id));
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const byRank = [];
  nodes.forEach((n) => { if (n.rank) byRank[n.rank] = n; });
  const steps = data.steps;
  const consumersOf = new Map(); // node id -> ids of its inputs (edges the gradient flows back along)
  for (const [u, v] of data.edges) {
    const head = nodes[v].id;
    if (!consumersOf.has(head)) consumersOf.set(head, []);
    consumersOf.get(head).push(nodes[u].id);
  }

  const $ = (id) => document.getElementById(id);
  const graphEl = $("graph"), panel = $("panel"), status = $("status");
  const state = { step: 0, timer: null, speed: Math.max(60, Math.min(600, 6000 / Math.max(steps, 1))),
                  svg: null, panZoom: null, selected: null, edges: new Map(), litLog: [], layouts: 0 };

  // ------------------------------------------------------------------ DOT --
  function value(v) {
    const s = String(v);
    if (s.startsWith("<") && s.endsWith(">")) return s; // an HTML-like label, escaped by dagrad
    return '"' + s.replace(/(^|[^\\])"/g, '$1\\"') + '"'; // as the graphviz Python package quotes
  }
  function attrs(o) {
    return "[" + Object.entries(o).filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => k + "=" + value(v)).join(" ") + "]";
  }
  // The item a node is drawn as: the outermost closed group around it, or itself.
  function repOf(node) {
    for (const g of node.chain) if (!open.has(g)) return g;
    return node.id;
  }
  // The open scope an item is drawn inside ("" for the top level); segments are never clusters.
  function clusterOf(chain) {
    for (let i = chain.length - 1; i >= 0; i--) {
      const g = groups.get(chain[i]);
      if (g.kind === "scope" && open.has(g.id)) return g.id;
    }
    return "";
  }
  function chainOfGroup(id) {
    const chain = [];
    for (let g = groups.get(id).parent; g; g = groups.get(g).parent) chain.unshift(g);
    return chain;
  }
  function logScale(values) {
    const logs = values.filter((v) => v > 0 && isFinite(v)).map(Math.log10);
    if (!logs.length) return () => 0;
    const low = Math.min(...logs), high = Math.max(...logs);
    return (v) => (!(v > 0 && isFinite(v)) ? 0 : high === low ? 1 : (Math.log10(v) - low) / (high - low));
  }

  function toDot() {
    const reps = new Map();
    const children = new Map([["", []]]);
    const parentCluster = new Map();
    const addTo = (cluster, line) => {
      if (!children.has(cluster)) children.set(cluster, []);
      children.get(cluster).push(line);
    };
    const useCluster = (id) => { // make sure every open scope around id is emitted, parents first
      while (id && !parentCluster.has(id)) {
        const up = clusterOf(chainOfGroup(id));
        parentCluster.set(id, up);
        addTo(up, { cluster: id });
        id = up;
      }
    };
    for (const node of nodes) {
      const rep = repOf(node);
      if (reps.has(rep)) continue;
      const isNode = rep === node.id;
      const item = isNode ? node : groups.get(rep);
      const chain = isNode ? node.chain : chainOfGroup(rep);
      const cluster = clusterOf(chain);
      reps.set(rep, item);
      useCluster(cluster);
      addTo(cluster, { line: rep + " " + attrs(item.attrs) });
    }
    const out = ["digraph dagrad {", "graph " + attrs(Object.assign({}, data.graph, { label: data.title })),
                 "node " + attrs(data.node), "edge " + attrs(data.edge)];
    const emit = (cluster, indent) => {
      for (const child of children.get(cluster) || []) {
        if (child.line) { out.push(indent + child.line); continue; }
        const g = groups.get(child.cluster);
        out.push(indent + "subgraph cluster_" + g.id + " {");
        out.push(indent + "  graph " + attrs(Object.assign({ id: "c_" + g.id }, g.cluster)));
        emit(child.cluster, indent + "  ");
        out.push(indent + "}");
      }
    };
    emit("", "");
    const flows = new Map();
    for (const [u, v, norm, bad] of data.edges) {
      const a = repOf(nodes[u]), b = repOf(nodes[v]);
      if (a === b) continue;
      const key = a + ">" + b;
      if (!flows.has(key)) flows.set(key, { a, b, sq: 0, seen: false, bad: false });
      const f = flows.get(key);
      if (norm !== null) { f.sq += norm * norm; f.seen = true; }
      if (bad) { f.bad = true; f.seen = true; }
    }
    const [minPen, maxPen] = data.pen;
    // As in the static diagram: a forward value read by the backward part does not pull the reader up.
    const backward = (id) => (byId.has(id) ? byId.get(id) : groups.get(id)).backward;
    const scale = logScale([...flows.values()].filter((f) => f.seen && !f.bad).map((f) => Math.sqrt(f.sq)));
    state.edges = new Map();
    let k = 0;
    for (const f of flows.values()) {
      const id = "e" + k++;
      const norm = Math.sqrt(f.sq);
      const a = { id, class: "flowable" };
      if (f.bad) Object.assign(a, { color: data.nanColor, penwidth: maxPen, style: "bold" });
      else if (!f.seen) Object.assign(a, { color: "#9e9e9e", penwidth: minPen });
      else Object.assign(a, { color: "#2b2b2b", penwidth: norm > 0 ? (minPen + (maxPen - minPen) * scale(norm)).toFixed(2) : 0.6,
                               style: norm === 0 ? "dashed" : null });
      if (data.arrows === "backward") a.dir = "back";
      if (backward(f.b) && !backward(f.a)) a.weight = 0;
      out.push(f.a + " -> " + f.b + " " + attrs(a));
      state.edges.set(id, f);
    }
    const beside = new Map();
    for (const [c, s] of data.beside) {
      const cid = nodes[c].id, sid = nodes[s].id;
      if (reps.has(cid) && reps.has(sid) && reps.get(cid) === nodes[c] && reps.get(sid) === nodes[s]) {
        if (!beside.has(cid)) beside.set(cid, [cid]);
        beside.get(cid).push(sid);
      }
    }
    // A dotted link from each forward node to its backward step: to the step's cluster when it is open.
    const linked = new Set();
    for (const [u, v, step] of data.links) {
      const a = repOf(nodes[u]), b = repOf(nodes[v]);
      const head = b === nodes[v].id && step && open.has(step) ? step : null;
      const key = a + ">" + (head || b);
      if (a === b || linked.has(key)) continue;
      linked.add(key);
      const link = Object.assign({ tooltip: nodes[v].info.origin }, data.link, head ? { lhead: "cluster_" + head } : {});
      out.push(a + " -> " + b + " " + attrs(link));
    }
    for (const ids of beside.values()) out.push("{rank=same; " + ids.join("; ") + "}");
    out.push("}");
    state.reps = reps;
    return out.join("\n");
  }

  // --------------------------------------------------------------- layout --
  let vizPromise = null;
  function viz() {
    if (!vizPromise) vizPromise = Viz.instance();
    return vizPromise;
  }
  async function layout(focus) {
    status.textContent = "laying out\u2026";
    const dot = toDot();
    const v = await viz();
    const svg = v.renderSVGElement(dot);
    if (state.panZoom) state.panZoom.destroy();
    graphEl.replaceChildren(svg);
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    state.svg = svg;
    state.panZoom = svgPanZoom(svg, { zoomEnabled: true, controlIconsEnabled: false, fit: true, center: true,
                                      minZoom: 0.02, maxZoom: 40, zoomScaleSensitivity: 0.3, dblClickZoomEnabled: false });
    state.layouts += 1;
    status.textContent = state.reps.size + " boxes";
    applyStep();
    if (focus) centre(focus);
    return svg;
  }
  function centre(id) {
    const el = state.svg && state.svg.getElementById(id);
    if (!el) return;
    let r = el.getBoundingClientRect();
    const s = state.svg.getBoundingClientRect();
    if (r.width < 120) state.panZoom.zoomBy(Math.min(4, 160 / Math.max(r.width, 1)));
    r = el.getBoundingClientRect();
    state.panZoom.panBy({ x: s.left + s.width / 2 - (r.left + r.width / 2), y: s.top + s.height / 2 - (r.top + r.height / 2) });
  }

  // ------------------------------------------------------------- playback --
  function applyStep() {
    if (!state.svg) return;
    const k = state.step;
    graphEl.classList.toggle("playing", k > 0);
    for (const el of state.svg.querySelectorAll("g.node.lit, g.node.current")) el.classList.remove("lit", "current");
    for (const el of state.svg.querySelectorAll("g.edge.flow")) el.classList.remove("flow");
    const firstLit = new Map();
    for (let r = 1; r <= k; r++) {
      const rep = repOf(byRank[r]);
      if (!firstLit.has(rep)) firstLit.set(rep, r);
    }
    for (const [rep, r] of firstLit) {
      const el = state.svg.getElementById(rep);
      if (el) { el.classList.add("lit"); el.setAttribute("data-lit-step", r); }
    }
    for (const el of state.svg.querySelectorAll("g.node[data-lit-step]")) {
      if (!firstLit.has(el.id)) el.removeAttribute("data-lit-step");
    }
    if (k > 0) {
      const node = byRank[k], rep = repOf(node);
      const cur = state.svg.getElementById(rep);
      if (cur) cur.classList.add("current");
      const inputs = new Set((consumersOf.get(node.id) || []).map((id) => repOf(byId.get(id))));
      for (const [id, f] of state.edges) {
        if (f.b === rep && inputs.has(f.a)) {
          const el = state.svg.getElementById(id);
          if (el) el.classList.add("flow");
        }
      }
    }
    $("slider").value = k;
    $("step").textContent = k ? "#" + k + " / " + steps : "#0 / " + steps;
  }
  function setStep(k) {
    const before = state.step;
    state.step = Math.max(0, Math.min(steps, k));
    for (let r = before + 1; r <= state.step; r++) state.litLog.push(byRank[r].id);
    applyStep();
  }
  function play() {
    if (state.timer) return pause();
    if (state.step >= steps) setStep(0);
    $("play").textContent = "\u23F8 pause";
    state.timer = setInterval(() => {
      if (state.step >= steps) return pause();
      setStep(state.step + 1);
    }, state.speed);
  }
  function pause() {
    clearInterval(state.timer);
    state.timer = null;
    $("play").textContent = "\u25B6 play";
  }

  // ---------------------------------------------------------------- panel --
  const fmt = (x) => (typeof x === "number" ? (Number.isInteger(x) ? String(x) : x.toPrecision(4).replace(/\.?0+(e|$)/, "$1")) : String(x));
  function el(tag, props, ...kids) {
    const e = document.createElement(tag);
    Object.assign(e, props || {});
    for (const k of kids) e.append(k);
    return e;
  }
  function histogram(h, cls) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    const w = 300, hgt = 60, max = Math.max(...h.counts, 1), bw = w / h.counts.length;
    svg.setAttribute("viewBox", "0 0 " + w + " " + (hgt + 14));
    svg.setAttribute("width", w);
    svg.setAttribute("class", "hist " + cls);
    h.counts.forEach((c, i) => {
      const r = document.createElementNS(ns, "rect");
      const bh = c ? Math.max(1, (c / max) * hgt) : 0;
      r.setAttribute("x", i * bw + 0.5); r.setAttribute("width", bw - 1);
      r.setAttribute("y", hgt - bh); r.setAttribute("height", bh);
      const t = document.createElementNS(ns, "title");
      t.textContent = c + " entries";
      r.append(t);
      svg.append(r);
    });
    for (const [x, anchor, text] of [[0, "start", fmt(h.low)], [w, "end", fmt(h.high)]]) {
      const t = document.createElementNS(ns, "text");
      t.setAttribute("x", x); t.setAttribute("y", hgt + 12); t.setAttribute("text-anchor", anchor);
      t.setAttribute("font-size", "11");
      t.textContent = text;
      svg.append(t);
    }
    return svg;
  }
  function arrayTable(title, a, cls) {
    const section = el("section", { className: cls });
    section.append(el("h3", { textContent: title }));
    if (!a) return section;
    if (a.note) { section.append(el("p", { textContent: a.note })); return section; }
    const rows = [["shape", a.shape + " " + a.dtype]];
    if (a.entries) rows.push(["entries", "[" + a.entries.map(fmt).join(", ") + "]"]);
    if (a.count) rows.push(["mean", fmt(a.mean)], ["std", fmt(a.std)], ["min", fmt(a.min)], ["max", fmt(a.max)], ["L2 norm", fmt(a.norm)]);
    if (a.nan || a.inf) rows.push(["NaN / Inf", a.nan + " / " + a.inf]);
    section.append(el("table", {}, ...rows.map(([k, v]) => el("tr", {}, el("td", { textContent: k }), el("td", { textContent: v })))));
    if (a.hist) section.append(histogram(a.hist, cls));
    return section;
  }
  function showNode(node) {
    const info = node.info;
    const head = el("h2", {}, ...(node.rank ? [el("span", { className: "badge", textContent: "#" + node.rank }), " "] : []), node.name);
    const facts = el("table", {}, ...[["op", info.op], ["shape", info.shape + " " + info.dtype],
      ["inputs", info.inputs.join(", ") || "\u2013"], ...(info.origin ? [["computes", info.origin]] : []),
      ["backward", node.rank ? "gradient finished " + node.rank + " of " + steps : "not on the backward path"]]
      .map(([k, v]) => el("tr", {}, el("td", { textContent: k }), el("td", { textContent: v }))));
    const scopes = node.chain.map((g) => groups.get(g)).filter((g) => g.kind === "scope")
      .map((g) => el("button", { textContent: "close " + g.title, onclick: () => closeGroup(g.id) }));
    panel.replaceChildren(head, facts, arrayTable("value", info.value, "value"),
                          ...(info.grad ? [arrayTable("gradient", info.grad, "grad")] : []), ...scopes);
    panel.setAttribute("data-node", node.name);
  }
  function showGroup(g) {
    const box = state.svg && state.svg.getElementById(g.id);
    const lines = box ? [...box.querySelectorAll("text")].map((t) => t.textContent) : [];
    panel.replaceChildren(el("h2", { textContent: g.kind + " " + g.title }),
      el("p", { textContent: g.size + " nodes" + (g.ranks ? ", backward #" + g.ranks[0] + "\u2013#" + g.ranks[1] : "") }),
      el("pre", { textContent: lines.join("\n") }),
      el("button", { textContent: "open", onclick: () => openGroup(g.id) }));
    panel.setAttribute("data-node", g.title);
  }
  function select(id) {
    if (!state.svg) return;
    for (const e of state.svg.querySelectorAll("g.node.selected")) e.classList.remove("selected");
    const e = state.svg.getElementById(id);
    if (e) e.classList.add("selected");
    state.selected = id;
    if (byId.has(id)) showNode(byId.get(id)); else if (groups.has(id)) showGroup(groups.get(id));
  }

  // -------------------------------------------------------- open and close --
  function openGroup(id, focus) {
    for (const g of [...chainOfGroup(id), id]) open.add(g);
    return layout(focus || id);
  }
  function closeGroup(id) {
    open.delete(id);
    for (const g of groups.values()) if (chainOfGroup(g.id).includes(id)) open.delete(g.id);
    return layout(id).then(() => select(id));
  }
  async function reveal(name) {
    const node = nodes.find((n) => n.name === name);
    if (!node) return null;
    const closed = node.chain.filter((g) => !open.has(g));
    if (closed.length) { closed.forEach((g) => open.add(g)); await layout(node.id); } else centre(node.id);
    for (const e of state.svg.querySelectorAll("g.node.found")) e.classList.remove("found");
    const e = state.svg.getElementById(node.id);
    if (e) e.classList.add("found");
    select(node.id);
    return node.id;
  }

  // ---------------------------------------------------------------- wiring --
  graphEl.addEventListener("click", (ev) => {
    const node = ev.target.closest("g.node");
    if (node) {
      if (groups.has(node.id)) { const g = groups.get(node.id); select(g.id); openGroup(g.id).then(() => select(g.id)); }
      else select(node.id);
      return;
    }
    const cluster = ev.target.closest("g.cluster");
    if (cluster && cluster.id.startsWith("c_")) closeGroup(cluster.id.slice(2));
  });
  const found = $("found"), search = $("search");
  search.addEventListener("input", () => {
    const q = search.value.trim().toLowerCase();
    found.replaceChildren();
    if (!q) { found.hidden = true; return; }
    const hits = nodes.filter((n) => n.name.toLowerCase().includes(q)).slice(0, 15);
    for (const n of hits) {
      found.append(el("li", { textContent: n.name + (n.rank ? "  #" + n.rank : ""),
                              onclick: () => { found.hidden = true; reveal(n.name); } }));
    }
    found.hidden = !hits.length;
  });
  search.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && found.firstChild) found.firstChild.click();
    if (ev.key === "Escape") found.hidden = true;
  });
  $("play").onclick = play;
  $("first").onclick = () => { pause(); setStep(0); };
  $("back").onclick = () => { pause(); setStep(state.step - 1); };
  $("forward").onclick = () => { pause(); setStep(state.step + 1); };
  $("slider").max = steps;
  $("slider").addEventListener("input", (ev) => { pause(); setStep(Number(ev.target.value)); });
  $("fit").onclick = () => { if (state.panZoom) { state.panZoom.resize(); state.panZoom.fit(); state.panZoom.center(); } };
  $("expand").onclick = () => { data.groups.forEach((g) => open.add(g.id)); layout(); };
  $("collapse").onclick = () => { open.clear(); layout(); };
  document.addEventListener("keydown", (ev) => {
    if (ev.target === search) return;
    if (ev.key === " ") { ev.preventDefault(); play(); }
    else if (ev.key === "ArrowRight") { pause(); setStep(state.step + 1); }
    else if (ev.key === "ArrowLeft") { pause(); setStep(state.step - 1); }
    else if (ev.key === "Home") { pause(); setStep(0); }
  });
  window.addEventListener("resize", () => { if (state.panZoom) state.panZoom.resize(); });
  if (!steps) for (const id of ["first", "back", "play", "forward", "slider"]) $(id).disabled = true;

  const ready = layout().catch((err) => { status.textContent = "could not lay out the diagram: " + err; throw err; });
  window.dagradViewer = {
    ready, data, toDot, setStep, play, pause, reveal, select, openGroup, closeGroup,
    get step() { return state.step; }, get litLog() { return state.litLog.slice(); },
    get layouts() { return state.layouts; }, setSpeed(ms) { state.speed = ms; },
  };
})();
