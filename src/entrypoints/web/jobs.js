// The Jobs panel: recent long operations (restores, imports, file batches) with done/total,
// refreshed every second while any of them runs.
"use strict";

import { $, api, button, element, run, say } from "./api.js";

const LIMIT = 10;
const EVERY_MS = 1000;
let timer = null;
let onFinished = async () => {};

const isLive = (job) => job.status === "queued" || job.status === "running";

function showProgress(bar, job) {
  if (job.total) {
    bar.max = job.total;
    bar.value = Math.min(job.done, job.total);
  } else if (!isLive(job)) {
    bar.max = 1;
    bar.value = job.status === "succeeded" ? 1 : 0;
  } else {
    bar.removeAttribute("value"); // an indeterminate bar while the total is unknown
  }
}

function newJobItem(job) {
  const item = element("li");
  item.dataset.id = job.id;
  const head = element("div", undefined, "job-head");
  const cancel = button("Cancel", (event) => run("jobs-error", async () => {
    await api("DELETE", `/v1/jobs/${encodeURIComponent(job.id)}`);
    say(`asked job ${job.id} to stop`);
    await refreshJobs();
  }, event.currentTarget), "secondary");
  cancel.setAttribute("aria-label", `cancel ${job.kind} job ${job.id}`);
  const where = job.knowledge_base ? ` in ${job.knowledge_base}` : "";
  head.append(element("span", `${job.kind}${where}`, "job-kind"), element("span", "", "job-status"),
    element("span", "", "job-count"), cancel);
  const bar = element("progress");
  bar.setAttribute("aria-label", `${job.kind} progress`);
  item.append(head, bar, element("div", "", "error"));
  return item;
}

// Updated in place, not redrawn: a focused Cancel button keeps its focus between reloads.
function showJob(item, job) {
  item.className = `job job-${job.status}`;
  item.querySelector(".job-status").textContent = job.status;
  item.querySelector(".job-count").textContent = `${job.done} of ${job.total === null ? "?" : job.total}`;
  item.querySelector("button").hidden = !isLive(job) || job.cancel_requested;
  showProgress(item.querySelector("progress"), job);
  const error = item.querySelector(".error");
  error.textContent = job.error || "";
  error.hidden = !job.error;
}

function showJobs(items) {
  const list = $("jobs-list");
  if (!items.length) {
    list.replaceChildren(element("li", "no jobs yet", "muted"));
    return;
  }
  const shown = new Map([...list.children].map((item) => [item.dataset.id, item]));
  const wanted = items.map((job) => {
    const item = shown.get(job.id) || newJobItem(job);
    showJob(item, job);
    return item;
  });
  const same = wanted.length === list.children.length
    && wanted.every((item, index) => list.children[index] === item);
  if (!same) list.replaceChildren(...wanted);
}

// Loads the list; while a job runs, loads it again in a second (and once more after it ends,
// so counts elsewhere on the page can follow).
export async function refreshJobs() {
  clearTimeout(timer);
  timer = null;
  const { items } = await api("GET", `/v1/jobs?limit=${LIMIT}`);
  showJobs(items);
  const live = items.filter(isLive).length;
  $("jobs-note").textContent = live ? `${live} running: refreshing` : "";
  $("jobs-section").dataset.live = String(live);
  if (live) {
    timer = setTimeout(() => run("jobs-error", async () => {
      await refreshJobs();
      if (!timer) await onFinished();
    }), EVERY_MS);
  }
}

export function setUpJobs(finished) {
  onFinished = finished;
  $("jobs-refresh").addEventListener("click", (event) => run("jobs-error", refreshJobs, event.target));
}
