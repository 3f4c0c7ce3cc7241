// The evstore web console: plain JavaScript over the HTTP API
// (server/README.md), no framework and nothing fetched but the API.
// Two views, chosen by the location's hash: #/ (the executions) and
// #/e/ID (one execution). Live views poll the API; a view's timers stop
// when another view is shown.

const TOKEN_KEY = "evstore.token";
const BY_KEY = "evstore.by"; // who the operator said they were, last time
const TERMINAL = new Set(["completed", "failed", "terminated", "continued"]);
const STATUSES = ["running", "waiting", "paused", "completed", "failed",
                  "terminated", "continued"];
const POLL_MS = 1000;

// ------------------------------------------------------------ helpers

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, kids);
  return el;
}

function svg(tag, attrs, ...kids) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  setAttrs(el, attrs);
  append(el, kids);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
}

function append(el, kids) {
  for (const k of kids.flat()) {
    if (k === undefined || k === null || k === false) continue;
    el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
}

const $ = (sel, root = document) => root.querySelector(sel);

function fmtTime(t) {
  if (!t) return "";
  const d = new Date(t);
  return isNaN(d) ? String(t) : d.toISOString().replace("T", " ").slice(0, 23);
}

function fmtDur(ms) {
  if (ms === null || ms === undefined || isNaN(ms)) return "";
  if (ms < 1) return "<1 ms";
  if (ms < 1000) return Math.round(ms) + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
  const m = Math.floor(ms / 60000);
  return m + " min " + Math.round((ms % 60000) / 1000) + " s";
}

function short(v, n = 80) {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s === undefined ? "" : s.length > n ? s.slice(0, n - 1) + "…" : s;
}

// Microseconds since the epoch from an RFC 3339 time (Date keeps
// milliseconds only; the API writes microseconds).
function micros(t) {
  if (typeof t === "number") return t;
  if (!t) return NaN;
  const m = /\.(\d+)/.exec(t);
  const ms = Date.parse(t);
  if (isNaN(ms)) return NaN;
  const frac = m ? Number((m[1] + "000000").slice(3, 6)) : 0;
  return ms * 1000 + frac;
}

function eventTime(e) {
  return micros(e.timestamp);
}

// A history line as the API sends it (`evdump show --json`'s), with the
// short names the console uses beside its own.
function normEvent(e) {
  return Object.assign(e, {seq: e.sequence, type: e.event_type});
}

// ------------------------------------------------------------ the API

class ApiError extends Error {
  constructor(status, doc) {
    const e = doc && doc.error;
    super(e ? `${e.code}: ${e.message}` : `HTTP ${status}`);
    this.status = status;
    this.code = e ? e.code : null;
    this.doc = doc;
  }
}

let tokenAsked = null; // one question at a time, however many requests wait

async function askToken(wrong) {
  if (!tokenAsked) {
    tokenAsked = ask({
      title: "Bearer token",
      text: wrong ? "The server refused that token. Enter the server's token "
                    + "(the contents of its --token-file)."
                  : "This server needs a bearer token (the contents of its "
                    + "--token-file). It is kept for this tab only.",
      fields: [{name: "token", label: "Token", type: "password"}],
      ok: "Use token",
    }).then((v) => {
      tokenAsked = null;
      if (!v || !v.token) return false;
      sessionStorage.setItem(TOKEN_KEY, v.token.trim());
      return true;
    });
  }
  return tokenAsked;
}

// Calls the API; returns {status, doc}. A 401 asks for the token (kept in
// sessionStorage) and tries again; other errors throw ApiError.
async function api(path, opts = {}) {
  for (let tries = 0; ; tries++) {
    const headers = {};
    const tok = sessionStorage.getItem(TOKEN_KEY);
    if (tok) headers.Authorization = "Bearer " + tok;
    let body;
    if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.body);
    }
    const r = await fetch(path, {method: opts.method || "GET", headers, body,
                                 cache: "no-store"});
    const text = await r.text();
    let doc = text;
    try { doc = JSON.parse(text); } catch (_) { /* plain text */ }
    if (r.status === 401 && tries < 5) {
      // Sent before a token was given (or changed): try the new one.
      const now = sessionStorage.getItem(TOKEN_KEY);
      if (now && now !== tok) continue;
      if (await askToken(Boolean(now))) continue;
    }
    if (!r.ok) throw new ApiError(r.status, doc);
    return {status: r.status, doc};
  }
}

async function get(path) {
  return (await api(path)).doc;
}

// ------------------------------------------------------------ the dialog

// Asks a question in the page's one <dialog>: {title, text, fields, ok,
// validate}. Resolves to the fields' values, or null when cancelled. A
// field: {name, label, type: text|password|textarea|select, options,
// value, hint, show: (values) => bool}.
function ask(q) {
  const dlg = $("#ask");
  const body = $("#ask-body");
  $("#ask-title").textContent = q.title;
  $("#ask-error").textContent = "";
  $("#ask-ok").textContent = q.ok || "OK";
  body.replaceChildren();
  if (q.text) body.append(h("p", {text: q.text}));
  const inputs = {};
  const rows = [];
  for (const f of q.fields || []) {
    let input;
    if (f.type === "select") {
      input = h("select", {name: f.name},
                f.options.map((o) => h("option", {value: o, text: o})));
    } else if (f.type === "textarea") {
      input = h("textarea", {name: f.name, rows: 4});
    } else {
      input = h("input", {name: f.name, type: f.type || "text",
                          autocomplete: "off"});
    }
    if (f.value !== undefined) input.value = f.value;
    inputs[f.name] = input;
    const row = h("label", {class: "field"}, h("span", {text: f.label}),
                  input, f.hint ? h("small", {class: "muted", text: f.hint})
                                : null);
    rows.push([f, row]);
    body.append(row);
  }
  const values = () => Object.fromEntries(
    Object.entries(inputs).map(([k, el]) => [k, el.value]));
  const refresh = () => {
    for (const [f, row] of rows)
      row.hidden = f.show ? !f.show(values()) : false;
  };
  for (const el of Object.values(inputs)) el.addEventListener("change", refresh);
  refresh();
  // Answered from the form's submit (and the dialog's cancel, Escape)
  // rather than its close event, which comes a task later and could
  // reach the next question's listener.
  return new Promise((resolve) => {
    const form = $("#ask-form");
    const done = (v) => {
      form.removeEventListener("submit", onSubmit);
      dlg.removeEventListener("cancel", onCancel);
      resolve(v);
    };
    const onSubmit = (ev) => {
      if (ev.submitter && ev.submitter.value === "ok") {
        const err = q.validate ? q.validate(values()) : null;
        if (err) {
          ev.preventDefault();
          $("#ask-error").textContent = err;
          return;
        }
        done(values());
      } else {
        done(null);
      }
    };
    const onCancel = () => done(null);
    form.addEventListener("submit", onSubmit);
    dlg.addEventListener("cancel", onCancel);
    dlg.showModal();
    const first = Object.values(inputs)[0];
    (first || $("#ask-ok")).focus();
  });
}

function parseJson(text, what) {
  if (!text.trim()) return {value: undefined};
  try {
    return {value: JSON.parse(text)};
  } catch (e) {
    return {error: `${what} is not JSON: ${e.message}`};
  }
}

// ------------------------------------------------------------ views

let view = null; // the view shown: {stop()}

function route() {
  if (view) view.stop();
  const m = /^#\/e\/(.+)$/.exec(location.hash);
  const main = $("#main");
  main.replaceChildren();
  $("#live").textContent = "";
  // #/?limit=N: the list's page size (default 50).
  const lim = /[?&]limit=(\d+)/.exec(location.hash);
  view = m ? execView(main, decodeURIComponent(m[1]))
           : listView(main, lim ? Math.min(1000, Math.max(1, Number(lim[1]))) : 50);
}

function poller(fn, ms) {
  let timer = null, stopped = false;
  const tick = async () => {
    if (stopped) return;
    try { await fn(); } catch (e) { console.warn(e); }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

// ------------------------------------------------------------ the list

function statusBadge(s) {
  return h("span", {class: "badge st-" + s, text: s});
}

function listView(main, pageSize) {
  const st = {status: sessionStorage.getItem("evstore.filter") || "",
              cursors: [null], page: 0, search: "", rows: []};
  let loads = 0; /* load() calls made, to drop stale answers */
  const counts = h("div", {class: "counts", id: "counts"});
  const filter = h("select", {id: "status-filter", onchange: () => {
    st.status = filter.value;
    sessionStorage.setItem("evstore.filter", st.status);
    st.cursors = [null];
    st.page = 0;
    load();
  }}, h("option", {value: "", text: "all statuses"}),
      STATUSES.map((s) => h("option", {value: s, text: s})));
  filter.value = st.status;
  const search = h("input", {id: "search", type: "search",
                             placeholder: "execution id (Enter opens it)",
                             oninput: () => { st.search = search.value; draw(); },
                             onkeydown: async (ev) => {
                               if (ev.key !== "Enter" || !search.value.trim())
                                 return;
                               const id = search.value.trim();
                               try {
                                 await get("/v1/executions/" + encodeURIComponent(id));
                                 location.hash = "#/e/" + encodeURIComponent(id);
                               } catch (e) {
                                 note.textContent = `${id}: ${e.message}`;
                               }
                             }});
  const note = h("p", {class: "error", id: "list-error"});
  const tbody = h("tbody", {id: "exec-rows"});
  const prev = h("button", {id: "prev", onclick: () => { st.page--; load(); }},
                 "← newer");
  const next = h("button", {id: "next", onclick: () => { st.page++; load(); }},
                 "older →");
  const pageInfo = h("span", {class: "muted", id: "page-info"});
  main.append(
    h("section", {},
      h("h2", {}, "Executions"), counts,
      h("div", {class: "toolbar"}, filter, search, prev, next, pageInfo),
      note,
      h("table", {class: "grid"},
        h("thead", {}, h("tr", {},
          ["id", "status", "workflow", "created", "ended", "events"]
            .map((t) => h("th", {text: t})))),
        tbody)));

  function draw() {
    const q = st.search.trim().toLowerCase();
    const rows = q ? st.rows.filter((r) => String(r.id).toLowerCase().includes(q))
                   : st.rows;
    tbody.replaceChildren(...rows.map((r) => h("tr", {"data-id": r.id},
      h("td", {}, h("a", {href: "#/e/" + encodeURIComponent(r.id), text: r.id})),
      h("td", {}, statusBadge(r.status)),
      h("td", {text: r.workflow_name ?? r.workflow ?? ""}),
      h("td", {text: fmtTime(r.created_at ?? r.start_time)}),
      h("td", {text: fmtTime(r.end_time ?? r.ended_at)}),
      h("td", {class: "num", text: r.last_event_seq ?? r.events ?? ""}))));
    if (!rows.length)
      tbody.append(h("tr", {}, h("td", {colspan: 6, class: "muted",
                                         text: "no executions"})));
  }

  async function load() {
    const qs = new URLSearchParams({limit: String(pageSize)});
    if (st.status) qs.set("status", st.status);
    const cur = st.cursors[st.page];
    if (cur) qs.set("cursor", cur);
    /* A live refresh may still be out when the page or the filter
     * changes: only the latest load's answer is drawn. */
    const mine = ++loads;
    try {
      const doc = await get("/v1/executions?" + qs);
      if (mine !== loads) return;
      st.rows = doc.items;
      st.cursors[st.page + 1] = doc.next_cursor;
      st.cursors.length = st.page + 2;
      if (doc.total !== undefined && doc.total !== null) st.total = doc.total;
      note.textContent = "";
    } catch (e) {
      if (mine !== loads) return;
      note.textContent = e.message;
    }
    prev.disabled = st.page === 0;
    next.disabled = !st.cursors[st.page + 1];
    pageInfo.textContent = `page ${st.page + 1}` +
      (st.total !== undefined ? ` · ${st.total} matching` : "");
    draw();
  }

  async function loadCounts() {
    const all = await Promise.all([""].concat(STATUSES).map(async (s) => {
      const doc = await get("/v1/executions?limit=1" + (s ? "&status=" + s : ""));
      return [s, doc.total];
    }));
    counts.replaceChildren(...all.map(([s, n]) => h("button", {
      class: "count" + (s === st.status ? " on" : "") + (s ? " st-" + s : ""),
      "data-status": s || "all", "data-count": n,
      onclick: () => { filter.value = s; filter.dispatchEvent(new Event("change")); },
    }, h("b", {text: n}), " ", s || "all")));
  }

  load();
  const stopCounts = poller(loadCounts, 2000);
  const stopRows = poller(async () => { if (st.page === 0) await load(); }, 3000);
  $("#live").textContent = "live";
  return {stop() { stopCounts(); stopRows(); }};
}

// ------------------------------------------------------------ steps

// What each step did, from the events up to sequence `upto`: per step
// name its runs ({path, iteration, state, start, end, attempts, waits}),
// and the state the graph colours it with.
const PRIORITY = ["failed", "running", "waiting", "retrying", "paused",
                  "cancelled", "completed", "skipped", "pending"];

function stepRuns(events, upto) {
  const runs = new Map(); // key path|step|iteration -> run
  const order = []; // steps by first start
  const paths = new Map(); // path -> {id, parent, first, steps:[]}
  let lastTime = NaN;
  const pathOf = (e) => e.path_id || "main";
  const addPath = (id, parent) => {
    if (!paths.has(id)) paths.set(id, {id, parent, runs: []});
    return paths.get(id);
  };
  for (const e of events) {
    if (e.seq > upto) break;
    const d = e.data || {};
    const t = eventTime(e);
    if (!isNaN(t)) lastTime = t;
    const p = pathOf(e);
    if (e.type === "execution_started") addPath(p, null);
    if (e.type === "path_started") addPath(p, d.parent || null);
    if (e.type === "path_branched")
      for (const np of d.new_paths || []) addPath(np.id, p);
    if (e.type === "path_cancelled") {
      for (const r of runs.values())
        if (r.path === p && ["running", "waiting", "retrying"].includes(r.state)) {
          r.state = "cancelled";
          r.end = t;
        }
      continue;
    }
    if (!e.step_name) continue;
    const it = d.iteration ?? -1;
    const key = `${p}|${e.step_name}|${it}`;
    let r = runs.get(key);
    if (!r) {
      if (!["step_started", "step_skipped", "each_completed"].includes(e.type))
        continue;
      r = {path: p, step: e.step_name, iteration: it, state: "pending",
           start: t, end: NaN, attempts: 0, waits: [], firstSeq: e.seq};
      runs.set(key, r);
      addPath(p, null).runs.push(r);
      if (!order.includes(e.step_name)) order.push(e.step_name);
    }
    switch (e.type) {
      case "step_started": r.attempts++; r.state = "running"; r.end = NaN; break;
      case "step_redispatched": r.state = "running"; break;
      case "step_completed": case "each_completed":
        r.state = "completed"; r.end = t; break;
      case "step_failed": r.state = "failed"; r.end = t; break;
      case "retry_scheduled": case "step_reset": r.state = "retrying"; break;
      case "step_skipped": r.state = "skipped"; r.end = t; break;
      case "wait_started": r.state = "waiting"; r.waits.push({start: t, end: NaN});
        break;
      case "wait_ended": r.state = "running";
        if (r.waits.length) r.waits[r.waits.length - 1].end = t;
        break;
      default: break;
    }
  }
  const byStep = new Map();
  for (const r of runs.values()) {
    const s = byStep.get(r.step) || {runs: [], state: "pending", attempts: 0};
    s.runs.push(r);
    s.attempts += r.attempts;
    if (PRIORITY.indexOf(r.state) < PRIORITY.indexOf(s.state)) s.state = r.state;
    byStep.set(r.step, s);
  }
  return {runs: [...runs.values()], byStep, order, paths, lastTime};
}

// The graph's nodes and edges: from the definition the execution runs
// (its last execution_started or definition_changed), else from the
// steps the events recorded (a durable-functions run has no definition).
function graphOf(events, runsInfo) {
  let def = null;
  for (const e of events) {
    if ((e.type === "execution_started" || e.type === "definition_changed") &&
        e.data && e.data.definition && Array.isArray(e.data.definition.steps))
      def = e.data.definition;
  }
  const nodes = [], edges = [];
  const edge = (from, to, label, dashed) => {
    const old = edges.find((x) => x.from === from && x.to === to &&
                                  x.dashed === dashed);
    if (old) {
      if (label && !old.label.split(", ").includes(label))
        old.label = old.label ? old.label + ", " + label : label;
    } else {
      edges.push({from, to, label: label || "", dashed});
    }
  };
  if (def) {
    for (const s of def.steps) nodes.push({name: s.name, kind: s.kind || ""});
    for (const s of def.steps) {
      const nx = s.next;
      if (typeof nx === "string") edge(s.name, nx, "", false);
      else if (Array.isArray(nx))
        for (const n of nx) {
          if (typeof n === "string") edge(s.name, n, "", false);
          else if (n && n.to)
            edge(s.name, n.to, n.path || (n.when ? "when" : ""), false);
        }
      if (typeof s.then === "string") edge(s.name, s.then, "then", true);
    }
    return {nodes, edges, from: "definition", name: def.name};
  }
  for (const name of runsInfo.order) nodes.push({name, kind: ""});
  // Each path's steps in the order they started; a branch from the step
  // its parent ran last before the branch's first step.
  for (const p of runsInfo.paths.values()) {
    const rs = p.runs.slice().sort((a, b) => a.firstSeq - b.firstSeq);
    for (let i = 1; i < rs.length; i++)
      if (rs[i - 1].step !== rs[i].step) edge(rs[i - 1].step, rs[i].step, "", false);
    if (p.parent && rs.length && runsInfo.paths.has(p.parent)) {
      const before = runsInfo.paths.get(p.parent).runs
        .filter((r) => r.firstSeq < rs[0].firstSeq).pop();
      if (before && before.step !== rs[0].step)
        edge(before.step, rs[0].step, p.id, false);
    }
  }
  return {nodes, edges, from: "recorded steps", name: null};
}

// Lays the graph out in columns (a step's column: its longest distance
// from the first step, back edges set aside) and draws it as SVG.
function drawGraph(g, byStep) {
  const W = 172, H = 46, GX = 70, GY = 22, PAD = 16;
  const idx = new Map(g.nodes.map((n, i) => [n.name, i]));
  const out = g.nodes.map(() => []);
  for (const e of g.edges)
    if (idx.has(e.from) && idx.has(e.to)) out[idx.get(e.from)].push(idx.get(e.to));
  // Back edges: those closing a cycle in a depth-first walk.
  const color = g.nodes.map(() => 0), back = new Set();
  const dfs = (u) => {
    color[u] = 1;
    for (const v of out[u]) {
      if (color[v] === 1) back.add(u + ">" + v);
      else if (color[v] === 0) dfs(v);
    }
    color[u] = 2;
  };
  g.nodes.forEach((_, i) => { if (!color[i]) dfs(i); });
  const col = g.nodes.map(() => 0);
  for (let pass = 0; pass < g.nodes.length; pass++) {
    let moved = false;
    out.forEach((vs, u) => vs.forEach((v) => {
      if (!back.has(u + ">" + v) && col[v] < col[u] + 1) {
        col[v] = col[u] + 1;
        moved = true;
      }
    }));
    if (!moved) break;
  }
  const rowsIn = [];
  const pos = g.nodes.map((n, i) => {
    const c = col[i];
    const r = rowsIn[c] = (rowsIn[c] ?? -1) + 1;
    return {x: PAD + c * (W + GX), y: PAD + r * (H + GY)};
  });
  const width = PAD * 2 + (Math.max(0, ...col) + 1) * (W + GX) - GX;
  const height = PAD * 2 + (Math.max(0, ...rowsIn) + 1) * (H + GY) - GY + 20;
  const root = svg("svg", {id: "graph-svg", width, height,
                           viewBox: `0 0 ${width} ${height}`, role: "img",
                           "aria-label": "workflow graph"});
  root.append(svg("defs", {}, svg("marker", {
    id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7,
    markerHeight: 7, orient: "auto-start-reverse"},
  svg("path", {d: "M0,0 L10,5 L0,10 z", class: "arrowhead"}))));
  for (const e of g.edges) {
    if (!idx.has(e.from) || !idx.has(e.to)) continue;
    const a = pos[idx.get(e.from)], b = pos[idx.get(e.to)];
    let d, lx, ly;
    if (col[idx.get(e.to)] > col[idx.get(e.from)]) {
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
      const mx = (x1 + x2) / 2;
      d = `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`;
      lx = mx; ly = (y1 + y2) / 2 - 4;
    } else { // back or sideways: a loop under the nodes
      const x1 = a.x + W / 2, y1 = a.y + H, x2 = b.x + W / 2, y2 = b.y + H;
      const low = Math.max(y1, y2) + 18;
      d = `M${x1},${y1} C${x1},${low} ${x2},${low} ${x2},${y2}`;
      lx = (x1 + x2) / 2; ly = low;
    }
    root.append(svg("path", {d, class: "edge" + (e.dashed ? " dashed" : ""),
                             "marker-end": "url(#arrow)",
                             "data-from": e.from, "data-to": e.to}));
    if (e.label)
      root.append(svg("text", {x: lx, y: ly, class: "edge-label",
                               "text-anchor": "middle", text: e.label}));
  }
  g.nodes.forEach((n, i) => {
    const s = byStep.get(n.name);
    const state = s ? s.state : "pending";
    const p = pos[i];
    const most = s ? Math.max(...s.runs.map((r) => r.attempts)) : 0;
    const sub = [n.kind, state, s && s.runs.length > 1 ? s.runs.length + " runs" : "",
                 most > 1 ? "×" + most : ""].filter(Boolean).join(" · ");
    root.append(svg("g", {class: "node st-" + state, "data-step": n.name,
                          "data-state": state,
                          transform: `translate(${p.x},${p.y})`},
      svg("title", {text: `${n.name}: ${state}` +
                          (s ? `, ${s.runs.length} run(s), ${s.attempts} attempt(s)` : "")}),
      svg("rect", {width: W, height: H, rx: 8}),
      svg("text", {x: W / 2, y: 19, "text-anchor": "middle", class: "name",
                   text: short(n.name, 20)}),
      svg("text", {x: W / 2, y: 36, "text-anchor": "middle", class: "sub",
                   text: sub})));
  });
  return root;
}

// One row per path, a bar per step run: its start, duration, attempts,
// and the waits inside it hatched.
function drawTimeline(info, live) {
  const runs = info.runs.filter((r) => !isNaN(r.start));
  const box = h("div", {class: "timeline", id: "timeline"});
  if (!runs.length) {
    box.append(h("p", {class: "muted", text: "no steps yet"}));
    return box;
  }
  const t0 = Math.min(...runs.map((r) => r.start));
  let t1 = info.lastTime;
  if (live) t1 = Math.max(t1, Date.now() * 1000);
  const span = Math.max(1, t1 - t0);
  const pct = (t) => ((t - t0) / span * 100).toFixed(3) + "%";
  const scale = h("div", {class: "tl-row tl-scale"}, h("div", {class: "tl-label"}),
                  h("div", {class: "tl-track"},
                    h("span", {style: "left:0", text: "0"}),
                    h("span", {style: "right:0", text: fmtDur(span / 1000)})));
  box.append(scale);
  for (const p of info.paths.values()) {
    if (!p.runs.length) continue;
    const track = h("div", {class: "tl-track"});
    for (const r of p.runs) {
      if (isNaN(r.start)) continue;
      const end = isNaN(r.end) ? t1 : r.end;
      const dur = (end - r.start) / 1000;
      const label = `${r.step}${r.iteration >= 0 ? "[" + r.iteration + "]" : ""}`;
      // A bar in the right part of the track has its label on its left.
      const right = (r.start - t0) / span > 0.6 ? " tl-right" : "";
      const bar = h("div", {
        class: "tl-bar st-" + r.state + right, "data-step": r.step,
        "data-path": r.path,
        "data-state": r.state, "data-attempts": r.attempts,
        style: `left:${pct(r.start)};width:max(3px, calc(${pct(end)} - ${pct(r.start)}))`,
        title: `${label} on ${r.path}: ${r.state}\nstart ${fmtTime(r.start / 1000)}` +
               `\nduration ${fmtDur(dur)}${isNaN(r.end) ? " (so far)" : ""}` +
               `\nattempts ${r.attempts} (retries ${Math.max(0, r.attempts - 1)})` +
               (r.waits.length ? `\nwaits ${r.waits.length}` : ""),
      }, h("span", {text: `${label} · ${fmtDur(dur)}` +
                          (r.attempts > 1 ? ` · ×${r.attempts}` : "")}));
      for (const w of r.waits) {
        const we = isNaN(w.end) ? end : w.end;
        const rel = (t) => ((t - r.start) / Math.max(1, end - r.start) * 100).toFixed(3) + "%";
        bar.append(h("i", {class: "tl-wait",
                           style: `left:${rel(w.start)};width:calc(${rel(we)} - ${rel(w.start)})`}));
      }
      track.append(bar);
    }
    box.append(h("div", {class: "tl-row", "data-path": p.id},
                 h("div", {class: "tl-label", text: p.id, title: p.id}), track));
  }
  return box;
}

// What changed from state `a` to state `b`: [{path, kind, from, to}].
function diff(a, b, path = "", out = []) {
  const obj = (x) => x !== null && typeof x === "object";
  if (obj(a) && obj(b) && Array.isArray(a) === Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) {
      const p = Array.isArray(b) ? `${path}[${k}]` : path ? `${path}.${k}` : k;
      if (!(k in a)) out.push({path: p, kind: "added", to: b[k]});
      else if (!(k in b)) out.push({path: p, kind: "removed", from: a[k]});
      else diff(a[k], b[k], p, out);
    }
  } else if (JSON.stringify(a) !== JSON.stringify(b)) {
    out.push({path: path || "(state)", kind: "changed", from: a, to: b});
  }
  return out;
}

// ------------------------------------------------------------ one execution

function execView(main, id) {
  const eid = encodeURIComponent(id);
  const st = {events: [], status: null, seq: null, follow: true, stopped: false,
              lineageFor: null};
  const head = h("section", {id: "exec-head"});
  const actions = h("div", {class: "actions", id: "actions"});
  const result = h("pre", {class: "result", id: "action-result", hidden: true});
  const graphBox = h("div", {class: "graph", id: "graph"});
  const graphNote = h("p", {class: "muted", id: "graph-note"});
  const tlBox = h("div", {id: "timeline-box"});
  const slider = h("input", {type: "range", id: "seq-slider", min: 1, max: 1,
                             value: 1, step: 1});
  const seqLabel = h("span", {id: "seq-label", class: "mono"});
  const stateBox = h("pre", {id: "state-json", class: "json"});
  const diffBox = h("ul", {id: "state-diff", class: "diff"});
  const lineage = h("ol", {id: "lineage", class: "lineage"});
  const evBody = h("tbody", {id: "event-rows"});
  const err = h("p", {class: "error", id: "exec-error"});

  const button = (label, fn, cls) => h("button", {onclick: fn, class: cls,
    "data-action": label.toLowerCase().replace(/[^a-z]+/g, "-").replace(/-$/, "")},
    label);
  actions.append(
    button("Pause", () => control("pause")),
    button("Unpause", () => control("unpause")),
    button("Terminate", () => control("terminate"), "danger"),
    button("Retry…", retry),
    button("Send event…", sendEvent));

  main.append(
    h("p", {}, h("a", {href: "#/", text: "← executions"})),
    err, head, actions, result,
    h("section", {}, h("h3", {}, "Workflow"), graphNote, graphBox),
    h("section", {}, h("h3", {}, "Timeline"), tlBox),
    h("section", {class: "replay"},
      h("h3", {}, "Replayed state"),
      h("div", {class: "toolbar"}, h("label", {for: "seq-slider", text: "sequence "}),
        slider, seqLabel,
        h("label", {class: "muted"},
          h("input", {type: "checkbox", id: "seq-follow", checked: true,
                      onchange: (ev) => {
                        st.follow = ev.target.checked;
                        if (st.follow) setSeq(st.events.length ? last().seq : 1);
                      }}), " follow the end")),
      h("div", {class: "cols"},
        h("div", {}, h("h4", {}, "What changed"), diffBox),
        h("div", {}, h("h4", {}, "State"), stateBox))),
    h("section", {}, h("h3", {}, "Lineage"), lineage),
    h("section", {}, h("h3", {}, "Events"),
      h("table", {class: "grid events"},
        h("thead", {}, h("tr", {},
          ["seq", "time", "type", "path", "step", "data"]
            .map((t) => h("th", {text: t})))),
        evBody)));

  const last = () => st.events[st.events.length - 1];

  function renderHead() {
    const s = st.status;
    const skip = new Set(["id", "status", "inputs", "outputs", "lineage",
                          "error", "paused", "resumed", "terminated"]);
    const kv = [], blocks = [];
    for (const [k, v] of Object.entries(s)) {
      if (skip.has(k) || v === null || v === undefined ||
          (typeof v === "object" && !Object.keys(v).length)) continue;
      if (typeof v === "object") {
        blocks.push([k.replace(/_/g, " "), v]);
        continue;
      }
      kv.push(h("dt", {text: k}),
              h("dd", {text: /(^|_)time$|_at$/.test(k) ? fmtTime(v) : short(v, 200)}));
    }
    const block = (title, v) => v === null || v === undefined ? null
      : h("details", {open: title === "error"}, h("summary", {text: title}),
          h("pre", {class: "json", text: JSON.stringify(v, null, 2)}));
    const lin = s.lineage && Object.keys(s.lineage).length ? s.lineage : null;
    head.replaceChildren(...[
      h("h2", {}, h("span", {class: "mono", text: s.id}), " ",
        statusBadge(s.status)),
      h("dl", {class: "kv"}, kv),
      controlsOf(s),
      block("error", s.error), block("inputs", s.inputs),
      block("outputs", s.outputs), block("lineage", lin),
      ...blocks.map(([k, v]) => block(k, v))].filter(Boolean));
    head.dataset.status = s.status;
    const terminal = TERMINAL.has(s.status);
    for (const b of actions.querySelectorAll("button")) {
      const a = b.dataset.action;
      b.disabled = (a === "pause" && (terminal || s.status === "paused")) ||
                   (a === "unpause" && s.status !== "paused") ||
                   ((a === "terminate" || a === "send-event") && terminal);
    }
  }

  // Who paused, unpaused or terminated it, when, at which step and why
  // (the status's paused, resumed and terminated); null if none did.
  function controlsOf(s) {
    const rows = [["paused", "Paused"], ["resumed", "Unpaused"],
                  ["terminated", "Terminated"]]
      .filter(([k]) => s[k])
      .map(([k, label]) => {
        const c = s[k];
        return h("li", {"data-kind": k},
          h("strong", {text: label}), " ",
          h("span", {class: "muted", text: fmtTime(c.at)}), " by ",
          h("span", {class: "by", text: c.by ?? "(not recorded)"}),
          c.step ? [" at step ", h("span", {class: "mono", text: c.step})] : null,
          c.reason !== null && c.reason !== undefined
            ? [": ", h("span", {class: "reason",
                                text: typeof c.reason === "string"
                                  ? c.reason : JSON.stringify(c.reason)})]
            : null,
          h("span", {class: "muted", text: ` (seq ${c.seq})`}));
      });
    return rows.length ? h("ul", {id: "controls", class: "controls"}, rows)
                       : null;
  }

  function renderSteps() {
    const upto = st.seq ?? Infinity;
    const info = stepRuns(st.events, upto);
    const g = graphOf(st.events, info);
    graphNote.textContent = `${g.nodes.length} steps from the ` +
      `${g.from}${g.name ? " of " + g.name : ""}` +
      (st.seq !== null && st.events.length && st.seq < last().seq
        ? `, as at sequence ${st.seq}` : "");
    graphBox.replaceChildren(drawGraph(g, info.byStep));
    tlBox.replaceChildren(drawTimeline(info, !TERMINAL.has(st.status.status) &&
                                             (st.seq === null || st.seq >= last().seq)));
  }

  function eventRow(e) {
    const tr = h("tr", {"data-seq": e.seq, class: "ev", onclick: () => {
      const open = tr.nextSibling && tr.nextSibling.classList &&
                   tr.nextSibling.classList.contains("ev-json");
      if (open) { tr.nextSibling.remove(); tr.classList.remove("open"); return; }
      tr.classList.add("open");
      tr.after(h("tr", {class: "ev-json"}, h("td", {colspan: 6},
        h("pre", {class: "json", text: JSON.stringify(e, null, 2)}))));
    }},
    h("td", {class: "num", text: e.seq}),
    h("td", {text: fmtTime(e.timestamp)}),
    h("td", {text: e.type}),
    h("td", {text: e.path_id || ""}),
    h("td", {text: e.step_name || ""}),
    h("td", {class: "mono", text: e.data === undefined ? "" : short(e.data, 90)}));
    return tr;
  }

  async function loadEvents() {
    let from = st.events.length ? last().seq + 1 : 0;
    const fresh = [];
    for (;;) {
      const doc = await get(`/v1/executions/${eid}/events?from=${from}&limit=1000`);
      fresh.push(...doc.events.map(normEvent));
      if (doc.next_from === null || doc.next_from === undefined ||
          !doc.events.length) break;
      from = doc.next_from;
    }
    if (!fresh.length) return false;
    st.events.push(...fresh);
    evBody.append(...fresh.map(eventRow));
    const first = st.events[0].seq, end = last().seq;
    slider.min = first;
    slider.max = end;
    if (st.follow || st.seq === null) setSeq(end);
    return true;
  }

  let stateReq = 0;
  async function showState(n) {
    const mine = ++stateReq;
    const at = async (k) => (await get(`/v1/executions/${eid}/state?at=${k}`)).state;
    try {
      const [now, before] = await Promise.all([
        at(n), n > Number(slider.min) ? at(n - 1) : Promise.resolve(null)]);
      if (mine !== stateReq) return;
      stateBox.textContent = JSON.stringify(now, null, 2);
      stateBox.dataset.seq = n;
      const changes = before === null ? [{path: "(state)", kind: "added", to: now}]
                                      : diff(before, now);
      diffBox.replaceChildren(...changes.map((c) => h("li", {class: c.kind},
        h("code", {text: c.path}), " ",
        c.kind === "changed" ? [h("del", {text: short(c.from, 60)}), " → ",
                                h("ins", {text: short(c.to, 60)})]
        : c.kind === "added" ? h("ins", {text: short(c.to, 100)})
        : h("del", {text: short(c.from, 100)}))));
      if (!changes.length) diffBox.append(h("li", {class: "muted", text: "no change"}));
      diffBox.dataset.seq = n;
    } catch (e) {
      if (mine === stateReq) stateBox.textContent = e.message;
    }
  }

  let stateTimer = null;
  function setSeq(n, fromSlider) {
    n = Number(n);
    st.seq = n;
    slider.value = n;
    const e = st.events.find((x) => x.seq === n);
    seqLabel.textContent = `${n} / ${slider.max}` + (e ? ` · ${e.type}` +
      (e.step_name ? " " + e.step_name : "") : "");
    for (const tr of evBody.querySelectorAll("tr.current")) tr.classList.remove("current");
    const row = evBody.querySelector(`tr[data-seq="${n}"]`);
    if (row) row.classList.add("current");
    if (st.status) renderSteps();
    clearTimeout(stateTimer);
    stateTimer = setTimeout(() => showState(n), fromSlider ? 120 : 0);
  }
  slider.addEventListener("input", () => {
    st.follow = Number(slider.value) >= Number(slider.max);
    $("#seq-follow").checked = st.follow;
    setSeq(slider.value, true);
  });

  async function loadLineage() {
    const key = st.status.status + "|" + st.events.length;
    if (st.lineageFor === key) return;
    st.lineageFor = key;
    const doc = await get(`/v1/executions/${eid}/lineage`);
    lineage.replaceChildren(...(doc.chain || []).map((c) => {
      const cid = typeof c === "string" ? c : c.id;
      const how = typeof c === "object"
        ? [c.status, c.link ? short(c.link, 80) : "",
           c.origin ? "origin " + short(c.origin, 80) : ""]
            .filter(Boolean).join(" · ") : "";
      return h("li", {class: cid === id ? "me" : "", "data-id": cid,
                      style: `margin-left:${1.5 * (c.depth || 0)}em`},
               cid === id ? h("b", {text: cid})
                          : h("a", {href: "#/e/" + encodeURIComponent(cid), text: cid}),
               how ? h("span", {class: "muted", text: " " + how}) : null);
    }));
  }

  async function refresh() {
    const s = await get(`/v1/executions/${eid}`);
    st.status = s;
    renderHead();
    const grew = await loadEvents();
    if (grew || !graphBox.firstChild) renderSteps();
    else if (!TERMINAL.has(s.status)) renderSteps(); // the running bars grow
    await loadLineage();
    err.textContent = "";
    $("#live").textContent = TERMINAL.has(s.status) ? "" : "live";
  }

  async function post(what, body) {
    result.hidden = false;
    result.className = "result";
    result.textContent = `${what}…`;
    try {
      const r = await api(`/v1/executions/${eid}/${what}`, {method: "POST", body});
      result.classList.add("ok");
      result.textContent = `${what}: HTTP ${r.status}\n` + JSON.stringify(r.doc, null, 2);
      result.dataset.outcome = "ok";
      const nid = r.doc && r.doc.id;
      if (nid && nid !== id) {
        result.append(h("br"), h("a", {href: "#/e/" + encodeURIComponent(nid),
                                       text: "open " + nid}));
      }
    } catch (e) {
      result.classList.add("bad");
      result.textContent = `${what}: ${e.status ? "HTTP " + e.status + ", " : ""}${e.message}`;
      result.dataset.outcome = "error";
    }
    st.lineageFor = null; // a retry adds to the chain
    await refresh().catch((e) => { err.textContent = e.message; });
  }

  async function control(what) {
    const v = await ask({
      title: `${what[0].toUpperCase() + what.slice(1)} ${id}?`,
      text: what === "terminate"
        ? "Terminating ends the execution for good; its live paths are cancelled."
        : what === "pause" ? "The execution stops taking new steps until unpaused."
        : "The execution goes on from where it was paused.",
      fields: [{name: "reason", label: "Reason", value: ""},
               {name: "by", label: "By (empty: the server names this browser's address)",
                value: localStorage.getItem(BY_KEY) || ""}],
      ok: what[0].toUpperCase() + what.slice(1),
    });
    if (!v) return;
    const body = {};
    if (v.reason) body.reason = v.reason;
    if (v.by) body.by = v.by;
    localStorage.setItem(BY_KEY, v.by || "");
    await post(what, body);
  }

  async function retry() {
    const strategies = ["from_failure", "from_start", "with_new_inputs",
                        "skip_failed", "from_seq"];
    const only = (...names) => (v) => names.includes(v.strategy);
    const v = await ask({
      title: `Retry ${id}`,
      text: "A retry makes a new execution linked to this one.",
      fields: [
        {name: "strategy", label: "Strategy", type: "select", options: strategies},
        {name: "inputs", label: "New inputs (JSON object)", type: "textarea",
         value: JSON.stringify(st.status.inputs ?? {}, null, 2),
         show: only("with_new_inputs")},
        {name: "from_step", label: "From step (optional)",
         show: only("with_new_inputs")},
        {name: "output", label: "Output of the failed step (JSON)",
         type: "textarea", value: "null", show: only("skip_failed")},
        {name: "from_seq", label: "From sequence", value: st.seq ?? "",
         show: only("from_seq")},
        {name: "new_id", label: "New id (optional)"},
      ],
      ok: "Retry",
      validate: (x) => {
        if (x.strategy === "with_new_inputs") {
          const p = parseJson(x.inputs, "the inputs");
          if (p.error) return p.error;
        }
        if (x.strategy === "skip_failed") {
          const p = parseJson(x.output, "the output");
          if (p.error) return p.error;
        }
        if (x.strategy === "from_seq" && !/^\d+$/.test(x.from_seq.trim()))
          return "the sequence is a number";
        return null;
      },
    });
    if (!v) return;
    const body = {strategy: v.strategy};
    if (v.strategy === "with_new_inputs") {
      body.inputs = parseJson(v.inputs).value ?? {};
      if (v.from_step.trim()) body.from_step = v.from_step.trim();
    }
    if (v.strategy === "skip_failed") body.output = parseJson(v.output).value ?? null;
    if (v.strategy === "from_seq") body.from_seq = Number(v.from_seq);
    if (v.new_id.trim()) body.new_id = v.new_id.trim();
    await post("retry", body);
  }

  // The event the execution's last unfinished wait is for, if any.
  function awaited() {
    const open = new Map();
    for (const e of st.events) {
      const k = (e.path_id || "main") + "|" + e.step_name;
      if (e.type === "wait_started") open.set(k, e.data && e.data.signal);
      if (e.type === "wait_ended") open.delete(k);
    }
    return [...open.values()].filter(Boolean).pop() || "";
  }

  async function sendEvent() {
    const v = await ask({
      title: `Send an event to ${id}`,
      fields: [{name: "type", label: "Event type", value: awaited(),
                hint: "the event a wait is for is filled in"},
               {name: "payload", label: "Payload (JSON)", type: "textarea",
                value: "{}"}],
      ok: "Send",
      validate: (x) => !x.type.trim() ? "an event needs a type"
                                      : parseJson(x.payload, "the payload").error,
    });
    if (!v) return;
    const body = {type: v.type.trim()};
    const p = parseJson(v.payload).value;
    if (p !== undefined) body.payload = p;
    await post("signal", body);
  }

  const stop = poller(async () => {
    try {
      await refresh();
    } catch (e) {
      err.textContent = e.message;
    }
  }, POLL_MS);
  return {stop() { stop(); clearTimeout(stateTimer); }};
}

window.addEventListener("hashchange", route);
route();
