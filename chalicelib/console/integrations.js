// Integrations (admin keys): webhooks with their delivery log and redelivery, API keys (the secret
// shown once), partners and settlements, imports with live progress and row errors, exports.
import * as api from "./api.js";
import { button, clear, date, field, form, h, message, number, section, table } from "./ui.js";

const reload = () => window.dispatchEvent(new HashChangeEvent("hashchange"));
const SCOPES = ["read", "write", "admin"];

export async function render(container) {
  const [webhooks, keys, partners, imports] = await Promise.all([
    api.get("/webhooks"), api.get("/api-keys"), api.get("/partners"), api.get("/imports", { limit: 20 }),
  ]);
  container.append(
    h("h1", {}, "Integrations"),
    section("API keys", keysView(keys.data), keyForm()),
    section("Webhooks", webhooksView(webhooks.data), webhookForm()),
    section("Partners and settlements", partnersView(partners.data), partnerForm()),
    section("Imports", importForm(), importsView(imports.data)),
    section("Exports", exportsView()));
}

// --- API keys ----------------------------------------------------------------------------------

function keysView(keys) {
  return table("API keys", [
    { label: "Name", value: (k) => k.name },
    { label: "Scopes", value: (k) => k.scopes.join(", ") },
    { label: "Created", value: (k) => date(k.created_at) },
    { label: "Revoked", value: (k) => date(k.revoked_at) },
    { label: "", value: (k) => k.revoked_at || k.id === api.me().api_key.id ? "" : button("Revoke", async () => {
      if (!window.confirm(`Revoke the key "${k.name}"? Calls with it are refused from now on.`)) return;
      await api.call("DELETE", `/api-keys/${encodeURIComponent(k.id)}`);
      reload();
    }, { testid: "revoke-" + k.id }) },
  ], keys, { testid: "api-keys" });
}

// The secret is in the create answer only: shown once here, dropped when dismissed or on leaving.
function secretOnce(label, secret, onDone) {
  const box = h("div", { class: "secret", role: "alert", "data-testid": "secret-once" },
    h("p", {}, `${label}: copy it now, it is not shown again.`),
    h("code", { "data-testid": "secret-value" }, secret));
  box.append(button("I have stored it", () => { box.remove(); onDone(); }, { testid: "secret-done" }));
  return box;
}

function keyForm() {
  return form("Create an API key", [
    field({ label: "Name", name: "name", required: true }),
    field({ label: "Scope", name: "scope", options: SCOPES, value: "read" }),
  ], "Create key", async (v) => {
    const created = await api.call("POST", "/api-keys", { body: { name: v.name, scopes: [v.scope] } });
    return secretOnce(`The secret of "${created.name}"`, created.secret, reload);
  }, { testid: "key-form" });
}

// --- webhooks ----------------------------------------------------------------------------------

function webhooksView(webhooks) {
  return webhooks.length ? webhooks.map((w) => {
    const log = h("div");
    return h("details", { class: "webhook", "data-testid": "webhook" },
      h("summary", {}, `${w.url} · ${w.status} · ${w.events.join(", ")}`),
      w.disabled_reason ? message(`Disabled: ${w.disabled_reason}`, "warning") : null,
      button("Show the delivery log", () => deliveries(log, w), { testid: "deliveries-" + w.id }), log);
  }) : h("p", { class: "empty" }, "No webhooks.");
}

async function deliveries(holder, webhook) {
  const page = await api.get(`/webhooks/${encodeURIComponent(webhook.id)}/deliveries`, { limit: 50 });
  clear(holder, table(`Deliveries to ${webhook.url}`, [
    { label: "Event", value: (d) => d.event_type },
    { label: "Status", value: (d) => d.status },
    { label: "Attempts", value: (d) => number(d.attempts), numeric: true },
    { label: "Answer", value: (d) => d.response_code ?? "—", numeric: true },
    { label: "Updated", value: (d) => date(d.updated_at) },
    { label: "", value: (d) => button("Redeliver", async () => {
      await api.call("POST", `/webhooks/${encodeURIComponent(webhook.id)}/deliveries/${encodeURIComponent(d.id)}/redeliver`);
      await deliveries(holder, webhook);
    }) },
  ], page.data, { empty: "No delivery yet.", testid: "deliveries" }));
}

function webhookForm() {
  return form("Add a webhook", [
    field({ label: "URL", name: "url", type: "url", required: true }),
    field({ label: "Event types (comma separated, * for all)", name: "events", value: "*", required: true }),
    field({ label: "Description", name: "description" }),
  ], "Add webhook", async (v) => {
    const body = { url: v.url, events: v.events.split(",").map((e) => e.trim()).filter(Boolean) };
    if (v.description) body.description = v.description;
    const created = await api.call("POST", "/webhooks", { body });
    return secretOnce("The signing secret of this webhook", created.secret, reload);
  }, { testid: "webhook-form" });
}

// --- partners ----------------------------------------------------------------------------------

function partnersView(partners) {
  const settlement = h("div", { "data-testid": "settlement" });
  return [table("Partners", [
    { label: "Partner", value: (p) => p.name },
    { label: "Id", value: (p) => p.partner_id },
    { label: "Earn rate", value: (p) => p.earn_rate, numeric: true },
    { label: "Redeem rate", value: (p) => p.redeem_rate, numeric: true },
    { label: "", value: (p) => button("Settlement", () => showSettlement(settlement, p), { testid: "settle-" + p.partner_id }) },
  ], partners, { empty: "No partners.", testid: "partners" }), settlement];
}

async function showSettlement(holder, partner) {
  const s = await api.get(`/partners/${encodeURIComponent(partner.partner_id)}/settlement`);
  clear(holder, h("h3", {}, `Settlement of ${partner.name}, ${s.from_date} to ${s.to_date}`),
    table("Settlement", [
      { label: "", value: (r) => r[0] },
      { label: "Points", value: (r) => number(r[1]), numeric: true },
      { label: `Value (${s.currency})`, value: (r) => r[2], numeric: true },
    ], [["Issued", s.issued_points, s.issued_value], ["Redeemed", s.redeemed_points, s.redeemed_value],
      ["Reversed", s.reversed_points, s.reversed_value], ["Net issued", s.net_issued_points, ""]], { testid: "settlement-table" }));
}

function partnerForm() {
  return form("Add a partner", [
    field({ label: "Partner id", name: "partner_id", required: true }),
    field({ label: "Name", name: "name", required: true }),
    field({ label: "Earn rate (money per point issued)", name: "earn_rate", required: true }),
    field({ label: "Redeem rate (money per point redeemed)", name: "redeem_rate", required: true }),
  ], "Add partner", async (v) => {
    await api.call("POST", "/partners", { body: v });
    reload();
    return null;
  }, { testid: "partner-form" });
}

// --- imports and exports -----------------------------------------------------------------------

function importsView(imports) {
  return table("Imports", [
    { label: "File", value: (i) => h("a", { href: "#/integrations", "data-import": i.id, onclick: (e) => { e.preventDefault(); follow(i.id, e.target.closest("section").querySelector("[data-testid=import-progress]")); } }, i.filename || i.id) },
    { label: "Status", value: (i) => i.status },
    { label: "Rows", value: (i) => `${number(i.counts.processed)} / ${number(i.counts.total)}`, numeric: true },
    { label: "Failed", value: (i) => number(i.counts.failed), numeric: true },
    { label: "Created", value: (i) => date(i.created_at) },
  ], imports, { empty: "No imports yet.", testid: "imports" });
}

function importForm() {
  const progress = h("div", { "data-testid": "import-progress", "aria-live": "polite" });
  const file = h("input", { type: "file", id: "import-file", accept: ".csv,text/csv" });
  const chooser = h("div", { class: "field" }, h("label", { for: "import-file" }, "CSV file"), file);
  const element = form("Import members", [chooser,
    field({ label: "…or paste the CSV", name: "csv", type: "textarea", placeholder: "external_id,email,name,points" })],
  "Import", async (v) => {
    const chosen = file.files[0];
    const csv = chosen ? await chosen.text() : v.csv;
    if (!csv) return message("Choose a file or paste the CSV.", "error");
    const started = await api.call("POST", "/imports", {
      body: { csv, filename: chosen ? chosen.name : "pasted.csv" }, idempotencyKey: api.newIdempotencyKey(),
    });
    follow(started.id, progress);
    return null;
  }, { testid: "import-form" });
  return [element, progress];
}

const FINISHED = new Set(["completed", "failed"]);

// Live progress: the import is read every two seconds until it finishes (or the screen changes).
async function follow(importId, holder) {
  const screen = location.hash;
  for (;;) {
    const job = await api.get(`/imports/${encodeURIComponent(importId)}`);
    const c = job.counts;
    const bar = h("progress", { max: Math.max(c.total, 1), value: c.processed, "aria-label": "Rows processed" });
    clear(holder, h("p", {}, `${job.filename || job.id}: ${job.status} · ${number(c.processed)} of ${number(c.total)} rows · ${number(c.imported)} imported, ${number(c.skipped)} skipped, ${number(c.failed)} failed`), bar);
    if (job.error_count) {
      const errors = await api.get(`/imports/${encodeURIComponent(importId)}/errors`, { limit: 100 });
      holder.append(table("Row errors", [
        { label: "Row", value: (e) => e.row, numeric: true },
        { label: "External id", value: (e) => e.external_id || "—" },
        { label: "Outcome", value: (e) => e.outcome },
        { label: "Error", value: (e) => `${e.message} (${e.code})` },
      ], errors.data, { testid: "import-errors" }));
    }
    if (job.finished_at || FINISHED.has(job.status) || location.hash !== screen || !holder.isConnected) return;
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

function exportsView() {
  const download = (label, path) => button(label, async () => {
    const csv = await api.text(path);
    const link = h("a", { href: URL.createObjectURL(new Blob([csv], { type: "text/csv" })), download: path.split("/").pop() });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }, { testid: "export-" + path.split("/").pop().replace(".csv", "") });
  return h("div", { class: "actions" }, download("Download members (CSV)", "/exports/members.csv"),
    download("Download the ledger (CSV)", "/exports/ledger.csv"));
}
