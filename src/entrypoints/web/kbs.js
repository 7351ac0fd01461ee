// Knowledge bases: the table with counts, create, edit (description, metadata), delete.
"use strict";

import {
  $, api, button, confirmAction, element, kbPath, labelCells, onSubmit, parseJson, run, say,
  selectedKb,
} from "./api.js";

let known = [];
let onChange = () => {};

async function listKnowledgeBases() {
  const all = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ limit: "1000" });
    if (cursor) query.set("cursor", cursor);
    const page = await api("GET", `/v1/knowledge-bases?${query}`);
    all.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return all;
}

function modelCell(kb) {
  const print = kb.model_fingerprint ? kb.model_fingerprint.slice(0, 12) : "no fingerprint yet";
  const cell = element("td", `${kb.model} (${print})`);
  cell.title = kb.model_fingerprint || "recorded before fingerprints";
  return cell;
}

function kbRow(kb) {
  const row = element("tr");
  row.dataset.name = kb.name;
  const name = element("td");
  name.append(button(kb.name, () => select(kb.name), "link"));
  name.firstChild.setAttribute("aria-label", `work in ${kb.name}`);
  const actions = element("td", undefined, "actions");
  const edit = button("Edit", () => openEditor(kb), "secondary");
  edit.setAttribute("aria-label", `edit ${kb.name}`);
  const remove = button("Delete", (event) => deleteKb(kb, event.currentTarget), "danger");
  remove.setAttribute("aria-label", `delete ${kb.name}`);
  actions.append(edit, remove);
  row.append(name, element("td", String(kb.document_count), "num"),
    element("td", String(kb.chunk_count), "num"), modelCell(kb),
    element("td", kb.description), actions);
  labelCells(row, $("kb-table"));
  return row;
}

function select(name) {
  $("kb-select").value = name;
  markSelected();
  onChange();
}

function markSelected() {
  for (const row of $("kb-list").querySelectorAll("tr[data-name]")) {
    row.classList.toggle("selected", row.dataset.name === selectedKb());
  }
}

// Reloads the table and the selector; keeps (or moves to) the chosen knowledge base.
export async function refreshKbs(choose) {
  const before = selectedKb();
  known = await listKnowledgeBases();
  const rows = $("kb-list");
  if (!known.length) {
    const cell = element("td", "none yet: create one below", "muted");
    cell.colSpan = 6;
    const row = element("tr");
    row.append(cell);
    rows.replaceChildren(row);
  } else {
    rows.replaceChildren(...known.map(kbRow));
  }
  $("kb-select").replaceChildren(...known.map((kb) => new Option(kb.name, kb.name)));
  const wanted = choose || before;
  if (known.some((kb) => kb.name === wanted)) $("kb-select").value = wanted;
  markSelected();
  if (selectedKb() !== before) onChange();
}

async function createKb() {
  const body = { name: $("create-name").value.trim(), chunking: $("create-chunking").value };
  const description = $("create-description").value.trim();
  if (description) body.description = description;
  const overlap = $("create-overlap").value.trim();
  if (overlap) body.chunk_overlap = Number(overlap);
  const kb = await api("POST", "/v1/knowledge-bases", body);
  $("create-form").reset();
  await refreshKbs(kb.name);
  say(`created ${kb.name} (${kb.model}, ${kb.dimension} dimensions, ${kb.chunking})`);
}

let editing = null;

function openEditor(kb) {
  editing = kb.name;
  $("kb-edit-title").textContent = `Edit ${kb.name}`;
  $("kb-edit-description").value = kb.description || "";
  $("kb-edit-metadata").value = JSON.stringify(kb.metadata || {}, null, 2);
  $("kb-edit-error").hidden = true;
  $("kb-edit-dialog").showModal();
  $("kb-edit-description").focus();
}

async function saveEdit() {
  const metadata = parseJson($("kb-edit-metadata").value, "metadata") || {};
  const body = { description: $("kb-edit-description").value.trim(), metadata };
  const kb = await api("PATCH", kbPath(editing), body);
  $("kb-edit-dialog").close();
  await refreshKbs();
  say(`saved ${kb.name}`);
  $("kb-list").querySelector(`tr[data-name="${CSS.escape(kb.name)}"] button`).focus();
}

// Asks first (the button keeps focus meanwhile, so Escape returns to it), then deletes.
async function deleteKb(kb, trigger) {
  const sure = await confirmAction(
    `Delete the knowledge base ${kb.name} with its ${kb.document_count} documents? `
    + "This cannot be undone.", `Delete ${kb.name}`);
  if (!sure) return;
  await run("kb-error", async () => {
    await api("DELETE", kbPath(kb.name));
    await refreshKbs();
    say(`deleted ${kb.name}`);
    $("kb-table").parentElement.focus(); // its row and button are gone: focus stays nearby
  }, trigger);
}

export function setUpKbs(whenSelected) {
  onChange = whenSelected;
  onSubmit("create-form", "create-error", createKb);
  onSubmit("kb-edit-form", "kb-edit-error", saveEdit);
  $("kb-edit-cancel").addEventListener("click", () => $("kb-edit-dialog").close());
  $("kb-select").addEventListener("change", () => { markSelected(); onChange(); });
}
