// Search: the form (Enter searches, Shift+Enter adds a line), hits with what matched marked.
"use strict";

import {
  $, api, button, codePoints, element, kbPath, onSubmit, parseJson, plural, run, say, selectedKb,
} from "./api.js";
import { openDocument } from "./documents.js";

const CONTEXT_CHARS = 240; // characters of text shown around a hit's passage

// Words that carry no topic: never highlighted (the passage is what the ranking chose; inside
// it, the query's other words show why a reader should care).
const STOP_WORDS = new Set(`a about above after again against all am an and any are as at be
because been before being below between both but by can could did do does doing down during each
few for from further had has have having he her here hers herself him himself his how i if in into
is it its itself just me more most my myself no nor not now of off on once only or other our ours
ourselves out over own same she should so some such than that the their theirs them themselves
then there these they this those through to too under until up very was we were what when where
which while who whom why will with would you your yours yourself yourselves`.split(/\s+/));

const WORD = /[\p{L}\p{N}]+/gu;

export function queryTerms(query) {
  const words = (query.toLowerCase().match(WORD) || []).filter((w) => !STOP_WORDS.has(w));
  return [...new Set(words)];
}

// A word of the passage matches a term when equal, or when one is a prefix of the other and the
// shorter has at least 4 letters (bike/bikes, rain/raining): a cheap stand-in for stemming.
function matches(word, terms) {
  const lower = word.toLowerCase();
  return terms.some((term) => lower === term
    || (term.length >= 4 && lower.startsWith(term))
    || (lower.length >= 4 && term.startsWith(lower)));
}

function markTerms(text, terms) {
  const parts = [];
  let last = 0;
  for (const found of text.matchAll(WORD)) {
    if (!matches(found[0], terms)) continue;
    parts.push(text.slice(last, found.index), element("mark", found[0]));
    last = found.index + found[0].length;
  }
  parts.push(text.slice(last));
  return parts;
}

// The passage (the window that ranked) set apart from its context, and inside it only the
// query's non-stop words marked.
export function highlighted(text, passage, terms) {
  const chars = codePoints(text);
  const from = Math.max(0, passage.start - CONTEXT_CHARS);
  const to = Math.min(chars.length, passage.end + CONTEXT_CHARS);
  const paragraph = element("p", undefined, "hit-text");
  paragraph.append(element("span", (from > 0 ? "…" : "") + chars.slice(from, passage.start).join(""), "context"));
  const inside = element("span", undefined, "passage");
  inside.append(...markTerms(chars.slice(passage.start, passage.end).join(""), terms));
  paragraph.append(inside);
  paragraph.append(element("span", chars.slice(passage.end, to).join("") + (to < chars.length ? "…" : ""), "context"));
  return paragraph;
}

function labelled(label, value, className) {
  const node = element("span", undefined, "figure");
  node.append(element("span", label, "label"), " ", element("span", value, className));
  return node;
}

// The value that orders the list first (fusion for hybrid), the cosine beside it.
function figures(hit) {
  const head = element("span", undefined, "figures");
  if (hit.fusion_score !== undefined) {
    const rank = labelled("fusion", hit.fusion_score.toPrecision(4), "rank-value");
    rank.title = "the fused value hybrid hits are ordered by";
    head.append(rank, labelled("cosine", hit.score.toFixed(4), "score"));
  } else {
    const rank = labelled("score", hit.score.toFixed(4), "score rank-value");
    rank.title = "cosine similarity: the value hits are ordered by";
    head.append(rank);
  }
  return head;
}

function explanation(explain) {
  const part = (name, signal) => (signal
    ? `${name} ${Number(signal.score).toPrecision(4)} (rank ${signal.rank})`
    : `${name}: no match`);
  const fused = explain.fused === undefined || explain.fused === null
    ? "" : ` · fused ${Number(explain.fused).toPrecision(4)}`;
  // Dense searches explain only their dense part: no keyword part at all, not "no match".
  const keyword = "keyword" in explain ? ` · ${part("keyword", explain.keyword)}` : "";
  return element("div", `${part("dense", explain.dense)}${keyword}${fused}`, "explain");
}

function hitItem(hit, terms) {
  const item = element("li", undefined, "hit");
  const head = element("div", undefined, "hit-head");
  head.append(element("span", hit.id, "hit-id"), figures(hit));
  if (hit.passage && hit.passage.page !== undefined) {
    head.append(element("span", `page ${hit.passage.page}`, "page"));
  }
  const open = button("Open document", (event) => run("search-error", () => openDocument(hit.id), event.target), "secondary");
  open.setAttribute("aria-label", `open document ${hit.id}`);
  head.append(open);
  item.append(head);
  if (hit.text !== undefined && hit.passage) item.append(highlighted(hit.text, hit.passage, terms));
  if (hit.metadata && Object.keys(hit.metadata).length) {
    item.append(element("div", JSON.stringify(hit.metadata), "hit-meta"));
  }
  if (hit.explain) item.append(explanation(hit.explain));
  return item;
}

async function search() {
  if (!selectedKb()) throw new Error("create a knowledge base first");
  const query = $("search-query").value;
  const body = { query, top_k: Number($("search-top-k").value) || 5 };
  const filter = parseJson($("search-filter").value, "filter");
  if (filter !== undefined) body.filter = filter;
  const mode = $("search-mode").value;
  if (mode !== "dense") body.mode = mode;
  const diversity = Number($("search-diversity").value);
  if (diversity) body.diversity = diversity;
  if ($("search-explain").checked) body.explain = true; // only when asked: older services refuse it
  const result = await api("POST", `${kbPath(selectedKb())}/search`, body);
  const terms = queryTerms(query);
  $("hits").replaceChildren(...result.hits.map((hit) => hitItem(hit, terms)));
  const summary = `${plural(result.hits.length, "hit")} in ${selectedKb()}`;
  $("search-summary").textContent = `${summary} (${mode}`
    + `${mode === "hybrid" ? ", ordered by the fused value" : ", ordered by cosine score"})`;
  say(summary);
}

export function setUpSearch() {
  onSubmit("search-form", "search-error", search);
  $("search-query").addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    event.preventDefault();
    $("search-form").requestSubmit();
  });
}
