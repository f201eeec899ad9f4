// The chat page. Plain JS, no build step. Everything from the server or the
// model is inserted as text (textContent / text nodes), never as HTML.
"use strict";
// Rendering (safe Markdown, sentence attribution, el()) lives in render.js.

const params = new URLSearchParams(location.search);
const state = { ws: null, conversationId: null, current: null, answers: new Map(), seq: 0 };
const $ = (id) => document.getElementById(id);
const STORE_KEY = "rag-chat-v1";
const MAX_STORED_TURNS = 50;

// ---- WebSocket -------------------------------------------------------------

function websocketUrl() {
  // ?ws=wss://…&token=… for the deployed (static) page; same host otherwise.
  const base = params.get("ws") || `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
  const token = params.get("token");
  if (!token) return base;
  const url = new URL(base);
  url.searchParams.set("token", token);
  return url.toString();
}

function connect() {
  const ws = new WebSocket(websocketUrl());
  state.ws = ws;
  setConnection("connecting");
  ws.addEventListener("open", () => setConnection("open"));
  ws.addEventListener("close", () => {
    setConnection("closed");
    if (state.current) finishAnswer(state.current, null, "connection closed");
    setTimeout(connect, 2000);
  });
  ws.addEventListener("message", (msg) => {
    let event;
    try { event = JSON.parse(msg.data); } catch { return; }
    onEvent(event);
  });
}

function setConnection(s) {
  const badge = $("connection");
  badge.dataset.state = s;
  badge.textContent = s === "open" ? "connected" : s === "closed" ? "disconnected — retrying" : "connecting…";
}

function send(obj) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
  state.ws.send(JSON.stringify(obj));
  return true;
}

// ---- asking ----------------------------------------------------------------

function ask(question) {
  const requestId = `r${Date.now().toString(36)}${(state.seq++).toString(36)}`;
  const frame = { action: "ask", question, request_id: requestId };
  if (state.conversationId) frame.conversation_id = state.conversationId;
  if ($("mode").value) frame.mode = $("mode").value;
  if (!send(frame)) { alert("Not connected to the server yet."); return; }
  const follow = state.pinned;
  const answer = addTurn({ requestId, question, text: "" });
  answer.answerNode.classList.add("streaming");
  state.current = answer;
  $("stop").disabled = false;
  $("ask").disabled = true;
  if (follow) scrollDown();
}

// One question + answer in the transcript; also used to restore saved turns.
function addTurn(saved) {
  const turn = el("div", { className: "turn" });
  const answerNode = el("div", { className: "answer" });
  const info = el("div", { className: "sentence-info", role: "status" });
  info.hidden = true;
  const copy = el("button", { className: "copy secondary", type: "button", text: "Copy", title: "Copy the answer" });
  turn.append(el("div", { className: "question", text: saved.question }), answerNode, info);
  const answer = {
    requestId: saved.requestId, question: saved.question, turn, answerNode, info, copy,
    text: saved.text || "", citations: null, sentences: null, meta: null, error: null, done: false,
  };
  copy.addEventListener("click", () => copyAnswer(answer));
  answerNode.addEventListener("click", (e) => selectSentence(answer, e.target));
  $("transcript").append(turn);
  $("empty-hint").hidden = true;
  state.answers.set(answer.requestId, answer);
  return answer;
}

function onEvent(event) {
  if (event.event === "pong") return;
  const answer = state.answers.get(event.request_id);
  if (event.event === "error" && !answer) { showError(null, event.message); return; }
  if (!answer) return;
  const follow = state.pinned;
  switch (event.event) {
    case "accepted":
      if (event.conversation_id) state.conversationId = event.conversation_id;
      break;
    case "status":
      showWaking(answer, event);
      break;
    case "token":
      clearWaking(answer);
      answer.text += event.text;
      scheduleRender(answer);
      break;
    case "sources":
      renderCitedAnswer(answer, event.citations, event.sentences);
      renderSources(answer, event.citations);
      break;
    case "error":
      answer.error = `${event.message} (${event.code})`;
      showError(answer, answer.error);
      break;
    case "done":
      clearWaking(answer);
      finishAnswer(answer, event);
      break;
  }
  if (follow) scrollDown();
}

// Re-render the Markdown at most once per frame while tokens stream.
function scheduleRender(answer) {
  if (answer.renderPending) return;
  answer.renderPending = true;
  requestAnimationFrame(() => {
    answer.renderPending = false;
    if (!answer.citations) {
      renderAnswer(answer.answerNode, answer.text);
      if (state.pinned) scrollDown();
    }
  });
}

function anchorId(answer, n) { return `src-${answer.requestId}-${n}`; }
function sourceNumber(c) { return c.number ?? c.n; }

// The finished answer: Markdown, [n] linked to their sources, each sentence
// marked with its verdict (sentences: the protocol's attribution, or null).
function renderCitedAnswer(answer, citations, sentences = null) {
  answer.citations = citations;
  answer.sentences = sentences || null;
  const known = new Set(citations.map(sourceNumber).filter((n) => n !== null && n !== undefined));
  const titles = new Map(citations.map((c) => [sourceNumber(c), c.title || c.doc_id]));
  const excerpts = new Map(citations.map((c) => [sourceNumber(c), c.excerpt || ""]));
  renderAnswer(answer.answerNode, answer.text, {
    sentences: answer.sentences || [],
    titles,
    excerpts,
    anchor: (n) => (known.has(n) ? anchorId(answer, n) : null),
  });
  const unsupported = (answer.sentences || []).filter((s) => s.support === "unsupported").length;
  answer.answerNode.dataset.unsupported = String(unsupported);
}

function renderSources(answer, citations) {
  answer.turn.querySelector(".sources")?.remove();
  if (!citations.length) return;
  const list = el("ol", { className: "sources" });
  const ordered = [...citations].sort((a, b) => (b.cited - a.cited) || (sourceNumber(a) ?? 1e9) - (sourceNumber(b) ?? 1e9));
  for (const c of ordered) {
    const n = sourceNumber(c);
    const item = el("li", { className: c.cited ? "cited" : "uncited" });
    if (n !== null && n !== undefined) { item.id = anchorId(answer, n); item.value = n; item.dataset.n = String(n); }
    const label = c.title || c.doc_id;
    item.append(el("strong", { text: `${n !== null && n !== undefined ? `[${n}] ` : ""}${label}` }));
    const details = [c.doc_id !== label ? c.doc_id : null, c.page ? `page ${c.page}` : null,
      c.cited ? null : "retrieved, supports no sentence"].filter(Boolean);
    item.append(el("span", { className: "meta", text: ` — ${details.join(" · ")}${details.length ? " · " : ""}` }));
    item.append(el("span", { className: "meta rank", text: rankText(c, citations.length), title: rankTitle(c, citations.length) }));
    item.append(el("span", { className: "excerpt", text: c.excerpt }));
    list.append(item);
  }
  (answer.info || answer.answerNode).after(list);  // (pages scripted by tests have no info line)
}

// What a person reads instead of the raw retrieval score (≈ 0.03 for every
// hybrid source): the source's rank among those the model was given, and
// which searches found it. The raw score stays in the tooltip.
const FOUND_BY = { keyword: "words", vector: "meaning" };

function rankText(c, total) {
  const n = sourceNumber(c);
  const rank = n === null || n === undefined ? "" : n === 1 ? `best match of ${total}` : `match ${n} of ${total}`;
  const found = (c.found_by || []).map((f) => FOUND_BY[f] || f).join(" + ");
  return [rank, found ? `found by ${found}` : ""].filter(Boolean).join(" · ");
}

function rankTitle(c, total) {
  return `Rank among the ${total} sources given to the model, best first (the search's order). ` +
    "Found by: words = the keyword (BM25) search returned it, meaning = the vector (k-NN) search did. " +
    `Raw score ${Number(c.score).toPrecision(3)}: only orders the sources of one answer.`;
}

// Click a sentence: highlight it and its sources, say what backs it.
function selectSentence(answer, target) {
  const span = target.closest ? target.closest(".sentence") : null;
  answer.answerNode.querySelectorAll(".sentence.active").forEach((s) => s.classList.remove("active"));
  answer.turn.querySelectorAll(".sources li.highlight").forEach((li) => li.classList.remove("highlight"));
  if (!span || !answer.sentences) { answer.info.hidden = true; return; }
  const index = span.dataset.sentence;
  answer.answerNode.querySelectorAll(`.sentence[data-sentence="${index}"]`).forEach((s) => s.classList.add("active"));
  const sentence = answer.sentences[Number(index)];
  for (const n of sentence.sources) {
    answer.turn.querySelector(`.sources li[data-n="${n}"]`)?.classList.add("highlight");
  }
  answer.info.textContent = span.title;
  answer.info.dataset.support = sentence.support;
  answer.info.hidden = false;
}

async function copyAnswer(answer) {
  try {
    await navigator.clipboard.writeText(answer.text);
    answer.copy.textContent = "Copied";
  } catch {
    answer.copy.textContent = "Copy failed";
  }
  setTimeout(() => { answer.copy.textContent = "Copy"; }, 1500);
}

// A stack scaled to zero says what is waking (docs/protocol.md); one line, updated.
function showWaking(answer, event) {
  const waited = Math.round(event.elapsed_s);
  const text = `${event.message}${waited ? ` (waited ${waited} s)` : ""}`;
  if (!answer.waking) {
    answer.waking = el("div", { className: "waking", role: "status", text });
    answer.answerNode.before(answer.waking);
  } else {
    answer.waking.textContent = text;
  }
}

function clearWaking(answer) {
  if (answer.waking) { answer.waking.remove(); answer.waking = null; }
}

function showError(answer, message) {
  const node = el("div", { className: "error", role: "alert", text: message });
  (answer ? answer.turn : $("transcript")).append(node);
}

function metaText(done) {
  const secs = (done.total_ms / 1000).toFixed(1);
  const why = { end: "", length: " · stopped at the length limit", cancelled: " · stopped", error: " · failed", refused: " · not answered" }[done.stop_reason] ?? "";
  return `${done.completion_tokens} tokens · ${secs} s${why}`;
}

// The answer-level verdict, said plainly when the sources do not back it.
function groundingText(done) {
  if (done.grounding === "no_sources") return "The sources do not support this answer: no indexed document is about the question.";
  if (done.grounding !== "unsupported") return "";
  const share = typeof done.supported_share === "number" ? ` (only ${Math.round(done.supported_share * 100)}% of its claims are backed)` : "";
  return `The sources do not support this answer${share}.`;
}

function finishAnswer(answer, done, problem) {
  if (answer.done) return;
  answer.done = true;
  answer.answerNode.classList.remove("streaming");
  if (!answer.citations) renderAnswer(answer.answerNode, answer.text);
  const footer = el("div", { className: "answer-footer" });
  if (done) {
    answer.meta = metaText(done);
    footer.append(el("span", { className: "meta", text: answer.meta }));
    answer.grounding = groundingText(done);
    if (answer.grounding) answer.info.before(el("div", { className: "grounding", role: "note", text: answer.grounding }));
  } else if (problem) {
    answer.error = problem;
    showError(answer, problem);
  }
  if (answer.text) footer.prepend(answer.copy);
  answer.info.before(footer);
  if (state.current === answer) {
    state.current = null;
    $("stop").disabled = true;
    $("ask").disabled = false;
  }
  save();
}

// ---- scrolling: follow the answer only while the reader is at the bottom -----
// "Pinned" changes only when the reader scrolls; growing content or a
// shrinking transcript (a hint appears above it) keeps a pinned reader pinned.

state.pinned = true;
function atBottom() {
  const t = $("transcript");
  return t.scrollHeight - t.scrollTop - t.clientHeight < 40;
}
function scrollDown() { const t = $("transcript"); t.scrollTop = t.scrollHeight; }
$("transcript").addEventListener("scroll", () => { state.pinned = atBottom(); });
new ResizeObserver(() => { if (state.pinned) scrollDown(); }).observe($("transcript"));

// ---- the conversation survives a reload (sessionStorage: this tab only) ------

function save() {
  const turns = [...state.answers.values()].filter((a) => a.done).slice(-MAX_STORED_TURNS).map((a) => ({
    requestId: a.requestId, question: a.question, text: a.text, citations: a.citations,
    sentences: a.sentences, meta: a.meta, error: a.error, grounding: a.grounding,
  }));
  try {
    sessionStorage.setItem(STORE_KEY, JSON.stringify({ conversationId: state.conversationId, turns }));
  } catch { /* storage full or disabled: the conversation just won't survive a reload */ }
}

function restore() {
  let saved;
  try { saved = JSON.parse(sessionStorage.getItem(STORE_KEY) || "null"); } catch { saved = null; }
  if (!saved || !Array.isArray(saved.turns)) return;
  state.conversationId = saved.conversationId || null;
  for (const t of saved.turns) {
    const answer = addTurn(t);
    if (t.citations) {
      renderCitedAnswer(answer, t.citations, t.sentences);
      renderSources(answer, t.citations);
    } else {
      renderAnswer(answer.answerNode, answer.text);
    }
    if (t.error) showError(answer, t.error);
    answer.grounding = t.grounding || "";
    if (answer.grounding) answer.info.before(el("div", { className: "grounding", role: "note", text: answer.grounding }));
    answer.done = true;
    answer.meta = t.meta;
    const footer = el("div", { className: "answer-footer" });
    if (answer.text) footer.append(answer.copy);
    if (t.meta) footer.append(el("span", { className: "meta", text: t.meta }));
    answer.info.before(footer);
  }
  scrollDown();
}

$("ask-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const q = $("question").value.trim();
  if (!q || state.current) return;
  $("question").value = "";
  ask(q);
});
$("question").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("ask-form").requestSubmit(); }
});
$("stop").addEventListener("click", () => {
  if (state.current) send({ action: "cancel", request_id: state.current.requestId });
});
$("new-conversation").addEventListener("click", () => {
  state.conversationId = null;
  state.answers.clear();
  $("transcript").replaceChildren();
  $("empty-hint").hidden = false;
  save();
});

// ---- documents (local server only) -----------------------------------------

// With `rag serve --tokens`, the document endpoints need an admin's token.
const API_HEADERS = params.get("token")
  ? { "X-Requested-With": "rag-page", Authorization: `Bearer ${params.get("token")}` }
  : { "X-Requested-With": "rag-page" };
let pollTimer = null;

async function api(method, path, body) {
  const res = await fetch(path, { method, body, headers: API_HEADERS });
  let data = null;
  try { data = await res.json(); } catch { /* empty body */ }
  if (!res.ok) throw new Error((data && data.error) || `${res.status} ${res.statusText}`);
  return data;
}

function docMessage(text) { $("doc-message").textContent = text; }

async function refreshDocuments() {
  let data;
  try {
    data = await api("GET", "api/documents");
  } catch (err) {
    if (String(err.message).startsWith("404")) { $("doc-controls").hidden = true; $("doc-table").hidden = true; $("doc-unavailable").hidden = false; return; }
    docMessage(`Could not load documents: ${err.message}`);
    schedulePoll(5000);
    return;
  }
  const rows = data.documents.map((d) => {
    const status = el("td");
    status.append(el("span", { className: `state state-${d.state}`, text: d.state }));
    if (d.state === "indexed") status.append(el("span", { className: "meta", text: ` · ${d.chunk_count} chunk${d.chunk_count === 1 ? "" : "s"}` }));
    if (d.groups) status.append(el("div", { className: "meta", text: d.groups.length ? `readable by ${d.groups.join(", ")}` : "admins only" }));
    if (d.reason) status.append(el("div", { className: "reason", text: d.reason }));
    const del = el("button", { className: "danger", type: "button", text: "Delete", title: `Delete ${d.doc_id}` });
    del.addEventListener("click", () => deleteDocument(d.doc_id));
    const name = el("td", { className: "doc" }, el("span", { className: "title" }, ...breakable(d.title || d.doc_id)));
    if (d.title && d.title !== d.doc_id) name.append(el("span", { className: "doc-id" }, ...breakable(d.doc_id)));
    const row = el("tr", { "data-doc-id": d.doc_id }, name, status, el("td", {}, del));
    row.dataset.filterText = [d.title, d.doc_id, d.state, ...(d.groups || [])].filter(Boolean).join(" ").toLowerCase();
    return row;
  });
  $("doc-rows").replaceChildren(...rows);
  if (!rows.length) $("doc-rows").append(el("tr", {}, el("td", { colspan: "3", className: "hint", text: "No documents yet." })));
  filterDocuments();
  $("no-docs-hint").hidden = rows.length > 0;  // only when there are none
  const busy = data.documents.some((d) => d.state === "queued");
  schedulePoll(busy ? 1000 : 5000);
}

// A document name as text nodes with a break opportunity (<wbr>) after each
// "/", "_", "." and "-": long ids wrap at their parts, never mid-word.
function breakable(name) {
  const out = [];
  for (const part of name.split(/(?<=[\/_.-])/)) { if (out.length) out.push(el("wbr")); out.push(part); }
  return out;
}

// The filter box: rows whose name, id, status or groups contain every word typed.
function filterDocuments() {
  const words = $("doc-filter").value.toLowerCase().split(/\s+/).filter(Boolean);
  const rows = [...$("doc-rows").querySelectorAll("tr[data-doc-id]")];
  let shown = 0;
  for (const row of rows) {
    row.hidden = !words.every((w) => row.dataset.filterText.includes(w));
    if (!row.hidden) shown++;
  }
  $("doc-count").textContent = words.length ? `${shown} of ${rows.length}` : rows.length ? `${rows.length} document${rows.length === 1 ? "" : "s"}` : "";
}
$("doc-filter").addEventListener("input", filterDocuments);

function schedulePoll(ms) { clearTimeout(pollTimer); pollTimer = setTimeout(refreshDocuments, ms); }

async function deleteDocument(docId) {
  if (!confirm(`Delete ${docId}?`)) return;
  try {
    await api("DELETE", `api/documents/${encodeURIComponent(docId)}`);
    docMessage(`Deleting ${docId}…`);
  } catch (err) { docMessage(`Delete failed: ${err.message}`); }
  refreshDocuments();
}

$("upload-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const files = $("file-input").files;
  if (!files.length) { docMessage("Choose one or more files first."); return; }
  const form = new FormData();
  for (const f of files) form.append("file", f, f.name);
  try {
    const res = await api("POST", "api/documents", form);
    const rejected = res.rejected.map((r) => `${r.name}: ${r.reason}`);
    docMessage(`Queued ${res.accepted.length} file(s).${rejected.length ? ` Rejected: ${rejected.join("; ")}` : ""}`);
    $("file-input").value = "";
  } catch (err) { docMessage(`Upload failed: ${err.message}`); }
  refreshDocuments();
});

$("load-samples").addEventListener("click", async () => {
  try {
    const res = await api("POST", "api/samples");
    docMessage(`Queued ${res.accepted.length} sample document(s)${res.unchanged ? `, ${res.unchanged} already indexed` : ""}.`);
  } catch (err) { docMessage(`Could not load samples: ${err.message}`); }
  refreshDocuments();
});

// ---- what the server runs (local server's /health; absent on a static page) ----

// The search mode starts at the server's default, so either mode can be picked
// and every ask says which one it used; the model badge names the chat model,
// and the tiny packaged one gets a notice with the way to better answers.
async function loadServerInfo() {
  let info;
  try {
    const res = await fetch("health", { headers: API_HEADERS });
    if (!res.ok) return;
    info = await res.json();
  } catch { return; }  // a deployed page: no /health, the mode stays "server default"
  showSearchMode(info.search_mode);
  showModel(info.model);
}

function showSearchMode(mode) {
  const select = $("mode");
  const option = [...select.options].find((o) => o.value === mode);
  if (!option) return;
  option.textContent = `${option.textContent} (server default)`;
  select.querySelector('option[value=""]').remove();
  select.value = mode;
}

function showModel(model) {
  if (!model || !model.name) return;
  $("model").textContent = `model: ${model.name}`;
  $("model").title = `chat model backend: ${model.backend}`;
  $("model").hidden = false;
  $("model-name").textContent = model.name;
  $("model-hint").hidden = !model.packaged || hintSeen();
}

const HINT_KEY = "rag-model-hint";
function hintSeen() {
  try { return sessionStorage.getItem(HINT_KEY) === "seen"; } catch { return false; }
}
$("model-hint-close").addEventListener("click", () => {
  $("model-hint").hidden = true;
  try { sessionStorage.setItem(HINT_KEY, "seen"); } catch { /* storage disabled: shown again on reload */ }
});

restore();
connect();
loadServerInfo();
refreshDocuments();
