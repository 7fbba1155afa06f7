// Overview: KPI cards and charts from the insights API, over a period of days in the tenant's
// time zone. When the insights API is not deployed (404), the screen says so and stops there.
import uPlot from "./uPlot.esm.js";
import * as api from "./api.js";
import { card, clear, errorText, h, message, money, number, percent, section, table } from "./ui.js";

const PRESETS = [["7", "Last 7 days"], ["30", "Last 30 days"], ["90", "Last 90 days"], ["365", "Last 12 months"]];
const SERIES_METRICS = ["enrolments", "active_members", "points_issued", "points_redeemed", "liability"];

// Today in the tenant's time zone, as YYYY-MM-DD.
export function today(timezone) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: timezone, year: "numeric", month: "2-digit", day: "2-digit" })
    .format(new Date());
}

function minusDays(day, days) {
  const moment = new Date(day + "T00:00:00Z");
  moment.setUTCDate(moment.getUTCDate() - days);
  return moment.toISOString().slice(0, 10);
}

const period = { from: null, to: null };

export async function render(container) {
  const { tenant } = api.me();
  if (!period.to) {
    period.to = today(tenant.timezone);
    period.from = minusDays(period.to, 29);
  }
  const body = h("div", { class: "overview-body" });
  const reload = () => load(body, tenant).catch((failure) => clear(body, message(errorText(failure), "error")));
  container.append(h("h1", {}, "Overview"), picker(tenant, reload), body);
  await load(body, tenant);
}

function picker(tenant, reload) {
  const from = h("input", { type: "date", id: "period-from", value: period.from, required: true });
  const to = h("input", { type: "date", id: "period-to", value: period.to, required: true });
  const preset = h("select", { id: "period-preset" },
    h("option", { value: "" }, "Custom"), PRESETS.map(([v, t]) => h("option", { value: v }, t)));
  preset.addEventListener("change", () => {
    if (!preset.value) return;
    to.value = today(tenant.timezone);
    from.value = minusDays(to.value, Number(preset.value) - 1);
  });
  const form = h("form", { class: "period", "aria-label": "The period shown" },
    h("div", { class: "field" }, h("label", { for: "period-preset" }, "Period"), preset),
    h("div", { class: "field" }, h("label", { for: "period-from" }, "From"), from),
    h("div", { class: "field" }, h("label", { for: "period-to" }, "To"), to),
    h("button", { type: "submit" }, "Show"),
    h("small", { class: "tz" }, `Days in ${tenant.timezone}`));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    period.from = from.value;
    period.to = to.value;
    reload();
  });
  return form;
}

async function load(body, tenant) {
  clear(body, message("Loading the figures…"));
  const range = { from: period.from, to: period.to };
  let summary;
  try {
    summary = await api.get("/insights/summary", range);
  } catch (failure) {
    if (failure.status === 404 || failure.status === 403) {
      clear(body, message(
        "The insights API is not available on this deployment (GET /v1/insights/summary answered " +
        failure.status + "), so there are no figures to show. Members, Program and Integrations work without it.",
        "warning"));
      body.dataset.insights = "unavailable";
      return;
    }
    throw failure;
  }
  const interval = daysBetween(range.from, range.to) > 120 ? "month" : daysBetween(range.from, range.to) > 45 ? "week" : "day";
  const [series, liability] = await Promise.all([
    Promise.all(SERIES_METRICS.map((metric) => api.get("/insights/timeseries", { metric, interval, ...range })
      .then((answer) => [metric, answer]))),
    api.get("/insights/liability"),
  ]);
  const byMetric = Object.fromEntries(series);
  body.dataset.insights = "available";
  clear(body,
    h("p", { class: "as-of" }, `Figures as of ${summary.as_of || "—"} · ${summary.from} to ${summary.to}`),
    kpis(summary),
    section("Enrolments and active members",
      chart("Enrolments and active members", [byMetric.enrolments, byMetric.active_members],
        ["Enrolments", "Active members"])),
    section("Points issued and redeemed",
      chart("Points issued and redeemed", [byMetric.points_issued, byMetric.points_redeemed],
        ["Issued", "Redeemed"])),
    section("Liability over time", chart("Liability (points)", [byMetric.liability], ["Liability"])),
    section("Liability by expiry month", expiryChart(liability), expiryTable(liability, summary.currency)),
    section("Top rewards", table("Top rewards by redemptions", [
      { label: "Reward", value: (r) => r.name || r.reward_id },
      { label: "Redemptions", value: (r) => number(r.count), numeric: true },
    ], [...summary.rewards.redemptions].sort((a, b) => b.count - a.count).slice(0, 10),
    { empty: "No reward was redeemed in this period.", testid: "top-rewards" })));
}

function kpis(s) {
  return h("div", { class: "cards", "data-testid": "kpis" },
    card("Members", number(s.members.total), { testid: "kpi-members" }),
    card("Enrolled in period", number(s.members.enrolled), { testid: "kpi-enrolled" }),
    card("Active (30 days)", number(s.members.active_30d), { testid: "kpi-active-30d" }),
    card("Points issued", number(s.points.issued), { testid: "kpi-issued" }),
    card("Points redeemed", number(s.points.redeemed), { testid: "kpi-redeemed" }),
    card("Redemption rate", percent(s.redemption.rate), { testid: "kpi-redemption-rate" }),
    card("Liability", number(s.liability.available.points),
      { testid: "kpi-liability", note: money(s.liability.available.value, s.currency) }),
    card("Breakage rate", percent(s.breakage.rate), { testid: "kpi-breakage" }));
}

function daysBetween(from, to) {
  return (Date.parse(to) - Date.parse(from)) / 86400000;
}

// A period's first day, as the API names it (days are the tenant's: shown as they are, in UTC).
const day = (seconds) => new Date(seconds * 1000).toISOString().slice(0, 10);

const COLOURS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700"];

function width(element) {
  return Math.max(280, Math.min(900, (element.clientWidth || document.body.clientWidth) - 32));
}

// A line chart of one or more timeseries answers sharing their periods.
function chart(title, answers, labels) {
  const holder = h("div", { class: "chart", role: "img", "aria-label": title });
  const periods = answers[0].points.map((p) => Date.parse(p.period + "T00:00:00Z") / 1000);
  const data = [periods, ...answers.map((a) => a.points.map((p) => Number(p.value)))];
  requestAnimationFrame(() => {
    new uPlot({
      width: width(holder.parentElement || holder),
      height: 220,
      scales: { y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      series: [{ label: "Period", value: (u, v) => (v === null ? "—" : day(v)) },
        ...labels.map((label, i) => ({ label, stroke: COLOURS[i], width: 2 }))],
      axes: [{ space: 90, incrs: [86400, 7 * 86400, 28 * 86400, 364 * 86400], values: (u, ticks) => ticks.map(day) }, { size: 60 }],
    }, data, holder);
  });
  return holder;
}

function expiryChart(liability) {
  const months = liability.available.by_expiry_month;
  if (!months.length) return message("No points expire on a date.");
  const holder = h("div", { class: "chart", role: "img", "aria-label": "Liability by expiry month" });
  const data = [months.map((_, i) => i), months.map((m) => Number(m.points))];
  requestAnimationFrame(() => {
    new uPlot({
      width: width(holder.parentElement || holder),
      height: 200,
      scales: { x: { time: false, range: () => [-0.5, months.length - 0.5] }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      series: [{ label: "Month", value: (u, i) => (months[i] ? months[i].month : "—") }, { label: "Points", stroke: COLOURS[0], fill: "rgba(31,111,235,0.3)", paths: uPlot.paths.bars({ size: [0.6] }) }],
      axes: [{ incrs: [1], values: (u, ticks) => ticks.map((t) => (months[t] ? months[t].month : "")) }, { size: 60 }],
    }, data, holder);
  });
  return holder;
}

function expiryTable(liability, currency) {
  const rows = [...liability.available.by_expiry_month];
  rows.push({ month: "No expiry", ...liability.available.without_expiry });
  return table("Available points by expiry month", [
    { label: "Month", value: (r) => r.month },
    { label: "Points", value: (r) => number(r.points), numeric: true },
    { label: "Value", value: (r) => money(r.value, currency), numeric: true },
  ], rows, { testid: "liability-by-month" });
}

