// The dashboard's Analytics view: charts and top tables from /dashboard/api/analytics/view, drawn with
// uPlot (vendored, served by the gateway). Times travel in UTC and are shown in the browser's zone;
// every chart's numbers download as long CSV (one line per bucket and group) from
// /dashboard/api/analytics.csv for the same pinned range. Empty buckets are zeros, never gaps.
"use strict";
(() => {
  const HEADER = {"x-imagegw-dashboard": "1"};
  const $ = (id) => document.getElementById(id);
  const PALETTE = ["#2f5fb3", "#e07b39", "#2e9e6a", "#c62828", "#8e5cc2", "#8a6d3b", "#d4578f", "#5a6b7d",
                   "#1f9bb0"];
  const MAX_STACKED = 8;      // more groups than this stack as "other"; the CSV keeps every group
  const RANGES = {"1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3, "30d": 30 * 86400e3};
  let loads = 0;              // numbers loads, so a slow answer to an older choice is dropped
  let current = null;         // what is drawn: the pinned range, the grouping and the answers
  let plots = [];

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (name === "text") node.textContent = value;
      else if (name === "class") node.className = value;
      else if (name === "data") Object.assign(node.dataset, value);
      else node.setAttribute(name, value);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  async function fetchOk(path, params) {
    const response = await fetch(path + "?" + params.toString(),
                                 {headers: HEADER, credentials: "same-origin", cache: "no-store"});
    if (!response.ok) {
      let message = "HTTP " + response.status;
      try { message = (await response.json()).error.message; } catch (e) { /* not JSON */ }
      throw new Error(message);
    }
    return response;
  }

  // --- formatting ---------------------------------------------------------------------------------

  const pad = (n) => String(n).padStart(2, "0");
  function localTime(seconds) {
    const d = new Date(seconds * 1000);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + pad(d.getHours()) + ":"
      + pad(d.getMinutes());
  }
  const count = (n) => Number(n).toLocaleString("en-US");
  const usd = (n) => "$" + Number(Number(n).toFixed(9)).toString();
  const usdShort = (n) => "$" + Number(n).toFixed(n >= 100 ? 0 : n >= 1 ? 2 : 4);
  const rate = (part, whole) => whole ? (100 * part / whole) : 0;
  const percent = (part, whole) => rate(part, whole).toFixed(2) + " % (" + count(part) + " / " + count(whole) + ")";
  const groupLabel = (group) => group === "" ? "(none)" : group;
  const span = (seconds) => seconds % 86400 === 0 ? seconds / 86400 + " d" : seconds % 3600 === 0
    ? seconds / 3600 + " h" : seconds % 60 === 0 ? seconds / 60 + " min" : seconds + " s";

  // --- the controls -------------------------------------------------------------------------------

  const form = $("analytics-controls");

  function pinnedRange() {
    // Every request of one view asks for the same instants, so charts, tables and CSV agree.
    const choice = form.elements.range.value;
    if (choice !== "custom") {
      const end = new Date();
      return {start_time: new Date(end - RANGES[choice]).toISOString(), end_time: end.toISOString()};
    }
    const start = form.elements.start_time.value, end = form.elements.end_time.value;
    if (!start) throw new Error("Pick the start of the range (From).");
    const range = {start_time: new Date(start).toISOString()};
    if (end) range.end_time = new Date(end).toISOString();
    return range;
  }

  function grouping() {
    const value = form.elements.group_by.value;
    return value === "metadata" ? "metadata." + form.elements.metadata_key.value.trim() : value;
  }

  function syncControls() {
    for (const label of form.querySelectorAll(".custom-range")) label.hidden = form.elements.range.value !== "custom";
    $("metadata-key-field").hidden = form.elements.group_by.value !== "metadata";
  }
  form.elements.range.addEventListener("change", syncControls);
  form.elements.group_by.addEventListener("change", syncControls);
  form.addEventListener("submit", (event) => { event.preventDefault(); load(); });

  // --- loading ------------------------------------------------------------------------------------

  async function load() {
    const started = performance.now();
    const mine = ++loads;
    $("analytics-view").dataset.requested = String(mine);  // with data-loaded: which answer is drawn
    $("analytics-error").textContent = "";
    $("analytics-status").textContent = "Loading…";
    try {
      const range = pinnedRange();
      const chosen = grouping();
      const params = new URLSearchParams(range);
      params.set("group_by", chosen);
      // One answer from one snapshot: the chart by the chosen grouping with buckets, and the top
      // tables' totals by key, by _user and by target.
      const {main, keys, users, targets} = await (await fetchOk("/dashboard/api/analytics/view", params)).json();
      if (mine !== loads) return;
      current = {range, grouping: chosen, main, keys, users, targets};
      render(current);
      // The instants drawn (a test asks the CLI for the same range).
      Object.assign($("analytics-view").dataset, {startTime: current.main.start_time, endTime: current.main.end_time,
                                                  groupBy: chosen, loaded: String(mine)});
      const bucketSeconds = parseFloat(current.main.bucket_duration);
      const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
      $("analytics-status").textContent = current.main.overall.buckets.length + " buckets of "
        + span(bucketSeconds) + " · times shown in " + zone + " (UTC on the wire and in CSV) · latency percentiles "
        + (current.main.latency_exact ? "exact" : "from the rollups' histogram (within 1.6 %)")
        + " · loaded in " + Math.round(performance.now() - started) + " ms";
    } catch (error) {
      if (mine !== loads) return;
      $("analytics-error").textContent = error.message;
      $("analytics-status").textContent = "";
    }
  }

  // --- charts -------------------------------------------------------------------------------------

  const seconds = (iso) => Date.parse(iso) / 1000;
  const valuesOf = (row, metric) => row.buckets.map((bucket) => Number(bucket.counts[metric] || 0));
  const totalOf = (row, metric) => Number(row.totals[metric] || 0);

  function stackedSeries(rows, metric) {
    // The largest groups by this metric, then the rest summed as one.
    const ranked = rows.filter((row) => totalOf(row, metric) > 0)
      .sort((a, b) => totalOf(b, metric) - totalOf(a, metric) || (a.group < b.group ? -1 : 1));
    const series = ranked.slice(0, MAX_STACKED).map((row) => ({label: groupLabel(row.group),
                                                               values: valuesOf(row, metric)}));
    const rest = ranked.slice(MAX_STACKED);
    if (rest.length) {
      const sums = valuesOf(rest[0], metric).map(() => 0);
      for (const row of rest) valuesOf(row, metric).forEach((v, i) => { sums[i] += v; });
      series.push({label: "other (" + rest.length + " groups)", values: sums});
    }
    return series;
  }

  function chartCard(name, title, columns) {
    const plot = el("div", {class: "plot"});
    const button = el("button", {type: "button", class: "csv", text: "CSV", title: "Download this chart's numbers"});
    button.addEventListener("click", () => downloadCsv(name, columns));
    const card = el("section", {class: "card chart", data: {chart: name}},
                    el("div", {class: "chart-head"}, el("h2", {text: title}), button), plot);
    $("analytics-charts").append(card);
    return {card, plot};
  }

  function baseOptions(plot, x, bucketSeconds, yFormat) {
    return {
      width: Math.max(plot.clientWidth, 320), height: 240,
      scales: {x: {time: true, range: () => [x[0], x[x.length - 1] + bucketSeconds]}},
      axes: [{}, {values: (u, ticks) => ticks.map(yFormat), size: 70}],
      legend: {live: true},
      cursor: {drag: {x: false, y: false}},
      series: [{label: "bucket", value: (u, ts) => ts == null ? "—" : localTime(ts)}],
    };
  }

  function draw(card, plot, options, data, total) {
    const chart = new uPlot(options, data, plot);
    plots.push({chart, plot});
    card.dataset.rendered = "1";
    card.dataset.total = String(total);
    card.dataset.points = String(data[0].length);
  }

  function stackedChart(name, title, columns, x, bucketSeconds, series, format, extra) {
    const {card, plot} = chartCard(name, title, columns);
    if (!series.length) series = [{label: "all", values: x.map(() => 0)}];
    // Stack: each series is drawn as the running total up to it, tallest first, so the smaller ones
    // paint over it; the legend shows each group's own value.
    const cumulative = [];
    let running = x.map(() => 0);
    for (const s of series) { running = running.map((v, i) => v + s.values[i]); cumulative.push(running); }
    const order = series.map((s, i) => i).reverse();
    const options = baseOptions(plot, x, bucketSeconds, format);
    const bars = uPlot.paths.bars({size: [0.9, 80], align: 1});
    for (const i of order) {
      const color = PALETTE[i % PALETTE.length];
      options.series.push({label: series[i].label, stroke: color, fill: color + "cc", width: 1, paths: bars,
                           points: {show: false},
                           value: (u, v, si, idx) => idx == null ? "—" : format(series[i].values[idx])});
    }
    const data = [x, ...order.map((i) => cumulative[i])];
    if (extra) {  // a line on its own scale (the cumulative cost)
      options.scales.extra = {};
      options.axes.push({scale: "extra", side: 1, values: (u, ticks) => ticks.map(format), grid: {show: false},
                         size: 70});
      options.series.push({label: extra.label, scale: "extra", stroke: "#1d2430", width: 2, dash: [6, 4],
                           value: (u, v, si, idx) => idx == null ? "—" : format(extra.values[idx])});
      data.push(extra.values);
    }
    draw(card, plot, options, data, running.reduce((a, b) => a + b, 0));
  }

  function lineChart(name, title, columns, x, bucketSeconds, series, format) {
    const {card, plot} = chartCard(name, title, columns);
    const options = baseOptions(plot, x, bucketSeconds, format.axis);
    series.forEach((s, i) => {
      options.series.push({label: s.label, stroke: s.color || PALETTE[i], width: 2, points: {show: true, size: 4},
                           value: (u, v, si, idx) => idx == null ? "—" : format.legend(s, idx)});
    });
    options.scales.y = {range: (u, low, high) => [0, Math.max(high, format.minTop)]};
    const total = series.reduce((sum, s) => sum + s.values.reduce((a, b) => a + b, 0), 0);
    draw(card, plot, options, [x, ...series.map((s) => s.values)], total);
  }

  function render(view) {
    for (const {chart} of plots) chart.destroy();
    plots = [];
    $("analytics-charts").replaceChildren();
    $("analytics-tables").replaceChildren();
    const main = view.main;
    const overall = main.overall;
    const x = overall.buckets.map((bucket) => seconds(bucket.start_time));
    const bucketSeconds = parseFloat(main.bucket_duration);
    const all = (metric) => valuesOf(overall, metric);
    const requests = all("requests");
    const by = " by " + view.grouping;

    renderTiles(overall.totals);
    stackedChart("requests", "Requests" + by, ["requests"], x, bucketSeconds, stackedSeries(main.rows, "requests"),
                 count);
    stackedChart("errors", "Errors" + by, ["requests", "errors"], x, bucketSeconds,
                 stackedSeries(main.rows, "errors"), count);
    const ratio = (metric, label, color) => {
      const parts = all(metric);
      return {label, color, parts, values: parts.map((p, i) => rate(p, requests[i]))};
    };
    const rateFormat = {axis: (v) => v.toFixed(0) + " %", minTop: 5,
                        legend: (s, idx) => percent(s.parts[idx], requests[idx])};
    lineChart("fallback-rate", "Fallback rate", ["fallbacks", "requests"], x, bucketSeconds,
              [ratio("fallbacks", "fallbacks / requests", "#9a6700")], rateFormat);
    lineChart("cache-hit-rate", "Cache hit rate", ["cache_hits", "requests"], x, bucketSeconds,
              [ratio("cache_hits", "cache hits / requests", "#2e9e6a")], rateFormat);
    const latency = (metric, label, color) => ({label, color, values: all(metric)});
    lineChart("latency", "Latency percentiles (requests that reached a provider)",
              ["latency_p50_ms", "latency_p95_ms", "latency_p99_ms"], x, bucketSeconds,
              [latency("latency_p50_ms", "p50", "#2f5fb3"), latency("latency_p95_ms", "p95", "#e07b39"),
               latency("latency_p99_ms", "p99", "#c62828")],
              {axis: (v) => v >= 1000 ? Number((v / 1000).toFixed(2)) + " s" : v + " ms", minTop: 10,
               legend: (s, idx) => count(s.values[idx]) + " ms"});
    const cost = all("cost_usd");
    let spent = 0;
    const cumulative = cost.map((c) => { spent += c; return spent; });
    stackedChart("cost", "Cost per bucket" + by + ", and cumulative", ["cost_usd"], x, bucketSeconds,
                 stackedSeries(main.rows, "cost_usd"), usd, {label: "cumulative", values: cumulative});
    renderTables(view);
  }

  function renderTiles(totals) {
    const requests = Number(totals.requests);
    const tiles = [
      ["Requests", count(requests)],
      ["Errors", count(totals.errors) + " · " + rate(totals.errors, requests).toFixed(1) + " %"],
      ["Fallbacks", count(totals.fallbacks) + " · " + rate(totals.fallbacks, requests).toFixed(1) + " %"],
      ["Cache hits", count(totals.cache_hits) + " · " + rate(totals.cache_hits, requests).toFixed(1) + " %"],
      ["Images", count(totals.images)],
      ["Cost", usdShort(Number(totals.cost_usd))],
      ["Latency p50 / p95", count(totals.latency_p50_ms) + " / " + count(totals.latency_p95_ms) + " ms"],
    ];
    $("analytics-tiles").replaceChildren(...tiles.map(([label, value]) =>
      el("div", {class: "tile", data: {tile: label}}, el("div", {class: "label", text: label}),
         el("div", {class: "value", text: value}))));
  }

  function table(name, title, headers, rows, empty) {
    const body = el("tbody");
    for (const cells of rows) body.append(el("tr", {}, ...cells.map((c, i) => el("td", {class: i ? "num" : "",
                                                                                       text: c}))));
    if (!rows.length) body.append(el("tr", {}, el("td", {colspan: String(headers.length), class: "muted",
                                                         text: empty})));
    $("analytics-tables").append(el("section", {class: "card", data: {table: name}}, el("h2", {text: title}),
      el("table", {}, el("thead", {}, el("tr", {}, ...headers.map((h, i) => el("th", {class: i ? "num" : "",
                                                                                       text: h})))), body)));
  }

  function renderTables(view) {
    const byCost = (rows) => rows.filter((r) => Number(r.totals.cost_usd) > 0 || Number(r.totals.requests) > 0)
      .sort((a, b) => Number(b.totals.cost_usd) - Number(a.totals.cost_usd) || Number(b.totals.requests)
        - Number(a.totals.requests)).slice(0, 10);
    table("keys", "Most expensive gateway keys", ["Key", "Requests", "Errors", "Cost"],
          byCost(view.keys.rows).map((r) => [groupLabel(r.group), count(r.totals.requests), count(r.totals.errors),
                                             usd(r.totals.cost_usd)]), "No requests in this range.");
    table("users", "Most expensive users (metadata _user)", ["User", "Requests", "Images", "Cost"],
          byCost(view.users.rows).map((r) => [r.group === "" ? "(no _user)" : r.group, count(r.totals.requests),
                                              count(r.totals.images), usd(r.totals.cost_usd)]),
          "No requests in this range.");
    // A target failed a request when the request failed there (its last target) or fell back from it.
    const failures = new Map();
    const failed = (target) => {
      if (!failures.has(target)) failures.set(target, {last: 0, fellBack: 0, kinds: []});
      return failures.get(target);
    };
    for (const row of view.targets.rows) {
      if (Number(row.totals.errors) > 0) {
        failed(row.group).last += Number(row.totals.errors);
        failed(row.group).kinds = row.totals.errors_by_kind || [];
      }
    }
    for (const pair of view.main.overall.totals.fallback_pairs || []) {
      failed(pair.from_target).fellBack += Number(pair.count);
    }
    const total = (f) => f.last + f.fellBack;
    const failing = [...failures.entries()].sort((a, b) => total(b[1]) - total(a[1])).slice(0, 10);
    table("failing-targets", "Most failing targets",
          ["Target", "Failed", "Fell back", "Failed last", "Most common error"],
          failing.map(([target, f]) => {
            const kinds = [...f.kinds].sort((a, b) => Number(b.count) - Number(a.count));
            const top = kinds.length ? String(kinds[0].kind).replace("ERROR_KIND_", "").toLowerCase() : "—";
            return [groupLabel(target), count(total(f)), count(f.fellBack), count(f.last), top];
          }), "No failures in this range.");
    const pairs = [...(view.main.overall.totals.fallback_pairs || [])]
      .sort((a, b) => Number(b.count) - Number(a.count));
    table("fallback-pairs", "Fallbacks: from → to", ["From → to", "Requests"],
          pairs.map((p) => [p.from_target + " → " + p.to_target, count(p.count)]), "No fallbacks in this range.");
    table("groups", "All groups by " + view.grouping,
          ["Group", "Requests", "Errors", "Fallbacks", "Cache hits", "Images", "Cost", "p50 ms", "p95 ms", "p99 ms"],
          view.main.rows.map((r) => [groupLabel(r.group), count(r.totals.requests), count(r.totals.errors),
            count(r.totals.fallbacks), count(r.totals.cache_hits), count(r.totals.images), usd(r.totals.cost_usd),
            count(r.totals.latency_p50_ms), count(r.totals.latency_p95_ms), count(r.totals.latency_p99_ms)]),
          "No requests in this range.");
  }

  // --- CSV ----------------------------------------------------------------------------------------

  async function downloadCsv(name, columns) {
    if (!current) return;
    const params = new URLSearchParams({start_time: current.main.start_time, end_time: current.main.end_time,
                                        group_by: current.grouping, columns: columns.join(",")});
    try {
      const blob = await (await fetchOk("/dashboard/api/analytics.csv", params)).blob();
      const stamp = current.main.end_time.replace(/[:.]/g, "-");
      const link = el("a", {href: URL.createObjectURL(blob),
                            download: "imagegw-" + name + "-by-" + current.grouping + "-" + stamp + ".csv"});
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 60000);
    } catch (error) {
      $("analytics-error").textContent = "CSV: " + error.message;
    }
  }

  window.addEventListener("resize", () => {
    for (const {chart, plot} of plots) chart.setSize({width: Math.max(plot.clientWidth, 320), height: 240});
  });
  document.addEventListener("imagegw:analytics", load);
  syncControls();
  // The view may have been opened (#analytics) before this script ran.
  if (!$("analytics-view").hidden) load();
})();
