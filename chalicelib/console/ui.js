// DOM helpers. Text from the API (member names, descriptions, anything a member or an integrator
// typed) is only ever set as text (text nodes, textContent): markup is never parsed from strings.

export function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "style" || name.startsWith("on") && typeof value !== "function") {
      throw new Error("inline style and handler attributes are not allowed");
    }
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

let fieldCounter = 0;

// A labelled input: {label, name, type, value, required, options (for a select), hint}.
export function field({ label, name, type = "text", value, required, options, hint, min, step, placeholder }) {
  const id = "f-" + name + "-" + ++fieldCounter;
  let control;
  if (options) {
    control = h("select", { id, name, required },
      options.map((option) => {
        const [optionValue, text] = Array.isArray(option) ? option : [option, option];
        return h("option", { value: optionValue, selected: String(optionValue) === String(value) }, text);
      }));
  } else if (type === "textarea") {
    control = h("textarea", { id, name, required, rows: 8, spellcheck: "false", placeholder });
    control.value = value ?? "";
  } else if (type === "checkbox") {
    control = h("input", { id, name, type, checked: Boolean(value) });
    return h("div", { class: "field check" }, control, h("label", { for: id }, label));
  } else {
    control = h("input", { id, name, type, required, min, step, placeholder, autocomplete: "off" });
    if (value !== undefined && value !== null) control.value = value;
  }
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hint ? h("small", {}, hint) : null);
}

export function values(form) {
  const result = {};
  for (const element of form.elements) {
    if (!element.name) continue;
    result[element.name] = element.type === "checkbox" ? element.checked : element.value.trim();
  }
  return result;
}

// A table: columns [{label, value: row => text or Node, numeric}], with a caption for screen readers.
export function table(caption, columns, rows, { empty = "Nothing yet.", testid } = {}) {
  if (!rows.length) return h("p", { class: "empty", "data-testid": testid }, empty);
  return h("div", { class: "table-wrap" },
    h("table", { "data-testid": testid },
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.numeric ? "num" : null }, c.label)))),
      h("tbody", {}, rows.map((row) => h("tr", {},
        columns.map((c) => h("td", { class: c.numeric ? "num" : null, "data-label": c.label }, c.value(row))))))));
}

export function card(label, value, { testid, note } = {}) {
  return h("div", { class: "card", "data-testid": testid },
    h("span", { class: "card-label" }, label),
    h("span", { class: "card-value" }, value === null || value === undefined ? "—" : String(value)),
    note ? h("span", { class: "card-note" }, note) : null);
}

export function section(title, ...children) {
  const id = "s-" + title.toLowerCase().replace(/[^a-z0-9]+/g, "-");
  return h("section", { class: "panel", "aria-labelledby": id }, h("h2", { id }, title), children);
}

export function message(text, kind = "info") {
  return h("p", { class: "message " + kind, role: kind === "error" ? "alert" : "status" }, text);
}

export function errorText(failure) {
  if (failure && failure.code) return `${failure.message} (${failure.code})`;
  return String(failure && failure.message ? failure.message : failure);
}

// A form that runs `action(values)` on submit, disables itself while it runs, and says how it went.
export function form(label, fields, submitLabel, action, { testid } = {}) {
  const outcome = h("div", { class: "outcome", "aria-live": "polite" });
  const button = h("button", { type: "submit" }, submitLabel);
  const element = h("form", { class: "form", "aria-label": label, "data-testid": testid }, fields, button, outcome);
  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (element.dataset.busy === "true") return;
    element.dataset.busy = "true";
    button.disabled = true;
    clear(outcome);
    try {
      const shown = await action(values(element), element);
      if (shown) clear(outcome, shown);
    } catch (failure) {
      clear(outcome, message(errorText(failure), "error"));
    } finally {
      element.dataset.busy = "false";
      button.disabled = false;
    }
  });
  return element;
}

export function button(label, action, { kind, testid } = {}) {
  const element = h("button", { type: "button", class: kind, "data-testid": testid }, label);
  element.addEventListener("click", async () => {
    if (element.disabled) return;
    element.disabled = true;
    try {
      await action(element);
    } finally {
      element.disabled = false;
    }
  });
  return element;
}

export const number = (value) => (value === null || value === undefined ? "—" : Number(value).toLocaleString("en-US"));

export function percent(rate) {
  if (rate === null || rate === undefined) return "—";
  return (Number(rate) * 100).toFixed(1) + "%";
}

export const date = (iso) => (iso ? String(iso).replace("T", " ").replace(/\.\d+/, "").replace("+00:00", "Z") : "—");

export function money(value, currency) {
  if (value === null || value === undefined) return "—";
  return `${value} ${currency || ""}`.trim();
}
