// The Jobs panel: recent long operations (restores, imports, file batches) with done/total,
// refreshed every second while any of them runs.
"use strict";

import { $, api, button, element, run, say } from "./api.js";

const LIMIT = 10;
const EVERY_MS = 1000;
let timer = null;
let onFinished = async () => {};

const isLive = (job) => job.status === "queued" || job.status === "running";

function progress(job) {
  const bar = element("progress");
  bar.setAttribute("aria-label", `${job.kind} progress`);
  if (job.total) {
    bar.max = job.total;
    bar.value = Math.min(job.done, job.total);
  } else if (!isLive(job)) {
    bar.max = 1;
    bar.value = job.status === "succeeded" ? 1 : 0;
  } // else: no value, an indeterminate bar while the total is unknown
  return bar;
}

function jobItem(job) {
  const item = element("li", undefined, `job job-${job.status}`);
  item.dataset.id = job.id;
  const head = element("div", undefined, "job-head");
  const where = job.knowledge_base ? ` in ${job.knowledge_base}` : "";
  head.append(element("span", `${job.kind}${where}`, "job-kind"),
    element("span", job.status, "job-status"),
    element("span", `${job.done} of ${job.total === null ? "?" : job.total}`, "job-count"));
  if (isLive(job) && !job.cancel_requested) {
    const cancel = button("Cancel", (event) => run("jobs-error", async () => {
      await api("DELETE", `/v1/jobs/${encodeURIComponent(job.id)}`);
      say(`asked job ${job.id} to stop`);
      await refreshJobs();
    }, event.target), "secondary");
    cancel.setAttribute("aria-label", `cancel ${job.kind} job ${job.id}`);
    head.append(cancel);
  }
  item.append(head, progress(job));
  if (job.error) item.append(element("div", job.error, "error"));
  return item;
}

// Loads the list; while a job runs, loads it again in a second (and once more after it ends,
// so counts elsewhere on the page can follow).
export async function refreshJobs() {
  clearTimeout(timer);
  timer = null;
  const { items } = await api("GET", `/v1/jobs?limit=${LIMIT}`);
  if (items.length) {
    $("jobs-list").replaceChildren(...items.map(jobItem));
  } else {
    $("jobs-list").replaceChildren(element("li", "no jobs yet", "muted"));
  }
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
