// The chat page. Plain JS, no build step. Everything from the server or the
// model is inserted as text (textContent / text nodes), never as HTML.
"use strict";

const params = new URLSearchParams(location.search);
const state = { ws: null, conversationId: null, current: null, answers: new Map(), seq: 0 };
const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key === "className") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);  // strings become text nodes
  return node;
}

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
  if ($("hybrid").checked) frame.mode = "hybrid";
  if (!send(frame)) { alert("Not connected to the server yet."); return; }
  const turn = el("div", { className: "turn" });
  const answerNode = el("div", { className: "answer streaming" });
  turn.append(el("div", { className: "question", text: question }), answerNode);
  $("transcript").append(turn);
  $("empty-hint").hidden = true;
  const answer = { requestId, turn, answerNode, text: "", done: false };
  state.answers.set(requestId, answer);
  state.current = answer;
  $("stop").disabled = false;
  $("ask").disabled = true;
  scrollDown();
}

function onEvent(event) {
  if (event.event === "pong") return;
  const answer = state.answers.get(event.request_id);
  if (event.event === "error" && !answer) { showError(null, event.message); return; }
  if (!answer) return;
  switch (event.event) {
    case "accepted":
      if (event.conversation_id) state.conversationId = event.conversation_id;
      break;
    case "token":
      answer.text += event.text;
      answer.answerNode.append(document.createTextNode(event.text));
      scrollDown();
      break;
    case "sources":
      renderCitedAnswer(answer, event.citations);
      renderSources(answer, event.citations);
      break;
    case "error":
      showError(answer, `${event.message} (${event.code})`);
      break;
    case "done":
      finishAnswer(answer, event);
      break;
  }
}

function anchorId(answer, n) { return `src-${answer.requestId}-${n}`; }

// Re-render the answer's text with each [n] turned into a link to its source.
function renderCitedAnswer(answer, citations) {
  const cited = new Set(citations.filter((c) => c.n !== null).map((c) => c.n));
  const node = answer.answerNode;
  node.replaceChildren();
  const parts = answer.text.split(/(\[\d+\])/);
  for (const part of parts) {
    const m = /^\[(\d+)\]$/.exec(part);
    if (m && cited.has(Number(m[1]))) {
      node.append(el("a", { className: "cite", href: `#${anchorId(answer, m[1])}`, text: part }));
    } else if (part) {
      node.append(document.createTextNode(part));
    }
  }
}

function renderSources(answer, citations) {
  if (!citations.length) return;
  const list = el("ol", { className: "sources" });
  const ordered = [...citations].sort((a, b) => (a.n ?? 1e9) - (b.n ?? 1e9));
  for (const c of ordered) {
    const item = el("li", { className: c.cited ? "cited" : "uncited" });
    if (c.n !== null) { item.id = anchorId(answer, c.n); item.value = c.n; }
    const label = c.title || c.doc_id;
    item.append(el("strong", { text: `${c.n !== null ? `[${c.n}] ` : ""}${label}` }));
    const details = [c.doc_id !== label ? c.doc_id : null, c.page ? `page ${c.page}` : null,
      `score ${Number(c.score).toFixed(3)}`, c.cited ? null : "retrieved, not cited"].filter(Boolean);
    item.append(el("span", { className: "meta", text: ` — ${details.join(" · ")}` }));
    item.append(el("span", { className: "excerpt", text: c.excerpt }));
    list.append(item);
  }
  answer.turn.append(list);
  scrollDown();
}

function showError(answer, message) {
  const node = el("div", { className: "error", role: "alert", text: message });
  (answer ? answer.turn : $("transcript")).append(node);
  scrollDown();
}

function finishAnswer(answer, done, problem) {
  if (answer.done) return;
  answer.done = true;
  answer.answerNode.classList.remove("streaming");
  if (done) {
    const secs = (done.total_ms / 1000).toFixed(1);
    const why = { end: "", length: " · stopped at the length limit", cancelled: " · stopped", error: " · failed" }[done.stop_reason] ?? "";
    answer.turn.append(el("div", { className: "meta", text: `${done.completion_tokens} tokens · ${secs} s${why}` }));
  } else if (problem) {
    showError(answer, problem);
  }
  if (state.current === answer) {
    state.current = null;
    $("stop").disabled = true;
    $("ask").disabled = false;
  }
}

function scrollDown() { const t = $("transcript"); t.scrollTop = t.scrollHeight; }

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
  $("transcript").replaceChildren();
  $("empty-hint").hidden = false;
});

// ---- documents (local server only) -----------------------------------------

const API_HEADERS = { "X-Requested-With": "rag-page" };
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
    if (d.reason) status.append(el("div", { className: "reason", text: d.reason }));
    const del = el("button", { className: "danger", type: "button", text: "Delete", title: `Delete ${d.doc_id}` });
    del.addEventListener("click", () => deleteDocument(d.doc_id));
    return el("tr", { "data-doc-id": d.doc_id }, el("td", { className: "doc", text: d.title ? `${d.title} (${d.doc_id})` : d.doc_id }), status, el("td", {}, del));
  });
  $("doc-rows").replaceChildren(...rows);
  if (!rows.length) $("doc-rows").append(el("tr", {}, el("td", { colspan: "3", className: "hint", text: "No documents yet." })));
  const busy = data.documents.some((d) => d.state === "queued");
  schedulePoll(busy ? 1000 : 5000);
}

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

connect();
refreshDocuments();
