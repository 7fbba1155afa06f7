// Program: rates and expiry (a form), earning rules, tiers, rewards with stock, plans and referral
// settings; what an order would earn (the preview) and, where the insights API offers it, the
// what-if of a draft program. Editing needs an admin key; a read key sees the same, read-only.
import * as api from "./api.js";
import { button, clear, date, field, form, h, message, number, section, table } from "./ui.js";

export async function render(container) {
  const [program, rules, tiers, rewards, plans, referrals] = await Promise.all([
    api.get("/program"), api.get("/program/rules"), api.get("/program/tiers"),
    api.get("/rewards", { limit: 100 }), api.get("/program/plans"), api.get("/program/referrals"),
  ]);
  const admin = api.can("admin");
  container.append(
    h("h1", {}, "Program"),
    section("Rates and expiry", settingsView(program), admin ? settingsForm(program) : null),
    section("What would this order earn?", previewForm()),
    section("Earning rules", rulesView(rules.data, admin), admin ? jsonEditor("New earning rule", "POST", "/program/rules",
      { name: "Double points on weekends", kind: "order_multiplier", factor: "2", weekdays: ["sat", "sun"] }, "Add rule") : null),
    section("Tiers", tiersView(tiers.data), admin ? jsonEditor("Tier programme", "PUT", "/program/tiers",
      tierDraft(tiers.data), "Save tiers") : null),
    section("Rewards", rewardsView(rewards.data, admin), admin ? rewardForm() : null),
    section("Plans", plansView(plans.data), admin ? jsonEditor("Plans", "PUT", "/program/plans",
      { plans: plans.data.map(({ plan_id, name, tier, multiplier, perks, join_bonus }) => ({ plan_id, name, tier, multiplier, perks, join_bonus })) },
      "Save plans") : null),
    section("Referrals", referralsView(referrals.data), admin ? jsonEditor("Referral settings", "PUT", "/program/referrals",
      referralDraft(referrals.data), "Save referral settings") : null),
    admin ? section("What if: a draft program", whatIf(program)) : null);
}

const reload = () => window.dispatchEvent(new HashChangeEvent("hashchange"));

function settingsView(p) {
  const expiry = p.expiry.kind === "none" ? "Points never expire"
    : `${p.expiry.kind.replace(/_/g, " ")}: ${[p.expiry.days && p.expiry.days + " days", p.expiry.months && p.expiry.months + " months", p.expiry.period].filter(Boolean).join(", ")}`;
  const rows = [
    ["Points per currency unit", p.points_per_currency_unit], ["Rounding", p.rounding], ["Expiry", expiry],
    ["Pending days", p.pending_days], ["Expiry warning (days)", p.expiry_warning_days], ["Birthday bonus", p.birthday_bonus],
    ["Reversal claws back", p.reversal_clawback ? "yes" : "no"], ["Earn on shipping", p.earn_on_shipping ? "yes" : "no"],
    ["Earn on tax", p.earn_on_tax ? "yes" : "no"], ["Updated", date(p.updated_at)],
  ];
  return h("dl", { class: "profile", "data-testid": "program-settings" },
    rows.map(([label, value]) => [h("dt", {}, label), h("dd", {}, String(value ?? "—"))]));
}

function settingsForm(p) {
  return form("Edit rates and expiry", [
    field({ label: "Points per currency unit", name: "points_per_currency_unit", value: p.points_per_currency_unit, required: true }),
    field({ label: "Rounding", name: "rounding", options: ["floor", "nearest", "ceil"], value: p.rounding }),
    field({ label: "Expiry", name: "kind", options: [["none", "Never"], ["fixed_period", "A fixed time after earning"], ["end_of_period", "At the end of a period"], ["inactivity", "After inactivity"]], value: p.expiry.kind }),
    field({ label: "Expiry days", name: "days", type: "number", min: 1, value: p.expiry.days }),
    field({ label: "Expiry months", name: "months", type: "number", min: 1, value: p.expiry.months }),
    field({ label: "Expiry period", name: "period", options: [["", "—"], "year", "quarter", "month"], value: p.expiry.period || "" }),
    field({ label: "Pending days", name: "pending_days", type: "number", min: 0, value: p.pending_days }),
    field({ label: "Expiry warning (days)", name: "expiry_warning_days", type: "number", min: 0, value: p.expiry_warning_days }),
    field({ label: "Birthday bonus (points)", name: "birthday_bonus", type: "number", min: 0, value: p.birthday_bonus }),
  ], "Save rates and expiry", async (v) => {
    const { updated_at: _ignored, ...current } = p;
    const expiry = { ...current.expiry, kind: v.kind, days: v.days ? Number(v.days) : null, months: v.months ? Number(v.months) : null, period: v.period || null };
    await api.call("PUT", "/program", {
      body: {
        ...current, points_per_currency_unit: v.points_per_currency_unit, rounding: v.rounding, expiry,
        pending_days: Number(v.pending_days), expiry_warning_days: Number(v.expiry_warning_days), birthday_bonus: Number(v.birthday_bonus),
      },
    });
    reload();
    return message("Saved.", "success");
  }, { testid: "program-form" });
}

function previewForm() {
  const result = h("div", { "data-testid": "preview-result" });
  const currency = api.me().tenant.currency;
  return [form("Preview an order", [
    field({ label: "Order total", name: "total", required: true, placeholder: "42.00" }),
    field({ label: `Currency`, name: "currency", value: currency, required: true }),
    field({ label: "Member id (optional: their tier counts)", name: "member_id" }),
  ], "Preview", async (v) => {
    const body = { order: { id: "console-preview", total: v.total, currency: v.currency } };
    if (v.member_id) body.member_id = v.member_id;
    const answer = await api.call("POST", "/program/preview", { body });
    clear(result, h("p", { class: "big" }, h("strong", { "data-testid": "preview-points" }, number(answer.points)), " points"),
      table("Breakdown", [
        { label: "Part", value: (b) => b.name || b.source },
        { label: "Points", value: (b) => number(b.points), numeric: true },
      ], answer.breakdown, { empty: "" }));
    return null;
  }, { testid: "preview" }), result];
}

function rulesView(rules, admin) {
  return table("Earning rules", [
    { label: "Name", value: (r) => r.name },
    { label: "Kind", value: (r) => r.kind },
    { label: "Factor / points", value: (r) => r.factor ?? r.points ?? "—" },
    { label: "Status", value: (r) => r.status },
    { label: "", value: (r) => admin && r.status !== "ended"
      ? button("End", async () => { await api.call("POST", `/program/rules/${encodeURIComponent(r.id)}/end`); reload(); }) : "" },
  ], rules, { empty: "No earning rule: the base rate applies.", testid: "rules" });
}

function activeOf(versions) {
  return versions.find((v) => v.status === "active") || versions[0] || null;
}

function tiersView(versions) {
  const active = activeOf(versions);
  if (!active) return h("p", { class: "empty", "data-testid": "tiers" }, "No tiers.");
  return [h("p", {}, `Qualifying on ${active.metric}, window ${active.window.kind}${active.window.months ? " " + active.window.months + " months" : ""}, from ${date(active.effective_from)}.`),
    table("Tiers", [
      { label: "Tier", value: (t) => t.name },
      { label: "Threshold", value: (t) => t.threshold, numeric: true },
      { label: "Multiplier", value: (t) => t.multiplier, numeric: true },
      { label: "Perks", value: (t) => t.perks.join(", ") || "—" },
    ], active.tiers, { testid: "tiers" })];
}

function tierDraft(versions) {
  const active = activeOf(versions);
  if (!active) return { metric: "points", window: { kind: "rolling_months", months: 12 }, tiers: [{ name: "silver", threshold: 500 }, { name: "gold", threshold: 1000, multiplier: "1.5" }] };
  return { metric: active.metric, window: active.window, grace_periods: active.grace_periods, tiers: active.tiers };
}

function rewardsView(rewards, admin) {
  return table("Rewards", [
    { label: "Reward", value: (r) => r.name },
    { label: "Type", value: (r) => r.type },
    { label: "Cost (points)", value: (r) => number(r.points_cost), numeric: true },
    { label: "Stock", value: (r) => (r.stock === null ? "unlimited" : number(r.stock)), numeric: true },
    { label: "Remaining", value: (r) => (r.remaining_stock === null ? "—" : number(r.remaining_stock)), numeric: true },
    { label: "Issued", value: (r) => number(r.issued), numeric: true },
    { label: "Status", value: (r) => r.status },
    { label: "", value: (r) => admin && r.status !== "archived" ? stockEditor(r) : "" },
  ], rewards, { empty: "No rewards yet.", testid: "rewards" });
}

function stockEditor(reward) {
  return form(`Stock of ${reward.name}`, [
    field({ label: "New stock", name: "stock", type: "number", min: 0, value: reward.stock ?? "" }),
  ], "Set stock", async (v) => {
    await api.call("PATCH", `/rewards/${encodeURIComponent(reward.id)}`, { body: { stock: v.stock === "" ? null : Number(v.stock) } });
    reload();
    return null;
  });
}

function rewardForm() {
  return form("New reward", [
    field({ label: "Name", name: "name", required: true }),
    field({ label: "Type", name: "type", options: ["fixed_discount", "percent_discount", "free_shipping", "free_product", "gift_card", "charity_donation", "experience"], value: "free_product" }),
    field({ label: "Cost (points)", name: "points_cost", type: "number", min: 1, required: true }),
    field({ label: "Stock (empty: unlimited)", name: "stock", type: "number", min: 0 }),
    field({ label: "Amount (discounts, gift cards)", name: "amount" }),
    field({ label: "SKU (free product)", name: "sku" }),
  ], "Add reward", async (v) => {
    const body = { name: v.name, type: v.type, points_cost: Number(v.points_cost) };
    if (v.stock !== "") body.stock = Number(v.stock);
    if (v.amount) body.amount = v.amount;
    if (v.sku) body.sku = v.sku;
    await api.call("POST", "/rewards", { body, idempotencyKey: api.newIdempotencyKey() });
    reload();
    return null;
  }, { testid: "reward-form" });
}

function plansView(plans) {
  return table("Plans", [
    { label: "Plan", value: (p) => p.name },
    { label: "Id", value: (p) => p.plan_id },
    { label: "Tier", value: (p) => p.tier || "—" },
    { label: "Multiplier", value: (p) => p.multiplier, numeric: true },
    { label: "Join bonus", value: (p) => number(p.join_bonus), numeric: true },
  ], plans, { empty: "No paid plans.", testid: "plans" });
}

function referralsView(versions) {
  const active = activeOf(versions);
  if (!active) return h("p", { class: "empty", "data-testid": "referrals" }, "Referrals are not set up.");
  const rows = [["Enabled", active.enabled ? "yes" : "no"], ["Referrer points", active.referrer_points],
    ["Referee points", active.referee_points], ["Minimum order", active.min_order_total || "—"],
    ["Cap", active.cap ? JSON.stringify(active.cap) : "none"], ["From", date(active.effective_from)]];
  return h("dl", { class: "profile", "data-testid": "referrals" }, rows.map(([l, v]) => [h("dt", {}, l), h("dd", {}, String(v))]));
}

function referralDraft(versions) {
  const active = activeOf(versions);
  if (!active) return { enabled: true, referrer_points: 500, referee_points: 250 };
  const { enabled, referrer_points, referee_points, min_order_total, cap, referee_rewarded_when_capped } = active;
  return { enabled, referrer_points, referee_points, min_order_total, cap, referee_rewarded_when_capped };
}

// A JSON document edited as text, sent as it is: the API validates it and says what is wrong.
function jsonEditor(label, method, path, draft, submitLabel) {
  return h("details", { class: "editor" }, h("summary", {}, `Edit: ${label}`),
    form(label, [field({ label: `${label} (JSON, ${method} /v1${path})`, name: "document", type: "textarea", value: JSON.stringify(draft, null, 2) })],
      submitLabel, async (v) => {
        let body;
        try {
          body = JSON.parse(v.document);
        } catch (failure) {
          return message("Not valid JSON: " + failure.message, "error");
        }
        await api.call(method, path, { body, idempotencyKey: method === "POST" ? api.newIdempotencyKey() : undefined });
        reload();
        return message("Saved.", "success");
      }));
}

function whatIf(program) {
  const result = h("div", { "data-testid": "what-if-result" });
  const { updated_at: _ignored, ...draft } = program;
  return [form("What if", [
    field({ label: "Draft program (JSON)", name: "program", type: "textarea", value: JSON.stringify(draft, null, 2) }),
    field({ label: "Days of history to replay", name: "days", type: "number", min: 1, value: 90 }),
  ], "Compare", async (v) => {
    let body;
    try {
      body = { program: JSON.parse(v.program), days: Number(v.days) };
    } catch (failure) {
      return message("Not valid JSON: " + failure.message, "error");
    }
    let answer;
    try {
      answer = await api.call("POST", "/insights/what-if", { body });
    } catch (failure) {
      if (failure.status === 404 || failure.status === 403) return message("The what-if is not available on this deployment (the insights API answered " + failure.status + ").", "warning");
      throw failure;
    }
    clear(result, table("Current program and draft", [
      { label: "", value: (r) => r.label },
      { label: "Current", value: (r) => number(r.current), numeric: true },
      { label: "Draft", value: (r) => number(r.draft), numeric: true },
      { label: "Difference", value: (r) => number(r.difference), numeric: true },
    ], [{ label: "Points issued", ...answer.points_issued }, { label: "Liability", ...answer.liability }]),
    h("p", {}, `Over ${number(answer.orders)} orders.`));
    return null;
  }, { testid: "what-if" }), result];
}
