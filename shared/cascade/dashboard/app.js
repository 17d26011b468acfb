/* Cascade dashboard: one page over the public API, no build step and nothing from a CDN.

   Views (the location's hash is the route, so a view can be bookmarked):
     #/scenarios/<id>   totals, the funnel per step, the channel comparison, the forecast beside the
                        actual results, the CSV export, and the scenario's live and recent cascades
     #/cascades/<id>    a cascade's timeline: every step with its status, reason and times
     #/recipients/<id>  the customer card: every touch across cascades, and the channel they react on

   The API key is asked for once and kept in localStorage; a 401 asks again. Every element is built
   with textContent (never HTML from data), charts are inline SVG, and every number shown carries a
   stable data-testid so the end-to-end test can read it. */
(() => {
  "use strict";

  const KEY_STORE = "cascade.apiKey";
  // The API's root: "" when the page is /dashboard, "/stage" behind a named stage.
  const BASE = location.pathname.replace(/\/dashboard\/?$/, "");
  const RANGE_DAYS = 30;
  const LIVE_REFRESH_MS = 5000;
  const CASCADE_REFRESH_MS = 3000;
  const COUNTERS = ["sent", "delivered", "read", "clicked", "replied", "confirmed", "failed", "skipped",
    "suppressed", "successes"];
  // The funnel: how far the messages of a step got, then the cascades that step won.
  const FUNNEL = [
    ["sent", "sent", (r) => r.sent],
    ["delivered", "delivered", (r) => r.delivered],
    ["read", "read", (r) => r.read],
    ["clicked", "clicked", (r) => r.clicked],
    // Each reaction is its own stage (a pressed 1 is no reply, a reply no click): not summed.
    ["replied", "replied", (r) => r.replied],
    ["confirmed", "confirmed", (r) => r.confirmed],
    ["successes", "successes", (r) => r.successes],
  ];

  const state = {
    key: localStorage.getItem(KEY_STORE) || "", currency: null, timer: null, scenarios: [], listed: Promise.resolve(),
  };
  const $ = (id) => document.getElementById(id);

  // ---- DOM and SVG builders ----------------------------------------------------------------

  function setAttrs(el, attrs) {
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "testid") el.setAttribute("data-testid", value);
      else if (name === "text") el.textContent = String(value);
      else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
      else el.setAttribute(name, value === true ? "" : String(value));
    }
  }

  function append(el, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    return append(el, children);
  }

  function svg(tag, attrs, ...children) {
    const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
    setAttrs(el, attrs);
    return append(el, children);
  }

  const slug = (text) => String(text).replace(/[^A-Za-z0-9]+/g, "-").replace(/^-|-$/g, "").toLowerCase();

  // ---- formatting (the end-to-end test mirrors these rules) --------------------------------

  const DASH = "—";
  const fmt = {
    int: (v) => (v === null || v === undefined ? DASH : Math.round(v).toLocaleString("en-US")),
    num: (v, digits = 1) => (v === null || v === undefined ? DASH
      : Number(v).toLocaleString("en-US", { maximumFractionDigits: digits })),
    pct: (v) => (v === null || v === undefined ? DASH : (v * 100).toFixed(1) + "%"),
    // An expected count (926.8 successes) as a whole number, "≈" when it was rounded.
    count(v) {
      if (v === null || v === undefined) return DASH;
      const whole = Math.round(v);
      if (Math.abs(v - whole) < 1e-6) return whole.toLocaleString("en-US");
      return v > 0 && v < 0.5 ? "<1" : "≈" + whole.toLocaleString("en-US");
    },
    // Money with the currency's own digits (cents for USD, none for JPY; 2 for a code Intl does
    // not know); an amount under half the minor unit (an email's $0.0001) shows as "<$0.01".
    money(v, currency) {
      if (v === null || v === undefined) return DASH;
      const code = currency || state.currency;
      let digits = 2;
      let format = (x) => Number(x).toLocaleString("en-US", { minimumFractionDigits: digits,
        maximumFractionDigits: digits }) + (code ? " " + code : "");
      if (code) {
        try {
          const currencyFormat = new Intl.NumberFormat("en-US", { style: "currency", currency: code });
          digits = currencyFormat.resolvedOptions().maximumFractionDigits;
          format = (x) => currencyFormat.format(x);
        } catch (_) { /* not an ISO 4217 code: show it after the number */ }
      }
      const unit = 10 ** -digits;
      return v > 0 && v < unit / 2 ? "<" + format(unit) : format(v);
    },
    duration(seconds) {
      if (seconds === null || seconds === undefined) return DASH;
      const s = Math.round(seconds);
      if (s < 60) return `${s}s`;
      if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
      if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
      return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
    },
    time(iso) {
      if (!iso) return DASH;
      const at = new Date(iso);
      return Number.isNaN(at.getTime()) ? String(iso) : at.toISOString().slice(0, 19).replace("T", " ") + " UTC";
    },
    text: (v) => (v === null || v === undefined || v === "" ? DASH : String(v)),
  };

  // ---- the API -------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function describe(body) {
    if (!body || typeof body !== "object") return "";
    const details = (body.details || []).map((d) => `${d.field}: ${d.message}`).join("; ");
    return [body.error || body.message, details].filter(Boolean).join(" — ");
  }

  async function call(path, { method = "GET", body, accept = "application/json" } = {}) {
    if (!state.key) {
      askKey();
      throw new ApiError(401, "no API key yet");
    }
    const headers = { Authorization: `Bearer ${state.key}`, Accept: accept };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const resp = await fetch(BASE + path, {
      method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (resp.status === 401) {
      forgetKey();
      askKey("The API refused this key. Enter it again.");
      throw new ApiError(401, "the API refused the key");
    }
    if (!resp.ok) {
      let message = `${resp.status} ${resp.statusText}`;
      try {
        message = `${resp.status}: ${describe(await resp.json()) || resp.statusText}`;
      } catch (_) { /* not JSON */ }
      throw new ApiError(resp.status, message);
    }
    return accept === "application/json" ? resp.json() : resp.text();
  }

  const enc = encodeURIComponent;

  function range() {
    return { from: $("range-from").value, to: $("range-to").value };
  }

  function reportPath(id, extra = "") {
    const { from, to } = range();
    return `/v1/reports/scenarios/${enc(id)}?from=${enc(from)}&to=${enc(to)}${extra}`;
  }

  // ---- the key -------------------------------------------------------------------------------

  function askKey(error) {
    $("key-panel").hidden = false;
    $("key-input").value = state.key;
    $("key-error").hidden = !error;
    $("key-error").textContent = error || "";
    $("key-cancel").hidden = !state.key;
    $("key-input").focus();
  }

  function forgetKey() {
    state.key = "";
    localStorage.removeItem(KEY_STORE);
  }

  function setupKey() {
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const key = $("key-input").value.trim();
      if (!key) return;
      state.key = key;
      localStorage.setItem(KEY_STORE, key);
      $("key-panel").hidden = true;
      state.listed = loadScenarios();
      render();
    });
    $("key-forget").addEventListener("click", () => {
      forgetKey();
      askKey("The key is forgotten: this browser keeps no key now.");
    });
    $("key-cancel").addEventListener("click", () => {
      if (state.key) $("key-panel").hidden = true;
    });
    $("change-key").addEventListener("click", () => askKey());
  }

  // ---- shared pieces -------------------------------------------------------------------------

  function section(title, testid, ...children) {
    return h("section", { class: "card", testid }, h("h3", { text: title }), ...children);
  }

  function failure(err, what) {
    if (err instanceof ApiError && err.status === 401) return h("p", { class: "muted", text: "Waiting for the API key." });
    return h("p", { class: "error", testid: "error", text: `Could not load ${what}: ${err.message}` });
  }

  function stat(label, value, testid, title, small = false) {
    return h("div", { class: "stat" }, h("span", { class: "label", text: label }),
      h("span", { class: small ? "value small" : "value", testid, title, text: value }));
  }

  function badge(status, testid) {
    return h("span", { class: `badge st-${slug(status || "none")}`, testid, text: fmt.text(status) });
  }

  function table(columns, rows, attrs = {}) {
    return h("div", { class: "table-wrap" }, h("table", attrs,
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.num ? "num" : null, text: c.label })))),
      h("tbody", {}, rows)));
  }

  // cls "when": a time that may wrap between date and time; "wrap": an id that may break anywhere.
  function cell(value, testid, { num = false, title, cls } = {}) {
    return h("td", { class: [num ? "num" : null, cls].filter(Boolean).join(" ") || null, testid, title }, value);
  }

  function link(href, text, testid) {
    return h("a", { href, testid, text });
  }

  function every(ms, fn) {
    clearInterval(state.timer);
    state.timer = setInterval(fn, ms);
  }

  // ---- scenario list -------------------------------------------------------------------------

  async function loadScenarios() {
    const list = $("scenarios");
    try {
      const answer = await call("/v1/scenarios");
      state.scenarios = answer.scenarios || [];
    } catch (err) {
      list.replaceChildren(h("li", {}, failure(err, "the scenarios")));
      return;
    }
    list.replaceChildren(...state.scenarios.map((sc) => h("li", {},
      h("a", { href: `#/scenarios/${enc(sc.id)}`, testid: `scenario-${sc.id}`, "data-id": sc.id },
        h("span", { class: "name", text: sc.name || sc.id }),
        h("span", { class: "meta", text: `${sc.id} · v${sc.version} · ${sc.source} · ${sc.steps} steps` })))));
    highlight();
  }

  function highlight() {
    const current = decodeURIComponent((location.hash.match(/^#\/scenarios\/([^/?]+)/) || [])[1] || "");
    for (const a of $("scenarios").querySelectorAll("a")) a.classList.toggle("active", a.dataset.id === current);
  }

  // ---- scenario view -------------------------------------------------------------------------

  async function scenarioView(root, id) {
    await state.listed;
    const info = state.scenarios.find((sc) => sc.id === id);
    const { from, to } = range();
    const csv = h("button", { type: "button", testid: "csv-download", text: "Download CSV" });
    const refresh = h("button", { type: "button", class: "ghost", testid: "refresh", text: "Refresh" });
    const reportBox = h("div", { testid: "report" }, h("p", { class: "muted", text: "Loading the report…" }));
    const forecastBox = h("div", {});
    const liveBox = h("div", {});
    root.append(
      h("div", { class: "title-row" },
        h("h2", { testid: "scenario-title", text: info ? info.name : id }),
        h("span", { class: "muted", testid: "scenario-id", text: `${id} · ${from} … ${to}` }),
        h("span", { class: "spacer" }), refresh, csv),
      reportBox, forecastBox, liveBox);
    csv.addEventListener("click", () => downloadCsv(id, csv));
    refresh.addEventListener("click", () => render());

    let report = null;
    try {
      report = await call(reportPath(id));
      if (report.currency) state.currency = report.currency;
      reportBox.replaceChildren(...reportSections(report));
    } catch (err) {
      reportBox.replaceChildren(section("Report", "report-error", failure(err, "the report")));
    }
    forecastBox.append(forecastSection(id, report));
    const live = liveSection(id);
    liveBox.append(live.el);
    await live.load();
    if (root.isConnected) every(LIVE_REFRESH_MS, live.load);  // not if another view opened meanwhile
  }

  async function downloadCsv(id, button) {
    const { from, to } = range();
    button.disabled = true;
    try {
      const text = await call(reportPath(id, "&format=csv"), { accept: "text/csv" });
      const url = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
      const a = h("a", { href: url, download: `${id}_${from}_${to}.csv`, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (err) {
      button.after(failure(err, "the CSV"));
    } finally {
      button.disabled = false;
    }
  }

  function reportSections(report) {
    const t = report.totals || {};
    const cur = report.currency;
    const totals = section("Totals", "totals",
      h("div", { class: "stats" },
        stat("Cascades", fmt.int(t.cascades), "total-cascades"),
        stat("Reached", fmt.int(t.reached), "total-reached"),
        stat("Reach", fmt.pct(t.reach), "total-reach", "share of cascades where the customer reacted"),
        stat("Successes", fmt.int(t.successes), "total-successes"),
        stat("Success rate", fmt.pct(t.success_rate), "total-success-rate", "share of cascades that ended succeeded"),
        stat("Cost", fmt.money(t.cost, cur), "total-cost"),
        stat("Cost per success", fmt.money(t.cost_per_success, cur), "total-cost-per-success"),
        stat("Median time to success", fmt.duration(t.median_time_to_success_s), "total-median-tts",
          t.median_time_to_success_s === null || t.median_time_to_success_s === undefined
            ? null : `${t.median_time_to_success_s} s of cascade time`)),
      ended(report.ended),
      baseline(report.baseline, cur),
      h("p", { class: "muted", testid: "report-currency", text: `Money in ${cur || "the deployment's currency"}; ` +
        `a cascade counts on the day it started (${report.from} … ${report.to}, UTC).` }));
    return [totals, funnelSection(report), channelSection(report), armsSection(report)].filter(Boolean);
  }

  function ended(counts) {
    const entries = Object.entries(counts || {});
    if (!entries.length) return null;
    return h("p", { class: "rates", testid: "ended" }, h("span", { class: "muted", text: "Ended:" }),
      entries.map(([status, n]) => h("span", { class: "chip" }, `${status} `,
        h("b", { testid: `ended-${slug(status)}`, text: fmt.int(n) }))));
  }

  function baseline(base, currency) {
    if (!base || typeof base !== "object" || !Object.keys(base).length) return null;
    const stats = Object.entries(base).filter(([, v]) => v === null || typeof v !== "object").map(([key, value]) => {
      const label = key.replace(/_s$/, "").replace(/_/g, " ");
      let shown;
      if (typeof value === "string" || value === null) shown = fmt.text(value);
      else if (/reach|rate|share/.test(key)) shown = fmt.pct(value);
      else if (/cost/.test(key)) shown = fmt.money(value, currency);
      else if (/_s$/.test(key)) shown = fmt.duration(value);
      else shown = Number.isInteger(value) ? fmt.int(value) : fmt.num(value, 2);
      return stat(label, shown, `baseline-${slug(key)}`);
    });
    return h("div", { class: "baseline", testid: "baseline" },
      h("h4", { text: "Baseline: what step 1 alone achieved" }), h("div", { class: "stats" }, stats));
  }

  const rowKey = (r) => `${r.index}-${slug(r.channel)}`;

  function funnelSection(report) {
    const rows = report.steps || [];
    const cur = report.currency;
    const body = rows.map((r) => h("tr", { testid: `step-${rowKey(r)}` },
      cell(`Step ${r.index + 1}`, `step-${rowKey(r)}-index`),
      cell(r.channel, `step-${rowKey(r)}-channel`),
      COUNTERS.map((c) => cell(fmt.int(r[c]), `step-${rowKey(r)}-${c}`, { num: true })),
      cell(fmt.money(r.cost, cur), `step-${rowKey(r)}-cost`, { num: true })));
    return section("Funnel per step", "funnel",
      rows.length ? funnelChart(rows) : h("p", { class: "muted", text: "No steps sent in this period." }),
      legend(FUNNEL.map(([key, label]) => [key, label])),
      table([{ label: "Step" }, { label: "Channel" }, ...COUNTERS.map((c) => ({ label: c, num: true })),
        { label: "cost", num: true }], body, { testid: "steps-table" }));
  }

  function legend(entries) {
    return h("div", { class: "legend" }, entries.map(([key, label]) =>
      h("span", {}, h("i", { class: `swatch k-${key}` }), label)));
  }

  function funnelChart(rows) {
    const bar = 18, gap = 4, pad = 28, top = 22, plot = 170, bottom = 42;
    const group = FUNNEL.length * (bar + gap) - gap + pad;
    const width = Math.max(rows.length * group + pad, 320);
    const max = Math.max(1, ...rows.flatMap((r) => FUNNEL.map(([, , get]) => get(r) || 0)));
    const chart = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${top + plot + bottom}`, width,
      role: "img", "aria-label": "funnel per step", testid: "funnel-chart" });
    chart.append(svg("line", { class: "axis", x1: pad / 2, x2: width - pad / 2, y1: top + plot, y2: top + plot }));
    rows.forEach((r, i) => {
      const x0 = pad + i * group;
      FUNNEL.forEach(([key, label, get], j) => {
        const v = get(r) || 0;
        const height = (v / max) * plot;
        const x = x0 + j * (bar + gap);
        chart.append(svg("rect", { class: `k-${key}`, x, y: top + plot - height, width: bar, height },
          svg("title", { text: `${label}: ${v}` })));
        chart.append(svg("text", { class: "bar-label", x: x + bar / 2, y: top + plot - height - 4,
          testid: `funnel-${rowKey(r)}-${key}`, text: fmt.int(v) }));
      });
      const mid = x0 + (group - pad) / 2;
      chart.append(svg("text", { class: "group-label", x: mid, y: top + plot + 16, text: `Step ${r.index + 1}` }));
      chart.append(svg("text", { class: "group-sub", x: mid, y: top + plot + 32, text: r.channel }));
    });
    return h("div", { class: "chart-wrap" }, chart);
  }

  function byChannel(report) {
    const channels = new Map();
    for (const r of report.steps || []) {
      const c = channels.get(r.channel) || { channel: r.channel, sent: 0, successes: 0, cost: 0 };
      c.sent += r.sent || 0;
      c.successes += r.successes || 0;
      c.cost += r.cost || 0;
      channels.set(r.channel, c);
    }
    const cascades = (report.totals || {}).cascades || 0;
    return [...channels.values()].map((c) => ({
      ...c,
      reach: cascades ? c.successes / cascades : null,
      cost_per_success: c.successes ? c.cost / c.successes : null,
    }));
  }

  function channelSection(report) {
    const rows = byChannel(report);
    if (!rows.length) return null;
    const cur = report.currency;
    const body = rows.map((c) => h("tr", { testid: `channel-${slug(c.channel)}` },
      cell(c.channel, `channel-${slug(c.channel)}-name`),
      cell(fmt.int(c.sent), `channel-${slug(c.channel)}-sent`, { num: true }),
      cell(fmt.int(c.successes), `channel-${slug(c.channel)}-successes`, { num: true }),
      cell(fmt.pct(c.reach), `channel-${slug(c.channel)}-reach`, { num: true }),
      cell(fmt.money(c.cost, cur), `channel-${slug(c.channel)}-cost`, { num: true }),
      cell(fmt.money(c.cost_per_success, cur), `channel-${slug(c.channel)}-cost-per-success`, { num: true })));
    return section("Channels: reach vs cost", "channels",
      h("p", { class: "muted", text: "Reach: the share of all cascades won on that channel. Cost: what its " +
        "messages cost in the period." }),
      channelChart(rows, cur),
      legend([["reach", "reach (share of cascades won there)"], ["cost", "cost"]]),
      table([{ label: "Channel" }, { label: "sent", num: true }, { label: "successes", num: true },
        { label: "reach", num: true }, { label: "cost", num: true }, { label: "cost per success", num: true }],
      body, { testid: "channels-table" }));
  }

  function channelChart(rows, currency) {
    const label = 90, half = 260, rowH = 40, top = 8, width = label + 2 * half + 40;
    const maxReach = Math.max(0.0001, ...rows.map((c) => c.reach || 0));
    const maxCost = Math.max(1e-9, ...rows.map((c) => c.cost || 0));
    const chart = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${top + rows.length * rowH + 8}`, width,
      role: "img", "aria-label": "reach and cost per channel", testid: "channel-chart" });
    rows.forEach((c, i) => {
      const y = top + i * rowH;
      const reachW = ((c.reach || 0) / maxReach) * (half - 70);
      const costW = ((c.cost || 0) / maxCost) * (half - 90);
      chart.append(
        svg("text", { class: "row-label", x: label - 8, y: y + 20, text: c.channel }),
        svg("rect", { class: "k-reach", x: label, y: y + 6, width: Math.max(reachW, 1), height: 20 }),
        svg("text", { class: "bar-value", x: label + Math.max(reachW, 1) + 6, y: y + 20,
          testid: `channel-chart-${slug(c.channel)}-reach`, text: fmt.pct(c.reach) }),
        svg("rect", { class: "k-cost", x: label + half + 20, y: y + 6, width: Math.max(costW, 1), height: 20 }),
        svg("text", { class: "bar-value", x: label + half + 20 + Math.max(costW, 1) + 6, y: y + 20,
          testid: `channel-chart-${slug(c.channel)}-cost`, text: fmt.money(c.cost, currency) }));
    });
    return h("div", { class: "chart-wrap" }, chart);
  }

  function armsSection(report) {
    // Adaptive order: the adaptive arm beside the holdout that kept the static order, and the uplift.
    const arms = report.adaptive;
    if (!arms || typeof arms !== "object") return null;
    const cur = report.currency;
    const rows = ["adaptive", "holdout"].filter((arm) => arms[arm]).map((arm) => {
      const a = arms[arm];
      return h("tr", { testid: `arm-${arm}` }, cell(arm, null),
        cell(fmt.int(a.cascades), `arm-${arm}-cascades`, { num: true }),
        cell(fmt.int(a.reached), `arm-${arm}-reached`, { num: true }),
        cell(fmt.pct(a.reach), `arm-${arm}-reach`, { num: true }),
        cell(fmt.int(a.successes), `arm-${arm}-successes`, { num: true }),
        cell(fmt.pct(a.success_rate), `arm-${arm}-success-rate`, { num: true }),
        cell(fmt.money(a.cost, cur), `arm-${arm}-cost`, { num: true }),
        cell(fmt.money(a.cost_per_success, cur), `arm-${arm}-cost-per-success`, { num: true }));
    });
    const uplift = arms.uplift || {};
    const points = (v) => (v === null || v === undefined ? DASH : `${v >= 0 ? "+" : ""}${(v * 100).toFixed(1)} pp`);
    return section("Adaptive order vs holdout", "arms",
      table([{ label: "Arm" }, { label: "cascades", num: true }, { label: "reached", num: true },
        { label: "reach", num: true }, { label: "successes", num: true }, { label: "success rate", num: true },
        { label: "cost", num: true }, { label: "cost per success", num: true }], rows),
      h("div", { class: "stats" },
        stat("Uplift in reach", points(uplift.reach), "uplift-reach"),
        stat("Uplift in success rate", points(uplift.success_rate), "uplift-success-rate")));
  }

  // ---- forecast ------------------------------------------------------------------------------

  function forecastSection(id, report) {
    const audience = h("input", { type: "number", min: 1, step: 1, value: 1000, required: true,
      testid: "forecast-audience", "aria-label": "audience" });
    const out = h("div", { testid: "forecast" });
    const form = h("form", { class: "row", testid: "forecast-form" },
      h("label", {}, "Audience ", audience),
      h("button", { type: "submit", testid: "forecast-run", text: "Forecast" }));
    const run = async () => {
      out.replaceChildren(h("p", { class: "muted", text: "Forecasting…" }));
      try {
        const f = await call(`/v1/scenarios/${enc(id)}/forecast`, {
          method: "POST", body: { audience: Number.parseInt(audience.value, 10) },
        });
        out.replaceChildren(...forecastView(f, report));
      } catch (err) {
        out.replaceChildren(failure(err, "the forecast"));
      }
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      run();
    });
    run();
    return section("Forecast vs actual", "forecast-section",
      h("p", { class: "muted", text: "What this scenario would achieve for an audience, from its observed " +
        "rates once it has history (the articles' figures before), beside what it actually did in the period. " +
        "Steps' conditions and alternatives are evaluated on its recent cascades' customers." }),
      form, out);
  }

  function forecastView(f, report) {
    const cur = f.currency || (report && report.currency);
    const single = f.single_channel || {};
    const tts = f.time_to_success_s || {};
    const stats = h("div", { class: "stats" },
      stat("Audience", fmt.int(f.audience), "forecast-audience-shown"),
      stat("Reach", fmt.pct(f.reach), "forecast-reach"),
      stat("Successes", fmt.count(f.successes), "forecast-successes"),
      stat("Cost", fmt.money(f.cost, cur), "forecast-cost"),
      stat("Time to success p50", fmt.duration(tts.p50), "forecast-p50"),
      stat("p90", fmt.duration(tts.p90), "forecast-p90"),
      stat(`${fmt.text(single.channel)} alone: reach`, fmt.pct(single.reach), "forecast-single-reach"),
      stat(`${fmt.text(single.channel)} alone: cost`, fmt.money(single.cost, cur), "forecast-single-cost"));
    const rates = h("p", { class: "muted rates", testid: "forecast-rates" },
      h("span", { testid: "forecast-rates-source", text: `rates: ${fmt.text(f.rates_source)}` }),
      h("span", { class: "chip", testid: "forecast-condition-source", title: "the customers steps' conditions and " +
        "alternatives were evaluated on", text: `conditions: ${fmt.text(f.condition_source)}` +
        (f.condition_customers ? ` (${fmt.int(f.condition_customers)} customer${f.condition_customers === 1 ? "" : "s"})` : "") }),
      Object.entries(f.rates || {}).map(([ch, rate]) => h("span", { class: "chip" },
        `${ch} `, h("b", { testid: `forecast-rate-${slug(ch)}`, text: fmt.pct(rate) }),
        (f.samples || {})[ch] ? h("small", { testid: `forecast-samples-${slug(ch)}`,
          text: ` (${fmt.int(f.samples[ch])} sends)` }) : null)));
    const body = (f.steps || []).map((s) => h("tr", { testid: `forecast-step-${s.index}` },
      cell(`Step ${s.index + 1}`, null), cell(s.channel, `forecast-step-${s.index}-channel`),
      cell(fmt.count(s.expected_sends), `forecast-step-${s.index}-sends`, { num: true }),
      cell(fmt.count(s.expected_successes), `forecast-step-${s.index}-successes`, { num: true }),
      cell(fmt.money(s.cost, cur), `forecast-step-${s.index}-cost`, { num: true })));
    return [stats, rates,
      h("div", { class: "side-by-side" },
        compareChart(f, report),
        table([{ label: "Step" }, { label: "Channel" }, { label: "expected sends", num: true },
          { label: "expected successes", num: true }, { label: "cost", num: true }], body,
        { testid: "forecast-table" }))];
  }

  function compareChart(f, report) {
    // Everything as a share of the audience (forecast) or of the cascades (actual), so they compare.
    const cascades = report && report.totals ? report.totals.cascades : 0;
    const actualStep = (index) => {
      if (!cascades) return null;
      const won = (report.steps || []).filter((r) => r.index === index).reduce((n, r) => n + (r.successes || 0), 0);
      return won / cascades;
    };
    const groups = [{ key: "reach", label: "reach", forecast: f.reach, actual: report && report.totals
      ? report.totals.reach : null, single: (f.single_channel || {}).reach }];
    for (const s of f.steps || []) {
      groups.push({ key: `step-${s.index}`, label: `step ${s.index + 1}`, sub: s.channel,
        forecast: f.audience ? s.expected_successes / f.audience : null, actual: actualStep(s.index) });
    }
    const bar = 34, gap = 4, pad = 30, top = 20, plot = 150, bottom = 40;
    const group = 3 * (bar + gap) + pad;
    const width = groups.length * group + pad;
    const chart = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${top + plot + bottom}`, width,
      role: "img", "aria-label": "forecast vs actual", testid: "compare-chart" });
    chart.append(svg("line", { class: "axis", x1: pad / 2, x2: width - pad / 2, y1: top + plot, y2: top + plot }));
    groups.forEach((g, i) => {
      const x0 = pad + i * group;
      const bars = [["forecast", g.forecast], ["actual", g.actual]];
      if (g.single !== undefined) bars.push(["single", g.single]);
      bars.forEach(([kind, v], j) => {
        const x = x0 + j * (bar + gap);
        const height = (v || 0) * plot;
        chart.append(
          svg("rect", { class: `k-${kind}`, x, y: top + plot - height, width: bar, height },
            svg("title", { text: `${kind}: ${fmt.pct(v)}` })),
          svg("text", { class: "bar-label small", x: x + bar / 2, y: top + plot - height - 4,
            testid: `compare-${g.key}-${kind}`, text: fmt.pct(v) }));
      });
      const mid = x0 + (bars.length * (bar + gap) - gap) / 2;
      chart.append(svg("text", { class: "group-label", x: mid, y: top + plot + 16, text: g.label }));
      if (g.sub) chart.append(svg("text", { class: "group-sub", x: mid, y: top + plot + 32, text: g.sub }));
    });
    return h("div", { class: "chart-wrap" }, chart,
      legend([["forecast", "forecast"], ["actual", "actual (this period)"], ["single", "first channel alone"]]));
  }

  // ---- live cascades -------------------------------------------------------------------------

  function liveSection(id) {
    const running = h("div", { testid: "live-running" });
    const recent = h("div", { testid: "live-recent" });
    const el = section("Live cascades", "live",
      h("h4", {}, "Running ", h("span", { class: "count", testid: "live-running-count", text: "" })), running,
      h("h4", {}, "Recent ", h("span", { class: "count", testid: "live-recent-count", text: "" })), recent);
    const rows = (list, prefix, arms) => list.map((c) => h("tr", { testid: `${prefix}-${c.cascade_id}` },
      cell(link(`#/cascades/${enc(c.cascade_id)}`, c.cascade_id, `${prefix}-${c.cascade_id}-link`)),
      cell(c.recipient_id ? link(`#/recipients/${enc(c.recipient_id)}`, c.recipient_id,
        `${prefix}-${c.cascade_id}-recipient`) : DASH, null, { cls: "wrap" }),
      cell(badge(c.status, `${prefix}-${c.cascade_id}-status`)),
      arms ? cell(fmt.text(c.arm), `${prefix}-${c.cascade_id}-arm`) : null,
      cell(fmt.time(c.created_at), `${prefix}-${c.cascade_id}-created`, { cls: "when" }),
      cell(fmt.time(c.finished_at), `${prefix}-${c.cascade_id}-finished`, { cls: "when" })));
    const fill = (box, count, list, prefix, empty) => {
      const arms = list.some((c) => c.arm);
      const columns = [{ label: "Cascade" }, { label: "Customer" }, { label: "Status" },
        arms ? { label: "Arm" } : null, { label: "Started" }, { label: "Finished" }].filter(Boolean);
      count.textContent = `(${list.length})`;
      box.replaceChildren(list.length ? table(columns, rows(list, prefix, arms))
        : h("p", { class: "muted", text: empty }));
    };
    const load = async () => {
      try {
        const [live, latest] = await Promise.all([
          call(`/v1/cascades?scenario=${enc(id)}&status=running&limit=50`),
          call(`/v1/cascades?scenario=${enc(id)}&limit=20`)]);
        fill(running, el.querySelector("[data-testid=live-running-count]"), live.cascades || [], "running",
          "Nothing running right now.");
        fill(recent, el.querySelector("[data-testid=live-recent-count]"), latest.cascades || [], "recent",
          "No cascades yet.");
      } catch (err) {
        running.replaceChildren(failure(err, "the cascades"));
        recent.replaceChildren();
      }
    };
    return { el, load };
  }

  // ---- a cascade's timeline ------------------------------------------------------------------

  async function cascadeView(root, id) {
    const load = async () => {
      let c;
      try {
        c = await call(`/v1/cascades/${enc(id)}`);
      } catch (err) {
        root.replaceChildren(failure(err, `cascade ${id}`));
        clearInterval(state.timer);
        return;
      }
      // What happened to each step's message (signals, costs) is on the customer's timeline.
      let touches = [];
      let currency = state.currency;
      try {
        const t = await call(`/v1/recipients/${enc(c.recipient_id)}/timeline`);
        touches = (t.touches || []).filter((x) => x.cascade_id === c.cascade_id);
        currency = t.currency || currency;
      } catch (_) { /* the steps alone still tell the story */ }
      root.replaceChildren(
        h("div", { class: "title-row" },
          h("h2", {}, "Cascade ", h("code", { testid: "cascade-id", text: c.cascade_id })),
          badge(c.status, "cascade-status")),
        section("Cascade", "cascade",
          h("div", { class: "stats" },
            stat("Scenario", "", "cascade-scenario-box"),
            stat("Customer", "", "cascade-recipient-box"),
            stat("Stop reason", fmt.text(c.stop_reason), "cascade-stop-reason"),
            stat("Scenario version", fmt.text(c.scenario_version), "cascade-version"),
            stat("Started", fmt.time(c.created_at), "cascade-created-at", null, true),
            stat("Finished", fmt.time(c.finished_at), "cascade-finished-at", null, true),
            c.arm ? stat("Adaptive order arm", c.arm, "cascade-arm") : null,
            c.adapted_from_channel ? stat("Moved first", c.adapted_from_channel, "cascade-adapted-from") : null,
            c.step_order ? stat("Step order", c.step_order.map((i) => i + 1).join(" → "), "cascade-step-order")
              : null)),
        section("Timeline", "cascade-timeline", h("ol", { class: "timeline" }, (c.steps || []).map((s) =>
          stepItem(s, touches.filter((x) => x.step === s.index), currency)))));
      root.querySelector("[data-testid=cascade-scenario-box]").replaceChildren(
        link(`#/scenarios/${enc(c.scenario)}`, c.scenario, "cascade-scenario"));
      root.querySelector("[data-testid=cascade-recipient-box]").replaceChildren(
        link(`#/recipients/${enc(c.recipient_id)}`, c.recipient_id, "cascade-recipient"));
      if (c.status !== "running") clearInterval(state.timer);
    };
    await load();
    if (root.isConnected && root.querySelector("[data-testid=cascade-status]")?.textContent === "running") {
      every(CASCADE_REFRESH_MS, load);
    }
  }

  function stepItem(s, touches, currency) {
    const p = `cascade-step-${s.index}`;
    const cost = touches.filter((x) => x.kind === "sent").reduce((n, x) => (x.cost === null || x.cost === undefined
      ? n : (n || 0) + x.cost), null);
    const facts = [
      ["sent", fmt.time(s.sent_at), `${p}-sent-at`, s.sent_at],
      ["reason", s.reason, `${p}-reason`, s.reason],
      ["reply", s.reply, `${p}-reply`, s.reply],
      ["intent", s.intent, `${p}-intent`, s.intent],
      ["not before", fmt.time(s.not_before), `${p}-not-before`, s.not_before],
      ["message id", s.provider_message_id, `${p}-message-id`, s.provider_message_id],
      ["cost", fmt.money(cost, currency), `${p}-cost`, cost],
    ].filter(([, , , raw]) => raw !== null && raw !== undefined && raw !== "");
    const events = touches.map((x, n) => h("li", { testid: `${p}-event-${n}` },
      h("span", { class: "muted", testid: `${p}-event-${n}-at`, text: fmt.time(x.at) }), " ",
      h("span", { testid: `${p}-event-${n}-kind`, text: x.kind }), " ",
      badge(x.status, `${p}-event-${n}-status`),
      x.summary || x.text ? h("span", { class: "summary", text: ` ${x.summary || x.text}` }) : null));
    return h("li", { class: `step st-${slug(s.status)}`, testid: p },
      h("div", { class: "step-head" },
        h("b", { text: `Step ${s.index + 1}` }), " ",
        h("span", { class: "channel", testid: `${p}-channel`, text: s.channel }), " ",
        badge(s.status, `${p}-status`)),
      h("dl", {}, facts.map(([label, value, testid]) => [h("dt", { text: label }), h("dd", { testid, text: value })])),
      events.length ? h("ul", { class: "events", testid: `${p}-events` }, events) : null);
  }

  // ---- the customer card ---------------------------------------------------------------------

  async function recipientView(root, id) {
    let t;
    try {
      t = await call(`/v1/recipients/${enc(id)}/timeline`);
    } catch (err) {
      root.replaceChildren(failure(err, `the customer ${id}`));
      return;
    }
    const cur = t.currency || state.currency;
    const touches = t.touches || [];
    const reacts = t.reacts_on || {};
    const sent = touches.filter((x) => x.kind === "sent");
    const cost = typeof t.cost === "number" ? t.cost : touches.reduce((n, x) => n + (x.cost || 0), 0);
    const cascades = new Set(touches.map((x) => x.cascade_id));
    const body = touches.map((x, n) => [h("tr", { testid: `touch-${n}`, class: `kind-${slug(x.kind)}` },
      cell(fmt.time(x.at), `touch-${n}-at`, { cls: "when" }),
      cell(link(`#/scenarios/${enc(x.scenario)}`, x.scenario, `touch-${n}-scenario`)),
      cell(link(`#/cascades/${enc(x.cascade_id)}`, x.cascade_id, `touch-${n}-cascade`)),
      cell(`${x.step + 1}`, `touch-${n}-step`, { num: true }),
      cell(x.channel, `touch-${n}-channel`),
      cell(x.kind, `touch-${n}-kind`),
      cell(badge(x.status, `touch-${n}-status`)),
      cell(x.cost === null || x.cost === undefined ? DASH : fmt.money(x.cost, cur), `touch-${n}-cost`,
        { num: true, title: x.parts > 1 ? `${x.parts} parts` : null })), touchText(x, n, 8)]);
    root.replaceChildren(
      h("div", { class: "title-row" }, h("h2", {}, "Customer ", h("code", { testid: "recipient-id", text: t.recipient_id || id }))),
      section("Customer card", "recipient-card",
        h("div", { class: "stats" },
          stat("Reacts on", fmt.text(reacts.channel), "reacts-on",
            "the channel this customer reacted on most recently"),
          stat("Touches", fmt.int(touches.length), "recipient-touches"),
          stat("Messages sent", fmt.int(sent.length), "recipient-sent"),
          stat("Cascades", fmt.int(cascades.size), "recipient-cascades"),
          stat("Cost", fmt.money(cost, cur), "recipient-cost"),
          stat("Last reaction", reacts.last_channel ? `${reacts.last_channel}, ${fmt.time(reacts.last_at)}` : DASH,
            "reacts-last", null, true)),
        h("p", { class: "rates" }, h("span", { class: "muted", text: "Reactions per channel:" }),
          Object.keys(reacts.counts || {}).length ? Object.entries(reacts.counts).map(([ch, n]) => h("span",
            { class: "chip" }, `${ch} `, h("b", { testid: `reacts-count-${slug(ch)}`, text: fmt.int(n) })))
            : h("span", { class: "muted", testid: "reacts-none", text: " none yet" })),
        contactsLine(t.contacts || [])),
      section("Every touch", "touches",
        touches.length ? table([{ label: "When" }, { label: "Scenario" }, { label: "Cascade" },
          { label: "Step", num: true }, { label: "Channel" }, { label: "Kind" }, { label: "Status" },
          { label: "Cost", num: true }], body, { testid: "touches-table" })
          : h("p", { class: "muted", text: "No touches for this customer." })));
  }

  // A touch's text (the message's start, or the customer's reply) on a row of its own under the touch,
  // across the table: two lines at most, and all of it, wrapped, after a click (or Enter) on it.
  function touchText(x, n, columns) {
    const full = x.summary || x.text;
    if (!full) return null;
    const td = h("td", { class: "summary", testid: `touch-${n}-summary`, colspan: columns, tabindex: 0, role: "button",
      "aria-expanded": "false", title: x.provider ? `via ${x.provider}` : null }, h("div", { class: "clip", text: full }));
    const toggle = () => td.setAttribute("aria-expanded", String(td.classList.toggle("open")));
    td.addEventListener("click", toggle);
    td.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" && event.key !== " ") return;
      event.preventDefault();
      toggle();
    });
    return h("tr", { class: `text kind-${slug(x.kind)}`, testid: `touch-${n}-text` }, td);
  }

  // Each contact's health: ok, invalid (a provider refused it for good: clean it), inactive (no
  // reaction in its last sends), opted out. The reason and since when show on hover and beside it.
  function contactsLine(contacts) {
    return h("p", { class: "rates", testid: "recipient-contacts" }, h("span", { class: "muted", text: "Contacts:" }),
      contacts.length ? contacts.map((c) => {
        const p = `contact-${slug(c.channel)}`;
        const why = [c.reason, c.since ? `since ${fmt.time(c.since)}` : null].filter(Boolean).join(", ");
        return h("span", { class: "chip", testid: p, title: [c.contact, why].filter(Boolean).join(" — ") || null },
          `${c.channel} `, badge(c.health, `${p}-health`),
          c.reason ? h("span", { class: "muted", testid: `${p}-reason`, text: ` ${c.reason}` }) : null);
      }) : h("span", { class: "muted", testid: "contacts-none", text: " nothing known yet" }));
  }

  // ---- routing -------------------------------------------------------------------------------

  function home(root) {
    root.append(h("p", { class: "muted", testid: "home",
      text: "Pick a scenario to see its funnel, costs, live cascades and forecast; or open a cascade or a " +
        "customer by id." }));
  }

  async function render() {
    clearInterval(state.timer);
    highlight();
    const root = h("div", { class: "route" });
    $("view").replaceChildren(root);
    if (!state.key) {
      askKey();
      return;
    }
    const [path] = location.hash.replace(/^#/, "").split("?");
    const [kind, raw] = path.split("/").filter(Boolean);
    const id = raw ? decodeURIComponent(raw) : "";
    if (kind === "scenarios" && id) await scenarioView(root, id);
    else if (kind === "cascades" && id) await cascadeView(root, id);
    else if (kind === "recipients" && id) await recipientView(root, id);
    else home(root);
  }

  function setupRange() {
    const query = new URLSearchParams(location.hash.split("?")[1] || "");
    const today = new Date();
    const start = new Date(today.getTime() - (RANGE_DAYS - 1) * 86400000);
    $("range-to").value = query.get("to") || today.toISOString().slice(0, 10);
    $("range-from").value = query.get("from") || start.toISOString().slice(0, 10);
    $("range").addEventListener("submit", (event) => {
      event.preventDefault();
      render();
    });
    $("lookup").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("lookup-id").value.trim();
      if (!value) return;
      location.hash = value.startsWith("c_") ? `#/cascades/${enc(value)}` : `#/recipients/${enc(value)}`;
    });
  }

  function boot() {
    setupKey();
    setupRange();
    window.addEventListener("hashchange", render);
    if (!state.key) {
      askKey();
      return;
    }
    state.listed = loadScenarios();
    render();
  }

  boot();
})();
