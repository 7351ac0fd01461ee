// kb-service web page: plain JavaScript over the public /v1 API, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORE = "kb-service.api-key";
const CONTEXT_CHARS = 240; // characters of text shown around a hit's passage

let apiKey = sessionStorage.getItem(KEY_STORE) || "";

class ApiError extends Error {
  constructor(body, status) {
    const fields = body && body.errors ? " " + JSON.stringify(body.errors) : "";
    super(`${(body && body.message) || `HTTP ${status}`}${fields}`);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(data, response.status);
  return data;
}

function say(message, isError = false) {
  $("status").textContent = message;
  $("status").className = isError ? "error" : "";
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function parseJsonField(id, what) {
  const raw = $(id).value.trim();
  if (!raw) return undefined;
  try {
    return JSON.parse(raw);
  } catch (error) {
    throw new Error(`${what} is not valid JSON: ${error.message}`);
  }
}

const kbPath = (name) => `/v1/knowledge-bases/${encodeURIComponent(name)}`;
const selectedKb = () => $("kb-select").value;

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

async function refresh(select) {
  const kbs = await listKnowledgeBases();
  const current = select || selectedKb();
  const rows = $("kb-list");
  rows.replaceChildren();
  if (!kbs.length) {
    const cell = element("td", "none yet: create one below", "muted");
    cell.colSpan = 5;
    const row = element("tr");
    row.append(cell);
    rows.append(row);
  }
  const options = kbs.map((kb) => new Option(kb.name, kb.name));
  $("kb-select").replaceChildren(...options);
  for (const kb of kbs) {
    const row = element("tr");
    row.dataset.name = kb.name;
    row.append(element("td", kb.name), element("td", String(kb.document_count)),
      element("td", String(kb.chunk_count)), modelCell(kb), element("td", kb.description));
    row.addEventListener("click", () => { $("kb-select").value = kb.name; markSelected(); });
    rows.append(row);
  }
  if (kbs.some((kb) => kb.name === current)) $("kb-select").value = current;
  markSelected();
}

function modelCell(kb) {
  const print = kb.model_fingerprint ? kb.model_fingerprint.slice(0, 12) : "no fingerprint yet";
  const cell = element("td", `${kb.model} (${print})`);
  cell.title = kb.model_fingerprint || "recorded before fingerprints";
  return cell;
}

function markSelected() {
  for (const row of $("kb-list").querySelectorAll("tr[data-name]")) {
    row.classList.toggle("selected", row.dataset.name === selectedKb());
  }
}

// Offsets are Unicode code points (Python's str indices): slice code points, not UTF-16 units.
function highlighted(text, passage) {
  const chars = Array.from(text);
  const from = Math.max(0, passage.start - CONTEXT_CHARS);
  const to = Math.min(chars.length, passage.end + CONTEXT_CHARS);
  const paragraph = element("p", undefined, "hit-text");
  paragraph.append((from > 0 ? "…" : "") + chars.slice(from, passage.start).join(""));
  paragraph.append(element("mark", chars.slice(passage.start, passage.end).join("")));
  paragraph.append(chars.slice(passage.end, to).join("") + (to < chars.length ? "…" : ""));
  return paragraph;
}

function showHits(hits) {
  const list = $("hits");
  list.replaceChildren();
  for (const hit of hits) {
    const item = element("li", undefined, "hit");
    const head = element("div", undefined, "hit-head");
    head.append(element("span", hit.id, "hit-id"), element("span", hit.score.toFixed(4), "score"));
    item.append(head, highlighted(hit.text, hit.passage));
    if (Object.keys(hit.metadata).length) {
      item.append(element("div", JSON.stringify(hit.metadata), "hit-meta"));
    }
    list.append(item);
  }
}

async function createKnowledgeBase() {
  const body = { name: $("create-name").value.trim(), chunking: $("create-chunking").value };
  const description = $("create-description").value.trim();
  if (description) body.description = description;
  const kb = await api("POST", "/v1/knowledge-bases", body);
  $("create-form").reset();
  await refresh(kb.name);
  say(`created ${kb.name} (${kb.model}, ${kb.dimension} dimensions)`);
}

async function addDocument() {
  if (!selectedKb()) throw new Error("create a knowledge base first");
  const document = { text: $("add-text").value };
  const id = $("add-id").value.trim();
  if (id) document.id = id;
  const metadata = parseJsonField("add-metadata", "metadata");
  if (metadata !== undefined) document.metadata = metadata;
  const added = await api("POST", `${kbPath(selectedKb())}/documents`, document);
  $("add-form").reset();
  await refresh();
  const item = added.items[0];
  say(`added ${item.id} to ${selectedKb()} (${item.chunks} chunk${item.chunks === 1 ? "" : "s"})`);
}

async function search() {
  if (!selectedKb()) throw new Error("create a knowledge base first");
  const body = { query: $("search-query").value, top_k: Number($("search-top-k").value) || 5 };
  const filter = parseJsonField("search-filter", "filter");
  if (filter !== undefined) body.filter = filter;
  if ($("search-hybrid").checked) body.mode = "hybrid";
  const result = await api("POST", `${kbPath(selectedKb())}/search`, body);
  showHits(result.hits);
  say(`${result.hits.length} hit${result.hits.length === 1 ? "" : "s"} in ${selectedKb()}`);
}

// Files go as multipart/form-data through XMLHttpRequest: fetch() cannot report upload progress.
function sendFiles(files, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const file of files) form.append("file", file, file.name);
    const request = new XMLHttpRequest();
    request.open("POST", `${kbPath(selectedKb())}/files`);
    request.setRequestHeader("Accept", "application/json");
    if (apiKey) request.setRequestHeader("Authorization", `Bearer ${apiKey}`);
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      let data = null;
      try { data = request.responseText ? JSON.parse(request.responseText) : null; } catch { /* not JSON */ }
      if (request.status >= 200 && request.status < 300) resolve({ status: request.status, data });
      else reject(new ApiError(data, request.status));
    });
    request.addEventListener("error", () => reject(new Error("the upload failed: network error")));
    request.send(form);
  });
}

// A 202 answer is a job: follow it until it ends, showing done/total.
async function followJob(job, onProgress) {
  while (job.status === "queued" || job.status === "running") {
    if (job.total) onProgress(job.done / job.total);
    await new Promise((wake) => setTimeout(wake, 500));
    job = await api("GET", `/v1/jobs/${encodeURIComponent(job.id)}`);
  }
  if (job.status !== "succeeded") throw new Error(`the upload job ${job.status}: ${job.error || ""}`);
  return job;
}

async function uploadFiles(files) {
  if (!files.length) return;
  if (!selectedKb()) throw new Error("create a knowledge base first");
  const bar = $("upload-progress");
  const show = (fraction, text) => {
    $("upload-status").className = "muted";
    bar.hidden = false;
    bar.value = fraction;
    $("upload-status").textContent = text;
  };
  const names = files.length === 1 ? files[0].name : `${files.length} files`;
  try {
    show(0, `uploading ${names}…`);
    const answer = await sendFiles(files, (part) => show(part, `uploading ${names}: ${Math.round(part * 100)}%`));
    let count = files.length;
    if (answer.status === 202) {
      const job = await followJob(answer.data, (part) => show(part, `extracting and embedding ${names}: ${Math.round(part * 100)}%`));
      count = job.done;
    } else if (answer.data && answer.data.items) {
      count = answer.data.items.length;
    }
    show(1, `added ${count} document${count === 1 ? "" : "s"} to ${selectedKb()} from ${names}`);
    await refresh();
  } catch (error) {
    $("upload-status").textContent = "";
    bar.hidden = true;
    throw error;
  } finally {
    $("upload-files").value = "";
  }
}

function setUpUploads() {
  const zone = $("drop-zone");
  const run = (files) => uploadFiles(files).catch((error) => {
    // Next to the drop zone, where the user is looking, and in the page's status line.
    $("upload-status").textContent = error.message;
    $("upload-status").className = "error";
    say(error.message, true);
  });
  $("upload-files").addEventListener("change", (event) => run(Array.from(event.target.files)));
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    run(Array.from(event.dataTransfer.files));
  });
}

// Every form: no page reload, the button disabled while the call runs, errors shown in #status.
function onSubmit(formId, action) {
  $(formId).addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = event.target.querySelector("button");
    button.disabled = true;
    try {
      await action();
    } catch (error) {
      say(error.status === 401 ? `${error.message}: enter an API key above` : error.message, true);
    } finally {
      button.disabled = false;
    }
  });
}

async function start() {
  $("api-key").value = apiKey;
  onSubmit("key-form", async () => {
    apiKey = $("api-key").value.trim();
    sessionStorage.setItem(KEY_STORE, apiKey);
    await loadEverything();
  });
  onSubmit("create-form", createKnowledgeBase);
  onSubmit("add-form", addDocument);
  onSubmit("search-form", search);
  $("upload-form").addEventListener("submit", (event) => event.preventDefault());
  setUpUploads();
  $("kb-select").addEventListener("change", markSelected);
  try {
    await loadEverything();
  } catch (error) {
    say(error.status === 401 ? `${error.message}: enter an API key above` : error.message, true);
  }
}

async function loadEverything() {
  const info = await api("GET", "/v1/info");
  $("service-info").textContent = `${info.model} (${info.model_fingerprint.slice(0, 12)}) · `
    + `${info.backend} backend · v${info.version}`;
  await refresh();
  say("ready");
}

start();
