// cutover dashboard: rebuilds the view of an upgrade from its stored events,
// then applies each new event from /api/stream (Server-Sent Events) without
// reloading the page. No framework, no build step.
"use strict";

const P = "dev.cutover.";
const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};
const short = (t) => t.replace(P, "");
const clock = (iso) => (iso || "").replace("T", " ").replace(/\.\d+Z$|Z$/, "");

function setLive(text, ok) {
  const l = $("live");
  l.textContent = text;
  l.className = "live " + (ok ? "on" : "off");
}

// ---- the upgrade page -------------------------------------------------

function emptyState() {
  return { seen: new Set(), records: [], release: "", state: "unknown", waves: [], waveState: {},
    containers: new Map(), migrations: [], verdicts: [], rollback: null };
}

const lifecycle = {
  "upgrade.requested": "requested", "upgrade.planned": "planned", "upgrade.started": "running",
  "upgrade.wave.started": "running", "upgrade.wave.completed": "running", "upgrade.completed": "completed",
  "upgrade.failed": "failed", "upgrade.paused": "paused", "upgrade.aborted": "aborted",
};

function container(s, node, name) {
  const k = node + "/" + name;
  if (!s.containers.has(k)) s.containers.set(k, { node, name, service: "", from: "", to: "", state: "planned", note: "" });
  return s.containers.get(k);
}

// apply folds one stored record into the state.
function apply(s, r) {
  if (s.seen.has(r.id)) return false;
  s.seen.add(r.id);
  s.records.push(r);
  const t = short(r.type), d = (r.event && r.event.data) || {}, node = r.nodeid || "";
  if (lifecycle[t]) s.state = lifecycle[t];
  switch (t) {
    case "upgrade.requested": s.release = (d.release && d.release.name) || s.release; break;
    case "upgrade.planned":
      s.release = d.release || s.release;
      s.waves = (d.waves || []).map((w) => ({ index: w.index, nodes: w.nodes || [] }));
      for (const c of d.changes || []) Object.assign(container(s, c.node, c.container), { service: c.service, from: c.from_image, to: c.to_image });
      break;
    case "upgrade.wave.started": s.waveState[d.wave] = "running"; break;
    case "upgrade.wave.completed": s.waveState[d.wave] = "completed"; break;
    case "node.update.requested":
      for (const c of d.containers || []) {
        const k = container(s, node, c.container);
        if (d.rollback) { k.state = "rolling-back"; k.note = "back to " + c.image; }
      }
      break;
    case "container.pull.retrying":
      container(s, node, d.container).note = `pull attempt ${d.attempt} of ${d.attempts} failed (${d.error}); retrying in ${d.retry_in_ms} ms`;
      break;
    case "container.pulled": {
      const k = container(s, node, d.container);
      k.state = "pulled";
      if (k.note.startsWith("pull attempt")) k.note = "";
      break;
    }
    case "container.draining": container(s, node, d.container).state = "draining"; break;
    case "container.replaced": {
      const k = container(s, node, d.container);
      if (k.state !== "rolling-back") { k.state = d.result; k.note = d.interruption_ms ? d.interruption_ms + " ms interruption" : ""; }
      break;
    }
    case "container.reverted": Object.assign(container(s, node, d.container), { state: "reverted", note: d.step + ": " + d.reason }); break;
    case "node.update.completed":
    case "node.update.failed":
      for (const res of d.results || []) {
        const k = container(s, node, res.container);
        if (d.rollback) k.state = res.result === "reverted" ? "reverted" : "rolled-back";
        else if (res.result) k.state = res.result;
      }
      break;
    case "migration.requested": case "migration.started": case "migration.completed": case "migration.failed":
    case "migration.rollback.requested": case "migration.rollback.completed":
      s.migrations.push({ type: t, d });
      break;
    case "health.verdict": s.verdicts.push(d); break;
    case "rollback.requested": s.rollback = { reason: d.reason, by: d.requested_by || "", result: "" }; s.state = "rolling-back"; break;
    case "rollback.completed":
      s.rollback = Object.assign(s.rollback || { reason: d.reason, by: "planner" }, { result: d.result });
      s.state = d.result === "failed" ? "rollback-failed" : "rolled-back";
      for (const w in s.waveState) if (s.waveState[w] === "running") s.waveState[w] = "stopped";
      break;
  }
  return true;
}

function migrationText(m) {
  const d = m.d;
  switch (m.type) {
    case "migration.started": return `started on ${d.database} from version ${d.from_version}, snapshot ${d.snapshot_id}`;
    case "migration.completed": return `completed on ${d.database}: ${d.from_version} → ${d.to_version} in ${d.duration_ms} ms`;
    case "migration.failed": return `failed on ${d.database}: ${d.error}; ${d.state}`;
    case "migration.rollback.completed": return `rolled back on ${d.database} by ${d.path}: ${d.from_version} → ${d.to_version}`;
    default: return `${short(m.type)} ${d.database || ""}`;
  }
}

function detail(r) {
  const d = (r.event && r.event.data) || {};
  return d.reason || d.error || d.verdict && `${d.service}: ${d.verdict}` || d.container && `${d.container} ${d.result || ""}` ||
    (d.wave !== undefined ? "wave " + d.wave : "") || (d.release && (d.release.name || d.release)) || "";
}

function render(s) {
  const st = $("state");
  st.textContent = s.state;
  st.className = "state s-" + s.state.replace(/ /g, "-");
  $("release").textContent = s.release;

  const rb = $("rollback");
  rb.hidden = !s.rollback;
  if (s.rollback) rb.textContent = `Rollback ${s.rollback.result || "in progress"}` + (s.rollback.by ? ` (asked by ${s.rollback.by})` : "") + `: ${s.rollback.reason}`;

  const waves = $("waves");
  waves.replaceChildren();
  for (const w of s.waves) waves.append(el("li", "wave w-" + (s.waveState[w.index] || "pending"), `wave ${w.index}: ${w.nodes.join(", ")} — ${s.waveState[w.index] || "pending"}`));
  if (!s.waves.length) waves.append(el("li", "empty", "no plan yet"));

  const nodes = $("nodes");
  nodes.replaceChildren();
  const byNode = new Map();
  for (const c of s.containers.values()) {
    if (!byNode.has(c.node)) byNode.set(c.node, []);
    byNode.get(c.node).push(c);
  }
  for (const [node, cs] of [...byNode].sort()) {
    const box = el("div", "node");
    box.append(el("h4", "", node || "(no node)"));
    for (const c of cs) {
      const row = el("div", "c c-" + c.state);
      row.dataset.container = c.name;
      row.append(el("b", "", c.name), el("span", "svc", c.service), el("span", "img", c.from && c.to ? `${c.from} → ${c.to}` : ""),
        el("span", "st", c.state.replace("-", " ")), el("span", "note", c.note));
      box.append(row);
    }
    nodes.append(box);
  }
  if (!byNode.size) nodes.append(el("p", "empty", "no container planned yet"));

  const mig = $("migrations");
  mig.replaceChildren(...(s.migrations.length ? s.migrations.map((m) => el("li", "", migrationText(m))) : [el("li", "empty", "none")]));

  const health = $("health");
  health.replaceChildren(...(s.verdicts.length ? s.verdicts.map((v) => {
    const li = el("li", "v v-" + v.verdict, `${v.service} (${v.wave < 0 ? "after the upgrade" : "wave " + v.wave}): ${v.verdict}`);
    li.title = (v.evidence || []).join("\n");
    li.append(el("small", "", " — " + ((v.evidence || [])[0] || "")));
    return li;
  }) : [el("li", "empty", "no verdict yet")]));

  const tl = $("timeline").tBodies[0];
  tl.replaceChildren();
  const recs = [...s.records].sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.id < b.id ? -1 : 1));
  for (const r of recs) {
    const tr = el("tr", "t-" + short(r.type).replace(/\./g, "-"));
    tr.append(el("td", "", clock(r.time)), el("td", "", short(r.type)), el("td", "", r.nodeid || ""), el("td", "", detail(r)));
    tl.append(tr);
  }
}

function upgradePage(id) {
  let s = emptyState();
  let loading = null;
  let pending = [];
  const load = () => {
    // Events that arrive while the history loads are applied after it;
    // apply ignores the ones the history already had.
    pending = [];
    loading = fetch("/api/upgrades/" + encodeURIComponent(id)).then((r) => (r.ok ? r.json() : { events: [] })).then((body) => {
      s = emptyState();
      for (const r of body.events || []) apply(s, r);
      for (const r of pending) apply(s, r);
      loading = null;
      render(s);
    });
  };
  const es = new EventSource("/api/stream?upgrade=" + encodeURIComponent(id));
  es.onopen = () => { setLive("live", true); load(); };
  es.onerror = () => setLive("reconnecting…", false);
  es.addEventListener("record", (m) => {
    const r = JSON.parse(m.data);
    if (loading) pending.push(r);
    else if (apply(s, r)) render(s);
  });
  es.addEventListener("dropped", () => setLive("fell behind; reloading…", false));
}

// ---- the list page ----------------------------------------------------

function listPage() {
  let timer = null;
  const refresh = () => fetch("/api/upgrades").then((r) => r.json()).then((list) => {
    const tb = $("upgrades").tBodies[0];
    tb.replaceChildren();
    for (const u of list) {
      const tr = el("tr");
      const a = el("a", "", u.id);
      a.href = "/upgrades/" + encodeURIComponent(u.id);
      const td = el("td");
      td.append(a);
      const state = el("td");
      state.append(el("span", "state s-" + u.state.replace(/ /g, "-"), u.state));
      tr.append(td, el("td", "", u.release), state, el("td", "", clock(u.first_time)), el("td", "", clock(u.last_time)), el("td", "", String(u.events)));
      tb.append(tr);
    }
  });
  const es = new EventSource("/api/stream");
  es.onopen = () => { setLive("live", true); refresh(); };
  es.onerror = () => setLive("reconnecting…", false);
  es.addEventListener("record", (m) => {
    if (!JSON.parse(m.data).upgradeid) return;
    clearTimeout(timer);
    timer = setTimeout(refresh, 300); // coalesce bursts
  });
}

if (document.body.dataset.page === "upgrade") upgradePage(document.body.dataset.upgrade);
else listPage();
