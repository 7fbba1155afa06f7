// The console's shell: sign-in, navigation between screens (the part after # names the screen),
// and sign-out. Every screen is a module exporting render(container, route).
import * as api from "./api.js";
import { clear, errorText, h, message } from "./ui.js";
import * as overview from "./overview.js";
import * as members from "./members.js";
import * as program from "./program.js";
import * as integrations from "./integrations.js";

const SCREENS = { overview, members, program, integrations };
const ADMIN_SCREENS = new Set(["integrations"]);

const signInSection = document.getElementById("sign-in");
const signInForm = document.getElementById("sign-in-form");
const signInError = document.getElementById("sign-in-error");
const header = document.querySelector("header.top");
const screen = document.getElementById("screen");
const status = document.getElementById("status");

function showSignIn(reason) {
  api.forget();
  header.hidden = true;
  screen.hidden = true;
  clear(screen);
  signInSection.hidden = false;
  signInError.textContent = reason || "";
  signInForm.reset();
  document.getElementById("api-key").focus();
}

function showShell() {
  const caller = api.me();
  signInSection.hidden = true;
  header.hidden = false;
  screen.hidden = false;
  document.getElementById("brand-name").textContent = caller.tenant.name;
  document.getElementById("who").textContent = `${caller.api_key.name} · ${caller.api_key.scopes.join(", ")}`;
  for (const link of document.querySelectorAll("#nav a")) {
    link.parentElement.hidden = Boolean(link.dataset.scope) && !api.can(link.dataset.scope);
  }
}

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const name = SCREENS[parts[0]] ? parts[0] : "overview";
  return { name, parts: parts.slice(1) };
}

let rendering = 0;

async function route() {
  if (!api.signedIn() || !api.me()) return;
  const { name, parts } = parseRoute();
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.screen === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const ticket = ++rendering;
  const container = h("div", { class: "screen", "data-screen": name });
  clear(screen, container);
  if (ADMIN_SCREENS.has(name) && !api.can("admin")) {
    container.append(message("This screen needs an admin key.", "error"));
    container.dataset.ready = "true";
    return;
  }
  status.textContent = "Loading…";
  try {
    await SCREENS[name].render(container, parts);
    if (ticket === rendering) {
      status.textContent = "";
      document.title = `${name[0].toUpperCase()}${name.slice(1)} · Loyalty console`;
    }
  } catch (failure) {
    if (failure.status === 401) {
      showSignIn("The key was refused: sign in again.");
      return;
    }
    container.append(message(errorText(failure), "error"));
    status.textContent = "";
  }
  if (ticket === rendering) container.dataset.ready = "true";
}

signInForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const secret = document.getElementById("api-key").value.trim();
  signInError.textContent = "";
  try {
    await api.signIn(secret);
  } catch (failure) {
    signInError.textContent = failure.status === 401 ? "This key is not valid (or was revoked)."
      : failure.status === 403 ? "This key cannot read: the console needs a key with the read or admin scope."
        : errorText(failure);
    return;
  }
  signInForm.reset();
  showShell();
  if (!location.hash || location.hash === "#/") location.hash = "#/overview";
  else route();
  document.getElementById("main").focus();
});

document.getElementById("sign-out").addEventListener("click", () => {
  showSignIn("Signed out.");
  history.replaceState(null, "", location.pathname);
});

window.addEventListener("hashchange", route);

(async function start() {
  if (!api.signedIn()) {
    showSignIn();
    return;
  }
  try {
    await api.resume();
  } catch {
    showSignIn("Sign in again.");
    return;
  }
  showShell();
  route();
})();
