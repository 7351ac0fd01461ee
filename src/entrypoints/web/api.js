// The console's plumbing: calls to the public /v1 API, and small helpers every panel uses.
"use strict";

const KEY_STORE = "kb-service.api-key";

export const $ = (id) => document.getElementById(id);

let apiKey = sessionStorage.getItem(KEY_STORE) || "";
export const currentKey = () => apiKey;
export function useKey(key) {
  apiKey = key;
  sessionStorage.setItem(KEY_STORE, key);
}

export class ApiError extends Error {
  constructor(body, status) {
    const fields = body && body.errors ? " " + JSON.stringify(body.errors) : "";
    super(`${(body && body.message) || `HTTP ${status}`}${fields}`);
    this.status = status;
  }
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { message: text.slice(0, 200) }; }
  if (!response.ok) throw new ApiError(data, response.status);
  return data;
}

export const kbPath = (name) => `/v1/knowledge-bases/${encodeURIComponent(name)}`;
export const docPath = (kb, id) => `${kbPath(kb)}/documents/${encodeURIComponent(id)}`;
export const plural = (count, word) => `${count} ${word}${count === 1 ? "" : "s"}`;

export function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

export function button(text, onClick, className) {
  const node = element("button", text, className);
  node.type = "button";
  node.addEventListener("click", onClick);
  return node;
}

// Each cell carries its column's name: on a narrow screen rows become cards that show it.
export function labelCells(row, table) {
  const names = [...table.querySelectorAll("thead th")].map((th) => th.textContent);
  [...row.cells].forEach((cell, index) => { cell.dataset.label = names[index] || ""; });
}

// A JSON text field: undefined when empty, an object otherwise; a clear message when invalid.
export function parseJson(raw, what) {
  const text = raw.trim();
  if (!text) return undefined;
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`${what} is not valid JSON: ${error.message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Error(`${what} must be a JSON object, like {"lang": "en"}`);
  }
  return value;
}

// The page's status line (footer): what the last action did.
export function say(message, isError = false) {
  $("status").textContent = message;
  $("status").className = isError ? "error" : "";
}

function explained(error) {
  return error.status === 401 ? `${error.message}: enter an API key above` : error.message;
}

// An error goes next to the action that caused it (a role=alert element, so screen readers
// announce it) and in the status line.
export function showError(errorId, error) {
  const message = explained(error);
  const place = $(errorId);
  if (place) {
    place.textContent = message;
    place.hidden = false;
  }
  say(message, true);
}

export function clearError(errorId) {
  const place = $(errorId);
  if (place) {
    place.textContent = "";
    place.hidden = true;
  }
}

// Runs an action for a button or form, its error next to it. The button is marked busy (and a
// second press ignored) rather than disabled: a disabled button drops the keyboard's focus.
const busy = new WeakSet();
export async function run(errorId, action, trigger) {
  if (trigger && busy.has(trigger)) return;
  clearError(errorId);
  if (trigger) {
    busy.add(trigger);
    trigger.setAttribute("aria-busy", "true");
  }
  try {
    await action();
  } catch (error) {
    showError(errorId, error);
  } finally {
    if (trigger) {
      busy.delete(trigger);
      trigger.removeAttribute("aria-busy");
    }
  }
}

// Every form: no page reload; its submit button busy while the call runs.
export function onSubmit(formId, errorId, action) {
  $(formId).addEventListener("submit", (event) => {
    event.preventDefault();
    run(errorId, action, event.target.querySelector("button[type=submit], button:not([type])"));
  });
}

// The shared confirmation <dialog>: resolves true only when the user confirms.
export function confirmAction(message, confirmLabel) {
  const dialog = $("confirm-dialog");
  $("confirm-message").textContent = message;
  $("confirm-ok").textContent = confirmLabel;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    $("confirm-cancel").focus(); // the safe choice first: Enter on a reflex does not delete
  });
}

// Offsets are Unicode code points (Python's str indices): slice code points, not UTF-16 units.
export const codePoints = (text) => Array.from(text);

// The selected knowledge base, shared by the panels.
export const selectedKb = () => $("kb-select").value;
