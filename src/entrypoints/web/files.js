// Files into the selected knowledge base: picked or dropped, with upload then job progress.
"use strict";

import { $, ApiError, api, currentKey, kbPath, plural, say, selectedKb } from "./api.js";

let afterUpload = async () => {};
let jobStarted = () => {};

// Files go as multipart/form-data through XMLHttpRequest: fetch() cannot report upload progress.
function sendFiles(files, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const file of files) form.append("file", file, file.name);
    const request = new XMLHttpRequest();
    request.open("POST", `${kbPath(selectedKb())}/files`);
    request.setRequestHeader("Accept", "application/json");
    if (currentKey()) request.setRequestHeader("Authorization", `Bearer ${currentKey()}`);
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
  jobStarted();
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
    $("upload-status").removeAttribute("role");
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
    show(1, `added ${plural(count, "document")} to ${selectedKb()} from ${names}`);
    await afterUpload();
  } catch (error) {
    bar.hidden = true;
    throw error;
  } finally {
    $("upload-files").value = "";
  }
}

export function setUpUploads(changed, started) {
  afterUpload = changed;
  jobStarted = started;
  const zone = $("drop-zone");
  const run = (files) => uploadFiles(files).catch((error) => {
    // Next to the drop zone, where the user is looking (announced at once), and in the status line.
    $("upload-status").textContent = error.message;
    $("upload-status").className = "error";
    $("upload-status").setAttribute("role", "alert");
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
  $("upload-form").addEventListener("submit", (event) => event.preventDefault());
}
