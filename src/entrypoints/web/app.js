// kb-service console: plain JavaScript modules over the public /v1 API, no build step.
// api.js: calls and helpers; kbs.js, documents.js, files.js, search.js, jobs.js: one panel each.
"use strict";

import { $, api, currentKey, onSubmit, run, say, showError, useKey } from "./api.js";
import { listDocuments, setUpDocuments } from "./documents.js";
import { setUpUploads } from "./files.js";
import { refreshJobs, setUpJobs } from "./jobs.js";
import { refreshKbs, setUpKbs } from "./kbs.js";
import { setUpSearch } from "./search.js";

// After documents change: the counts in the table and the document list follow.
async function documentsChanged() {
  await refreshKbs();
  await listDocuments();
}

function kbChanged() {
  $("doc-view").hidden = true;
  $("hits").replaceChildren();
  $("search-summary").textContent = "";
  run("docs-error", listDocuments);
}

async function loadEverything() {
  const info = await api("GET", "/v1/info");
  $("service-info").textContent = `${info.model} (${info.model_fingerprint.slice(0, 12)}) · `
    + `${info.backend} backend · v${info.version}`;
  await refreshKbs();
  await listDocuments();
  await refreshJobs();
  say("ready");
}

async function start() {
  $("api-key").value = currentKey();
  onSubmit("key-form", "key-error", async () => {
    useKey($("api-key").value.trim());
    await loadEverything();
  });
  setUpKbs(kbChanged);
  setUpDocuments(documentsChanged);
  setUpUploads(documentsChanged, () => run("jobs-error", refreshJobs));
  setUpSearch();
  setUpJobs(documentsChanged);
  try {
    await loadEverything();
  } catch (error) {
    showError("key-error", error);
  }
}

start();
