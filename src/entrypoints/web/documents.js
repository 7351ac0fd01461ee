// Documents of the selected knowledge base: a paged, filterable list; open, edit metadata, delete;
// add one by text.
"use strict";

import {
  $, api, button, codePoints, confirmAction, docPath, element, kbPath, labelCells, onSubmit,
  parseJson, plural, run, say, selectedKb,
} from "./api.js";

// Cursor paging: `cursors[i]` opens page i (null: the first page).
let cursors = [null];
let nextCursor = null;
let afterChange = async () => {};

function when(stamp) {
  return stamp ? new Date(stamp).toLocaleString() : "";
}

function docRow(doc) {
  const row = element("tr");
  row.dataset.id = doc.id;
  const id = element("td", undefined, "doc-id");
  id.append(button(doc.id, () => openDocument(doc.id), "link"));
  const metadata = Object.keys(doc.metadata || {}).length ? JSON.stringify(doc.metadata) : "";
  const actions = element("td", undefined, "actions");
  const open = button("Open", () => openDocument(doc.id), "secondary");
  open.setAttribute("aria-label", `open ${doc.id}`);
  const remove = button("Delete", (event) => deleteDocument(doc.id, "docs-error", event.currentTarget), "danger");
  remove.setAttribute("aria-label", `delete ${doc.id}`);
  actions.append(open, remove);
  row.append(id, element("td", String(doc.chunks), "num"), element("td", metadata, "meta"),
    element("td", when(doc.updated_at)), actions);
  labelCells(row, $("docs-table"));
  return row;
}

async function loadPage() {
  const list = $("docs-list");
  if (!selectedKb()) {
    list.replaceChildren();
    $("docs-page").textContent = "no knowledge base yet";
    return;
  }
  const query = new URLSearchParams({ limit: $("docs-limit").value });
  const cursor = cursors[cursors.length - 1];
  if (cursor) query.set("cursor", cursor);
  const filter = parseJson($("docs-filter").value, "filter");
  if (filter !== undefined) query.set("filter", JSON.stringify(filter));
  query.set("fields", "id,metadata,chunks,updated_at");
  const page = await api("GET", `${kbPath(selectedKb())}/documents?${query}`);
  nextCursor = page.next_cursor;
  if (page.items.length) {
    list.replaceChildren(...page.items.map(docRow));
  } else {
    const cell = element("td", filter ? "no document matches the filter" : "no documents yet", "muted");
    cell.colSpan = 5;
    const row = element("tr");
    row.append(cell);
    list.replaceChildren(row);
  }
  $("docs-page").textContent = `page ${cursors.length}: ${plural(page.items.length, "document")}`
    + (nextCursor ? ", more on the next page" : "");
  updatePager();
}

function updatePager() {
  $("docs-next").disabled = !nextCursor;
  $("docs-first").disabled = cursors.length === 1;
}

// From the first page again (a new knowledge base, filter or page size).
export async function listDocuments() {
  cursors = [null];
  await loadPage();
}

let openId = null;

function showChunks(text, spans) {
  const chars = codePoints(text);
  const items = (spans || []).map((span, index) => {
    const item = element("li");
    item.append(element("div", `chunk ${index + 1}: characters ${span.start}–${span.end}`, "muted"),
      element("p", chars.slice(span.start, span.end).join(""), "chunk-text"));
    return item;
  });
  $("doc-chunks").replaceChildren(...items);
}

export async function openDocument(id) {
  const doc = await api("GET", docPath(selectedKb(), id));
  openId = doc.id;
  $("doc-title").textContent = `Document ${doc.id}`;
  $("doc-hash").textContent = doc.content_hash;
  $("doc-times").textContent = `${when(doc.created_at)} / ${when(doc.updated_at)}`;
  $("doc-chunk-count").textContent = String(doc.chunks) + (doc.truncated ? " (text truncated)" : "");
  $("doc-metadata").value = JSON.stringify(doc.metadata, null, 2);
  $("doc-text").textContent = doc.text;
  showChunks(doc.text, doc.spans);
  $("doc-error").hidden = true;
  $("doc-view").hidden = false;
  $("doc-title").focus();
  $("doc-view").scrollIntoView({ block: "start" });
}

function closeDocument() {
  const id = openId;
  $("doc-view").hidden = true;
  openId = null;
  const row = id && $("docs-list").querySelector(`tr[data-id="${CSS.escape(id)}"] button`);
  if (row) row.focus();
}

async function saveMetadata() {
  const metadata = parseJson($("doc-metadata").value, "metadata") || {};
  const doc = await api("PATCH", docPath(selectedKb(), openId), { metadata });
  $("doc-metadata").value = JSON.stringify(doc.metadata, null, 2);
  say(`saved the metadata of ${doc.id}`);
  await loadPage();
}

// Asks first (the button keeps focus meanwhile, so Escape returns to it), then deletes.
async function deleteDocument(id, errorId, trigger) {
  const sure = await confirmAction(
    `Delete the document ${id} from ${selectedKb()}? This cannot be undone.`, "Delete document");
  if (!sure) return;
  await run(errorId, async () => {
    await api("DELETE", docPath(selectedKb(), id));
    if (openId === id) {
      $("doc-view").hidden = true;
      openId = null;
    }
    say(`deleted ${id} from ${selectedKb()}`);
    await afterChange();
    $("docs-table").parentElement.focus();
  }, trigger);
}

async function addDocument() {
  if (!selectedKb()) throw new Error("create a knowledge base first");
  const document = { text: $("add-text").value };
  const id = $("add-id").value.trim();
  if (id) document.id = id;
  const metadata = parseJson($("add-metadata").value, "metadata");
  if (metadata !== undefined) document.metadata = metadata;
  const added = await api("POST", `${kbPath(selectedKb())}/documents`, document);
  $("add-form").reset();
  await afterChange();
  const item = added.items[0];
  say(`added ${item.id} to ${selectedKb()} (${plural(item.chunks, "chunk")})`);
}

export function setUpDocuments(changed) {
  afterChange = changed;
  onSubmit("docs-form", "docs-error", listDocuments);
  $("docs-limit").addEventListener("change", () => run("docs-error", listDocuments));
  $("docs-next").addEventListener("click", (event) => run("docs-error", async () => {
    cursors.push(nextCursor);
    try { await loadPage(); } catch (error) { cursors.pop(); throw error; }
    if (!nextCursor) $("docs-first").focus(); // the last page: Next is disabled, focus moves on
  }, event.target));
  $("docs-first").addEventListener("click", (event) => run("docs-error", listDocuments, event.target));
  onSubmit("doc-meta-form", "doc-error", saveMetadata);
  $("doc-delete").addEventListener("click", (event) => deleteDocument(openId, "doc-error", event.currentTarget));
  $("doc-close").addEventListener("click", closeDocument);
  onSubmit("add-form", "add-error", addDocument);
}
