// procsight's triage page: plain DOM, no framework, no network beyond this receiver's /api routes.
// Event text is attacker-controlled: it only ever reaches the page as text nodes (never innerHTML).
"use strict";

const ROW_HEIGHT = 30;
const REFRESH_MS = 5000;
const MAX_ROWS = 10000;
const state = { rows: [], token: sessionStorage.getItem("procsight.token") || "", timer: null, updated: 0 };

// -- helpers ------------------------------------------------------------------------------------------

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "on") for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function $(selector) { return document.querySelector(selector); }

function say(text, isError) {
  const message = $("#message");
  message.textContent = text;
  message.className = isError ? "error" : "";
  message.hidden = !text;
}

class Unauthorized extends Error {}

async function api(path, body) {
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const init = { headers };
  if (body !== undefined) {
    init.method = "POST";
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(`../${path}`, init);
  if (response.status === 401) {
    $("#token-form").hidden = false;
    throw new Unauthorized("this receiver needs a bearer token");
  }
  const answer = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
  return answer;
}

function severityBadge(severity) {
  return el("span", { class: `sev ${severity || "none"}` }, severity || "none");
}

function where(item) {
  // A workload that is only its host's name (no workload attribute sent) is said once.
  if (!item.workload || item.workload === item.host) return item.host ? `host ${item.host}` : item.workload || "";
  return item.host ? `${item.workload} on ${item.host}` : item.workload;
}

function ago(iso) {
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

function techniqueChip(technique) {
  if (!technique) return null;
  return el("span", { class: "chip", title: (technique.tactics || []).join(", ") }, `${technique.id} ${technique.name}`);
}

function handle(error) {
  if (!(error instanceof Unauthorized)) say(error.message, true);
  else say("Enter the receiver's bearer token to see its data.", true);
}

// -- routing ------------------------------------------------------------------------------------------

function route() {
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  const [view, ...rest] = (path || "anomalies").split("/");
  const params = new URLSearchParams(query || "");
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${view}`;
  for (const link of document.querySelectorAll("header nav a")) link.classList.toggle("active", link.dataset.view === view);
  say("");
  if (view === "anomalies") loadAnomalies();
  else if (view === "search") showSearch(params.get("q") || "");
  else if (view === "baselines") loadBaselines();
  else if (view === "event") loadEvent(decodeURIComponent(rest.join("/")));
  else location.hash = "#/anomalies";
}

// -- anomalies ----------------------------------------------------------------------------------------

function filterParams() {
  const range = Number($("#f-range").value);
  const params = new URLSearchParams({
    since: String(Date.now() / 1000 - range), severity: $("#f-severity").value,
  });
  if ($("#f-workload").value) params.set("workload", $("#f-workload").value);
  if ($("#f-host").value) params.set("host", $("#f-host").value);
  return { params, range };
}

async function loadAnomalies() {
  if ($("#view-anomalies").hidden) return;
  const { params, range } = filterParams();
  const list = new URLSearchParams(params);
  list.set("limit", String(MAX_ROWS));
  list.set("group", $("#f-group").value);
  const chart = new URLSearchParams(params);
  chart.set("step", String(niceStep(range / 60)));
  try {
    const [anomalies, volume, facets] = await Promise.all([
      api(`api/anomalies?${list}`), api(`api/volume?${chart}`), api(`api/facets?since=${params.get("since")}`),
    ]);
    state.rows = anomalies.results;
    state.updated = Date.now();
    fillFacets(facets);
    drawTable();
    drawChart(volume, range);
    $("#anomaly-count").textContent = `${state.rows.length} ${state.rows.length === 1 ? "line" : "lines"}` +
      (state.rows.length >= MAX_ROWS ? ` (the first ${MAX_ROWS}; narrow the filters)` : "");
  } catch (error) { handle(error); }
  showLive();
}

function niceStep(seconds) {
  const steps = [10, 30, 60, 300, 600, 1800, 3600, 10800, 21600, 86400];
  return steps.find((step) => step >= seconds) || 86400;
}

function fillFacets(facets) {
  for (const [id, values] of [["#f-workload", facets.workloads], ["#f-host", facets.hosts]]) {
    const select = $(id);
    const chosen = select.value;
    const known = new Set([...select.options].map((option) => option.value));
    for (const value of values) if (!known.has(value)) select.append(el("option", { value }, value));
    select.value = chosen;
  }
}

function drawTable() {
  const table = $("#anomaly-table");
  table.querySelector(".spacer").style.height = `${state.rows.length * ROW_HEIGHT}px`;
  renderVisibleRows();
}

// Only the rows in view exist in the DOM, so ten thousand lines scroll as fast as ten.
function renderVisibleRows() {
  const table = $("#anomaly-table");
  const first = Math.max(0, Math.floor(table.scrollTop / ROW_HEIGHT) - 5);
  const last = Math.min(state.rows.length, first + Math.ceil(table.clientHeight / ROW_HEIGHT) + 10);
  for (const row of table.querySelectorAll(".row")) row.remove();
  for (let index = first; index < last; index += 1) {
    const item = state.rows[index];
    // The evidence (reasons naming an ATT&CK technique) says more than novelty: show it first.
    const reason = (item.reasons || []).find((text) => /\[T\d{4}/.test(text)) || (item.reasons || [])[0];
    const count = item.kind === "incident" ? `incident · ${item.events}` : item.events > 1 ? `× ${item.events}` : "";
    const row = el("div", {
      class: "row", "data-record-id": item.record_id, "data-kind": item.kind, title: (item.reasons || []).join("\n"),
      on: { click: () => { location.hash = `#/event/${encodeURIComponent(item.record_id)}`; } },
    },
    el("span", { class: "c-score" }, (item.rank ?? item.score).toFixed(2)),
    el("span", { class: "c-sev" }, severityBadge(item.severity)),
    el("span", { class: "c-where" }, where(item)),
    el("span", { class: "c-what" }, item.command_line, reason ? el("span", { class: "muted" }, `  — ${reason}`) : null),
    el("span", { class: "c-count" }, count),
    el("span", { class: "c-time", title: item.last || item.time }, ago(item.last || item.time)));
    row.style.top = `${index * ROW_HEIGHT}px`;
    table.append(row);
  }
}

function drawChart(volume, range) {
  const figure = $("#chart");
  const width = Math.max(300, figure.clientWidth || 800);
  const height = 120;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const shown = $("#f-severity").value.split(",");
  const layers = ["alert", "warn", "none"].filter((severity) => shown.includes(severity));
  const end = Date.now() / 1000;
  const start = end - range;
  const step = volume.step;
  const buckets = volume.buckets.filter((bucket) => bucket.time + step >= start);
  const top = Math.max(1, ...buckets.map((bucket) => layers.reduce((sum, layer) => sum + bucket[layer], 0)));
  const plot = height - 18;
  const barWidth = Math.max(1, (width * step) / range - 1);
  const svgEl = (tag, attributes, text) => {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  };
  for (const bucket of buckets) {
    const x = ((bucket.time - start) / range) * width;
    let y = plot;
    for (const layer of layers) {
      const barHeight = (bucket[layer] / top) * (plot - 14);
      if (barHeight <= 0) continue;
      y -= barHeight;
      const bar = svgEl("rect", { class: layer, x: x.toFixed(1), y: y.toFixed(1), width: barWidth.toFixed(1),
        height: barHeight.toFixed(1) });
      bar.append(svgEl("title", {}, `${new Date(bucket.time * 1000).toLocaleString()}: ` +
        `${bucket.alert} alert, ${bucket.warn} warn, ${bucket.none} none`));
      svg.append(bar);
    }
  }
  if (!buckets.length) svg.append(svgEl("text", { class: "empty", x: 10, y: plot / 2 }, "no events in this range"));
  svg.append(svgEl("text", { x: 4, y: 11 }, `${top} per ${step >= 3600 ? `${step / 3600} h` : step >= 60 ? `${step / 60} min` : `${step} s`}`));
  svg.append(svgEl("text", { x: 4, y: height - 3 }, new Date(start * 1000).toLocaleString()));
  svg.append(svgEl("text", { x: width - 4, y: height - 3, "text-anchor": "end" }, "now"));
  figure.replaceChildren(svg);
}

function showLive() {
  const live = $("#f-live").checked;
  $("#live").textContent = live ? `live · updated ${new Date(state.updated || Date.now()).toLocaleTimeString()}` : "paused";
}

// -- one event ----------------------------------------------------------------------------------------

async function loadEvent(recordId) {
  const target = $("#event");
  target.replaceChildren(el("p", { class: "muted" }, "loading…"));
  let answer;
  try {
    answer = await api(`api/event?record_id=${encodeURIComponent(recordId)}`);
  } catch (error) { handle(error); target.replaceChildren(); return; }
  const event = answer.event;
  const incident = answer.incident;
  target.replaceChildren(
    el("h2", {}, event.command_line),
    el("p", {}, severityBadge(event.severity), ` score ${event.score.toFixed(2)}`,
      incident ? ` · incident ${incident.id} of ${incident.events} events, score ${incident.score.toFixed(2)}` : "",
      ` · ${where(event)} · ${event.user || "unknown user"} · ${new Date(event.time).toLocaleString()}`),
    el("p", {},
      el("button", { id: "acknowledge", type: "button", on: { click: () => acknowledge(event) } }, "This is normal (acknowledge)"),
      el("span", { class: "muted" }, " learns this pattern into the workload's baseline now: it stops alerting")),
    section("Process tree", "event-tree", drawTree(answer.chain, answer.context, event.record_id)),
    section("Why", "event-reasons", el("ul", { class: "reasons" }, event.reasons_explained.map((reason) =>
      el("li", {}, reason.text, " ", techniqueChip(reason.technique)))),
      incident && incident.techniques.length ? el("p", {}, "ATT&CK across the incident: ",
        incident.techniques.map((id) => el("span", { class: "chip" }, id))) : null),
    section("Nearest normal pattern", "event-nearest", answer.nearest
      ? el("p", {}, el("code", {}, answer.nearest.command_line), ` seen ${answer.nearest.seen} times in stored events`)
      : el("p", { class: "muted" }, "none: nothing like it was known on this workload")),
    section("Raw attributes", "event-raw", rawTable(event.raw)),
    section("The same rows in ClickHouse SQL", "event-sql", el("pre", { class: "sql" }, answer.sql),
      answer.sql_url ? el("a", { href: answer.sql_url, target: "_blank", rel: "noopener" }, "run on the ClickHouse server")
        : el("p", { class: "muted" }, "ClickHouse is embedded in the receiver (chdb): run it with clickhouse local on a copy, or point the exporter at a server.")),
  );
}

function section(title, id, ...content) {
  return el("section", { id }, el("h3", {}, title), ...content);
}

function drawTree(roots, context, currentId) {
  const node = (item) => el("li", {},
    el("span", { class: `node${item.record_id === currentId ? " current" : ""}`, "data-record-id": item.record_id },
      item.command_line || item.executable || "?"),
    " ", item.severity !== "none" ? severityBadge(item.severity) : null,
    el("span", { class: "muted" }, ` ${item.score.toFixed(2)} · pid ${item.pid ?? "?"} · ${item.user || ""}`),
    item.children.length ? el("ul", {}, item.children.map(node)) : null);
  let tree = el("ul", {}, roots.map(node));
  for (const name of context || []) tree = el("ul", {}, el("li", {}, el("span", { class: "context" }, name), tree));
  tree.className = "tree";
  return tree;
}

function rawTable(raw) {
  const rows = [["body", raw.body], ["severity", `${raw.severity_text} (${raw.severity_number})`], ["scope", raw.scope]];
  for (const [key, value] of Object.entries(raw.resource)) rows.push([`resource ${key}`, value]);
  for (const [key, value] of Object.entries(raw.attributes)) rows.push([key, value]);
  return el("table", { class: "raw" }, el("tbody", {}, rows.map(([key, value]) => el("tr", {}, el("td", {}, key), el("td", {}, value)))));
}

async function acknowledge(event) {
  const button = $("#acknowledge");
  button.disabled = true;
  try {
    const answer = await api("api/acknowledge", { record_id: event.record_id });
    say(`Learned as normal on ${answer.workload}: ${answer.command_line}. Its next runs are scored against it.`);
  } catch (error) { handle(error); button.disabled = false; }
}

// -- search -------------------------------------------------------------------------------------------

async function showSearch(query) {
  $("#search-input").value = query;
  const list = $("#search-results");
  if (!query) { list.replaceChildren(); return; }
  list.replaceChildren(el("li", { class: "muted" }, "searching…"));
  try {
    const answer = await api("telemetry/security/search", { query, limit: 50 });
    list.replaceChildren(...answer.results.map((item) => el("li", {
      "data-record-id": item.record_id,
      on: { click: () => { location.hash = `#/event/${encodeURIComponent(item.record_id)}`; } },
    },
    el("div", {}, severityBadge(item.severity), ` ${item.score.toFixed(2)} · ${where(item)} · match ${item.relevance.toFixed(2)}`,
      item.occurrences > 1 ? ` · seen ${item.occurrences} times` : ""),
    el("div", {}, el("code", {}, item.command_line)),
    item.reasons.length ? el("div", { class: "why" }, item.reasons.join("; ")) : null,
    el("div", {}, item.matched.techniques.map(techniqueChip),
      item.matched.words.length ? el("span", { class: "badge" }, `words: ${item.matched.words.join(", ")}`) : null))));
    if (!answer.results.length) list.replaceChildren(el("li", { class: "muted" }, "nothing matches"));
    const cut = answer.incomplete;
    if (cut) list.append(el("li", { class: "muted" }, `ranked ${cut.ranked} patterns; ${cut.left_out} new ones left out`
      + (cut.unembedded ? `, ${cut.unembedded} without similarity` : "") + ": search again to rank more"));
  } catch (error) { handle(error); list.replaceChildren(); }
}

// -- baselines ----------------------------------------------------------------------------------------

async function loadBaselines() {
  const body = $("#baselines tbody");
  try {
    const answer = await api("api/baselines");
    const now = Date.now() / 1000;
    body.replaceChildren(...answer.baselines.map((baseline) => el("tr", { "data-workload": baseline.workload },
      el("td", {}, baseline.workload),
      el("td", { class: `state-${baseline.state}` }, baseline.state === "learning"
        ? `learning (warm-up ${baseline.events_learned}/${baseline.warmup_events})` : "detecting"),
      el("td", {}, `${baseline.patterns} (${baseline.trusted_patterns} trusted)`),
      el("td", {}, baseline.events_learned),
      el("td", {}, baseline.oldest_pattern ? ago(new Date(baseline.oldest_pattern * 1000).toISOString()).replace(" ago", "") : "—"),
      el("td", {}, `${baseline.thresholds.warn} / ${baseline.thresholds.alert}`),
      el("td", {}, baseline.held_back_total === 0 ? "none" : el("details", {},
        el("summary", {}, `${baseline.held_back_total} pattern${baseline.held_back_total === 1 ? "" : "s"} ` +
          `(learned after ${baseline.recurrence_windows} distinct time windows, or when acknowledged)`),
        el("ul", {}, baseline.held_back.map((pattern) => el("li", {}, pattern.command_line,
          el("span", { class: "muted" }, ` · seen ${pattern.occurrences}× in ${pattern.windows_seen}/${baseline.recurrence_windows} windows · first ${ago(new Date(pattern.first_seen * 1000).toISOString())}`)))))))));
    if (!answer.baselines.length) body.replaceChildren(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "no baseline in use yet: they appear with the first events")));
  } catch (error) { handle(error); }
}

// -- wiring -------------------------------------------------------------------------------------------

function start() {
  $("#anomaly-table").addEventListener("scroll", () => requestAnimationFrame(renderVisibleRows));
  $("#filters").addEventListener("change", () => { $("#anomaly-table").scrollTop = 0; loadAnomalies(); });
  $("#search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = `#/search?q=${encodeURIComponent($("#search-input").value.trim())}`;
  });
  $("#token-button").addEventListener("click", () => { $("#token-form").hidden = !$("#token-form").hidden; });
  $("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("#token-input").value.trim();
    sessionStorage.setItem("procsight.token", state.token);
    $("#token-form").hidden = true;
    route();
  });
  window.addEventListener("hashchange", route);
  window.addEventListener("resize", () => { if (!$("#view-anomalies").hidden) loadAnomalies(); });
  state.timer = setInterval(() => { if ($("#f-live").checked && !document.hidden) loadAnomalies(); }, REFRESH_MS);
  route();
}

start();
