// Members: find one (external id, card code, referral code or id), then its page: balance, tier and
// progress, lots, the ledger with paging, events, and the point actions the key allows.
import * as api from "./api.js";
import { button, card, clear, date, field, form, h, message, number, section, table } from "./ui.js";

const LOOKUPS = [["external_id", "External id"], ["card_code", "Card code"], ["referral_code", "Referral code"], ["id", "Member id"]];
const PAGE = 20;

export async function render(container, parts) {
  if (parts[0]) return memberPage(container, parts[0]);
  return finder(container);
}

function memberLink(member) {
  return h("a", { href: "#/members/" + encodeURIComponent(member.id) }, member.name || member.external_id || member.id);
}

const MEMBER_COLUMNS = [
  { label: "Name", value: memberLink },
  { label: "External id", value: (m) => m.external_id || "—" },
  { label: "Email", value: (m) => m.email || "—" },
  { label: "Card", value: (m) => m.card_code || "—" },
  { label: "Joined", value: (m) => date(m.created_at) },
];

async function finder(container) {
  const results = h("div", { class: "results" });
  const search = form("Find a member", [
    field({ label: "Find by", name: "by", options: LOOKUPS, value: "external_id" }),
    field({ label: "Value", name: "value", required: true }),
  ], "Find", async ({ by, value }) => {
    let found;
    if (by === "id") found = [await api.get("/members/" + encodeURIComponent(value))];
    else found = (await api.get("/members", { [by]: value, limit: PAGE })).data;
    if (found.length === 1) {
      location.hash = "#/members/" + encodeURIComponent(found[0].id);
      return null;
    }
    clear(results, table("Members found", MEMBER_COLUMNS, found, { empty: "No member matches.", testid: "found" }));
    return null;
  }, { testid: "find-member" });
  const list = h("div");
  const enrol = api.can("write") ? section("Enrol a member", form("Enrol a member", [
    field({ label: "External id", name: "external_id" }),
    field({ label: "Name", name: "name" }),
    field({ label: "Email", name: "email", type: "email" }),
  ], "Enrol", async (v) => {
    const member = await api.call("POST", "/members", { body: compact(v), idempotencyKey: api.newIdempotencyKey() });
    location.hash = "#/members/" + encodeURIComponent(member.id);
    return null;
  }, { testid: "enrol" })) : null;
  container.append(h("h1", {}, "Members"), section("Find a member", search, results),
    section("Recent members", list), enrol);
  await pagedMembers(list, null);
}

async function pagedMembers(holder, cursor) {
  const page = await api.get("/members", { limit: PAGE, cursor });
  clear(holder, table("Members", MEMBER_COLUMNS, page.data, { empty: "No members yet.", testid: "members" }),
    page.next_cursor ? button("More members", () => pagedMembers(holder, page.next_cursor)) : null);
}

function compact(object) {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== "" && v !== null && v !== undefined));
}

async function memberPage(container, memberId) {
  const path = "/members/" + encodeURIComponent(memberId);
  const [member, firstBalance] = await Promise.all([api.get(path), api.get(path + "/balance")]);
  let balance = firstBalance;
  const balanceHolder = h("div");
  const lotsHolder = h("div");
  const ledgerHolder = h("div");
  const eventsHolder = h("div");
  const rewardsHolder = h("div");
  const ledger = { cursors: [null], index: 0, page: null };

  async function refresh() {
    balance = await api.get(path + "/balance");
    clear(balanceHolder, balanceView(balance));
    ledger.cursors = [null];
    ledger.index = 0;
    await Promise.all([showRewards(rewardsHolder, path, refresh), showLedger(), showEvents(eventsHolder, member.id)]);
  }

  async function showLedger() {
    const page = await api.get(path + "/transactions", { limit: PAGE, cursor: ledger.cursors[ledger.index] });
    ledger.page = page;
    if (page.next_cursor) ledger.cursors[ledger.index + 1] = page.next_cursor;
    clear(ledgerHolder,
      table("Ledger", [
        { label: "When", value: (t) => date(t.occurred_at) },
        { label: "Type", value: (t) => t.type },
        { label: "Points", value: (t) => number(t.points), numeric: true },
        { label: "Balance after", value: (t) => number(t.balance_after), numeric: true },
        { label: "Reference", value: (t) => t.reference || "—" },
        { label: "Description", value: (t) => t.reason ? `${t.description || ""} (reason: ${t.reason})` : t.description || "—" },
      ], page.data, { empty: "No movements yet.", testid: "ledger" }),
      h("div", { class: "pager" },
        button("Newer", async () => { ledger.index -= 1; await showLedger(); }, { testid: "ledger-newer" }),
        h("span", {}, `Page ${ledger.index + 1}`),
        button("Older", async () => { ledger.index += 1; await showLedger(); }, { testid: "ledger-older" })));
    ledgerHolder.querySelector("[data-testid=ledger-newer]").disabled = ledger.index === 0;
    ledgerHolder.querySelector("[data-testid=ledger-older]").disabled = !page.next_cursor;
    clear(lotsHolder, lotsView(page.data, balance));
  }

  clear(balanceHolder, balanceView(balance));
  container.append(
    h("p", {}, h("a", { href: "#/members" }, "← Members")),
    h("h1", { "data-testid": "member-name" }, member.name || member.external_id || member.id),
    profile(member),
    section("Balance", balanceHolder),
    actions(path, refresh),
    section("Rewards", rewardsHolder),
    section("Lots with an expiry", lotsHolder),
    section("Ledger", ledgerHolder),
    section("Events", eventsHolder));
  await Promise.all([showLedger(), showEvents(eventsHolder, member.id), showRewards(rewardsHolder, path, refresh)]);
}

function profile(member) {
  const rows = [
    ["Member id", member.id], ["External id", member.external_id], ["Email", member.email],
    ["Card code", member.card_code], ["Referral code", member.referral_code], ["Birthday", member.birthday],
    ["Segments", (member.segments || []).join(", ")], ["Joined", date(member.created_at)],
  ];
  return h("dl", { class: "profile", "data-testid": "profile" },
    rows.map(([label, value]) => [h("dt", {}, label), h("dd", {}, value || "—")]));
}

function balanceView(b) {
  const tier = b.tier_status;
  const progress = tier && tier.progress
    ? `${number(tier.progress.remaining)} ${tier.progress.metric} to ${tier.progress.next_tier}` : null;
  return h("div", { class: "cards", "data-testid": "balance" },
    card("Available", number(b.available), { testid: "balance-available" }),
    card("Pending", number(b.pending), { testid: "balance-pending" }),
    card("Expiring soon", b.expiring_soon ? number(b.expiring_soon.points) : "0",
      { testid: "balance-expiring", note: b.expiring_soon ? "on " + date(b.expiring_soon.at) : null }),
    card("Tier", b.tier || (tier && tier.tier) || "—", { testid: "balance-tier", note: progress }),
    card("Lifetime earned", number(b.lifetime_earned), { testid: "balance-earned" }),
    card("Lifetime redeemed", number(b.lifetime_redeemed), { testid: "balance-redeemed" }),
    b.plan ? card("Plan", b.plan.name || b.plan.plan_id, { note: "until " + date(b.plan.ends_at) }) : null);
}

// The lots the page of the ledger shows: each earn that carries an expiry date.
function lotsView(transactions, balance) {
  const lots = transactions.filter((t) => t.expires_at && t.points > 0);
  return [
    balance.expiring_soon ? message(`${number(balance.expiring_soon.points)} points expire on ${date(balance.expiring_soon.at)}.`) : null,
    table("Lots with an expiry (from this page of the ledger)", [
      { label: "Earned", value: (t) => date(t.occurred_at) },
      { label: "Points", value: (t) => number(t.points), numeric: true },
      { label: "Expires", value: (t) => date(t.expires_at) },
      { label: "Matures", value: (t) => date(t.matures_at) },
    ], lots, { empty: "No lot on this page of the ledger expires.", testid: "lots" }),
  ];
}

async function showEvents(holder, memberId) {
  const page = await api.get("/events", { limit: 100 });
  const mine = page.data.filter((e) => e.member_id === memberId);
  clear(holder, table("Events of this member (among the brand's latest 100)", [
    { label: "When", value: (e) => date(e.created_at) },
    { label: "Type", value: (e) => e.type },
    { label: "Details", value: (e) => eventSummary(e.data) },
  ], mine, { empty: "No recent event of this member.", testid: "events" }));
}

// Earn, redeem, reverse (write: points earned under a reference, so many of them) and adjust
// (admin). Each form holds one Idempotency-Key until it succeeds: a double click, or a retry after
// a lost answer, is the same action and credits once.
function actions(path, refresh) {
  if (!api.can("write")) return null;
  const forms = [
    action("Earn", "earn", [
      field({ label: "Points", name: "points", type: "number", min: 1, required: true }),
      field({ label: "Reference", name: "reference" }),
      field({ label: "Description", name: "description" }),
    ], (v) => ({ points: Number(v.points), reference: v.reference, description: v.description })),
    action("Redeem", "redeem", [
      field({ label: "Points", name: "points", type: "number", min: 1, required: true }),
      field({ label: "Reference", name: "reference" }),
      field({ label: "Description", name: "description" }),
    ], (v) => ({ points: Number(v.points), reference: v.reference, description: v.description })),
    action("Reverse", "reverse", [
      field({ label: "Reference of the earn", name: "reference", required: true, hint: "The order id the points were earned with." }),
      field({ label: "Points to take back", name: "points", type: "number", min: 1, required: true }),
    ], (v) => ({ reference: v.reference, points: Number(v.points) })),
    api.can("admin") ? action("Adjust", "adjust", [
      field({ label: "Points (negative to remove)", name: "points", type: "number", required: true }),
      field({ label: "Reason", name: "reason", required: true }),
    ], (v) => ({ points: Number(v.points), reason: v.reason })) : null,
  ];

  function action(label, verb, fields, bodyOf) {
    let idempotencyKey = api.newIdempotencyKey();
    return h("div", { class: "action" }, h("h3", {}, label), form(label, fields, label, async (v, element) => {
      const body = compact(bodyOf(v));
      const answer = await api.call("POST", `${path}/${verb}`, { body, idempotencyKey });
      idempotencyKey = api.newIdempotencyKey();
      element.reset();
      await refresh();
      return message(`${label}: ${number(answer.transaction.points)} points · balance ${number(answer.balance.available)}.`, "success");
    }, { testid: "action-" + verb }));
  }
  return section("Actions", h("div", { class: "actions" }, forms));
}

// The figures worth a glance; the whole payload is in the API (GET /v1/events).
function eventSummary(data) {
  const parts = [];
  for (const name of ["points", "balance_after", "reference", "reason", "tier", "from_tier", "to_tier", "plan_id", "reward_id"]) {
    if (data[name] !== undefined && data[name] !== null && typeof data[name] !== "object") parts.push(`${name.replace(/_/g, " ")}: ${data[name]}`);
  }
  return parts.join(" · ") || "—";
}

// The catalogue as this member sees it; Redeem (write) debits the points and issues a coupon.
// One Idempotency-Key per reward shown: a double click is one redemption.
async function showRewards(holder, path, refresh) {
  const page = await api.get(path + "/rewards", { limit: 50 });
  const coupon = h("div", { "data-testid": "coupon" });
  clear(holder, table("Rewards for this member", [
    { label: "Reward", value: (r) => r.reward.name },
    { label: "Cost (points)", value: (r) => number(r.reward.points_cost), numeric: true },
    { label: "Remaining stock", value: (r) => (r.reward.remaining_stock === null ? "unlimited" : number(r.reward.remaining_stock)), numeric: true },
    { label: "", value: (r) => {
      if (!r.redeemable) return r.points_short ? `${number(r.points_short)} points short` : r.locked_because.join(", ") || "not available";
      if (!api.can("write")) return "redeemable";
      const idempotencyKey = api.newIdempotencyKey();
      return button("Redeem", async () => {
        const answer = await api.call("POST", `${path}/rewards/${encodeURIComponent(r.reward.id)}/redeem`, { idempotencyKey });
        await refresh();
        clear(holder.querySelector("[data-testid=coupon]"), message(`${r.reward.name}: coupon ${answer.coupon.code} · balance ${number(answer.balance.available)}.`, "success"));
      }, { testid: "redeem-reward-" + r.reward.id });
    } },
  ], page.data, { empty: "No rewards in the catalogue.", testid: "member-rewards" }), coupon);
}
