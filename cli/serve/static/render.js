// Safe Markdown + sentence attribution for answers. Builds DOM nodes with
// textContent / text nodes only: model text is never parsed as HTML.
//
// renderAnswer(node, text, info) renders `text` (the answer so far) into
// `node`. info (optional, from the `sources` event):
//   sentences: [{start, end, support, sources, markers, unsupported_markers}]
//              offsets in Unicode code points, as the protocol says
//   anchor(n): the id of source n's list item (for [n] links)
//   titles:    Map n -> title (for the sentence's hover text)
//   excerpts:  Map n -> the source's excerpt; a supported sentence's hover text
//              quotes the passage that backs it (sentences[].passages: offsets
//              in code points into that excerpt)
// Supported: fenced code blocks, inline code (`x`, ``x``), headings, bullet and numbered
// lists, **bold**, *emphasis* / _emphasis_, [text](http(s) or mailto link),
// paragraphs and line breaks; [n] markers become links to the sources.
"use strict";

const SAFE_LINK = /^(https?:|mailto:)/i;

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

// Code points, not UTF-16 units: the protocol's offsets count code points.
function codePoints(text) { return Array.from(text); }

function renderAnswer(node, text, info = {}) {
  const chars = codePoints(text);
  const ctx = { chars, info, sentenceAt: sentenceIndex(chars.length, info.sentences || []) };
  node.replaceChildren(...blocks(ctx, 0, chars.length));
}

// sentenceAt[i] = index of the sentence covering code point i, or -1.
function sentenceIndex(length, sentences) {
  const at = new Int32Array(length).fill(-1);
  sentences.forEach((s, i) => { for (let p = s.start; p < Math.min(s.end, length); p++) at[p] = i; });
  return at;
}

function slice(ctx, start, end) { return ctx.chars.slice(start, end).join(""); }

// ---- blocks ----------------------------------------------------------------

function lines(ctx, start, end) {
  const out = [];
  let s = start;
  for (let i = start; i <= end; i++) {
    if (i === end || ctx.chars[i] === "\n") { out.push([s, i]); s = i + 1; }
  }
  return out;
}

function blocks(ctx, start, end) {
  const out = [];
  const all = lines(ctx, start, end);
  let i = 0;
  while (i < all.length) {
    const [s, e] = all[i];
    const line = slice(ctx, s, e);
    if (/^\s*```/.test(line)) {  // fenced code, up to the closing fence or the end
      let j = i + 1;
      while (j < all.length && !/^\s*```/.test(slice(ctx, all[j][0], all[j][1]))) j++;
      const codeStart = i + 1 < all.length ? all[i + 1][0] : e;
      const codeEnd = j > i + 1 ? all[j - 1][1] : codeStart;
      const code = el("code");
      const lang = line.trim().slice(3).trim();
      if (lang) code.dataset.lang = lang;
      appendText(ctx, code, codeStart, codeEnd);
      out.push(el("pre", {}, code));
      i = j + 1;
      continue;
    }
    const heading = /^(#{1,6})\s+/.exec(line);
    if (heading) {
      const h = el(`h${Math.min(6, heading[1].length + 2)}`);
      inline(ctx, h, s + codePoints(heading[0]).length, e);
      out.push(h);
      i++;
      continue;
    }
    if (listItem(line)) {
      const ordered = /^\s*\d{1,3}[.)]\s/.test(line);
      const list = el(ordered ? "ol" : "ul");
      while (i < all.length && listItem(slice(ctx, all[i][0], all[i][1]))) {
        const [ls, le] = all[i];
        const marker = listItem(slice(ctx, ls, le));
        const li = el("li");
        inline(ctx, li, ls + codePoints(marker).length, le);
        list.append(li);
        i++;
      }
      out.push(list);
      continue;
    }
    if (!line.trim()) { i++; continue; }
    const p = el("p");  // a paragraph: consecutive plain lines, joined by <br>
    let first = true;
    while (i < all.length) {
      const [ps, pe] = all[i];
      const text = slice(ctx, ps, pe);
      if (!text.trim() || /^\s*```/.test(text) || /^#{1,6}\s/.test(text) || listItem(text)) break;
      if (!first) p.append(el("br"));
      inline(ctx, p, ps, pe);
      first = false;
      i++;
    }
    out.push(p);
  }
  return out;
}

function listItem(line) {
  const m = /^\s*(?:[-*+•]|\d{1,3}[.)])\s+/.exec(line);
  return m ? m[0] : null;
}

// ---- inline ----------------------------------------------------------------

const INLINE = [
  // [kind, regex on the rest of the line]; the first match at a position wins.
  // Code spans as CommonMark has them: a run of n backticks closes only at a
  // run of exactly n (reStructuredText's ``code`` is a 2-run), so a lone `
  // inside ``a ` b`` stays code; codeSpan() handles them before these.
  ["cite", /^\[(\d+(?:\s*,\s*\d+)*)\]/],
  ["link", /^\[([^\]\n]+)\]\(([^)\s]+)\)/],
  ["strong", /^\*\*(?=\S)([^\n]*?\S)\*\*/],
  ["em", /^\*(?=\S)([^*\n]*?\S)\*/],
  ["em", /^_(?=\S)([^_\n]*?\S)_(?![A-Za-z0-9])/],
];

function inline(ctx, parent, start, end) {
  let plain = start;
  let i = start;
  while (i < end) {
    if (ctx.chars[i] === "`") {
      const span = codeSpan(ctx, i, end);
      // No closing run: the whole run is literal text, not one backtick at a time
      // (else its second backtick would open a span that swallows the line).
      if (!span) { i = runEnd(ctx, i, end); continue; }
      appendText(ctx, parent, plain, i);
      const code = el("code");
      appendText(ctx, code, span.innerStart, span.innerEnd);
      parent.append(code);
      i = plain = span.end;
      continue;
    }
    const rest = slice(ctx, i, end);
    let matched = null;
    for (const [kind, re] of INLINE) {
      const m = re.exec(rest);
      if (m) { matched = [kind, m]; break; }
    }
    if (!matched) { i++; continue; }
    appendText(ctx, parent, plain, i);
    const [kind, m] = matched;
    const whole = codePoints(m[0]).length;
    const inner = [i + (kind === "strong" ? 2 : 1), i + (kind === "strong" ? 2 : 1) + codePoints(m[1]).length];
    if (kind === "cite") {
      citation(ctx, parent, i, i + whole, m[1]);
    } else if (kind === "link") {
      const url = m[2];
      const textEnd = i + 1 + codePoints(m[1]).length;
      if (SAFE_LINK.test(url)) {
        const a = el("a", { href: url, rel: "noopener noreferrer nofollow", target: "_blank" });
        inline(ctx, a, i + 1, textEnd);
        parent.append(a);
      } else {
        appendText(ctx, parent, i, i + whole);  // not a link we follow: show it as text
      }
    } else {
      const node = el(kind);
      inline(ctx, node, inner[0], inner[1]);
      parent.append(node);
    }
    i += whole;
    plain = i;
  }
  appendText(ctx, parent, plain, end);
}

function runEnd(ctx, start, end) {
  let i = start;
  while (i < end && ctx.chars[i] === "`") i++;
  return i;
}

// The code span opened by the backtick run at `start`: {innerStart, innerEnd,
// end} (one space just inside both runs is stripped, so `` `x` `` shows `x`),
// or null when no run of the same length closes it before `end`.
function codeSpan(ctx, start, end) {
  const open = runEnd(ctx, start, end);
  const n = open - start;
  let i = open;
  while (i < end) {
    if (ctx.chars[i] !== "`") { i++; continue; }
    const close = runEnd(ctx, i, end);
    if (close - i === n) {
      let [a, b] = [open, i];
      if (b - a >= 2 && ctx.chars[a] === " " && ctx.chars[b - 1] === " " && slice(ctx, a, b).trim()) { a++; b--; }
      return a < b ? { innerStart: a, innerEnd: b, end: close } : null;
    }
    i = close;
  }
  return null;
}

function citation(ctx, parent, start, end, numbers) {
  const idx = ctx.sentenceAt[start];
  const bad = new Set(idx >= 0 ? ctx.info.sentences[idx].unsupported_markers : []);
  const holder = idx >= 0 ? sentenceSpan(ctx, idx) : parent;
  const parts = numbers.split(",").map((n) => Number(n.trim()));
  for (const n of parts) {
    const label = parts.length === 1 ? slice(ctx, start, end) : `[${n}]`;
    const anchor = ctx.info.anchor ? ctx.info.anchor(n) : null;
    if (!anchor) { holder.append(document.createTextNode(label)); continue; }
    const link = el("a", { className: "cite", href: `#${anchor}`, text: label });
    if (bad.has(n)) {
      link.classList.add("unsupported");
      link.title = `source [${n}] does not support this sentence`;
    }
    holder.append(link);
  }
  if (holder !== parent) parent.append(holder);
  if (idx >= 0) supportMark(ctx, parent, idx, end);
}

// A text range, split at sentence boundaries; each piece inside a sentence is
// wrapped in a span carrying the sentence's index and verdict.
function appendText(ctx, parent, start, end) {
  let s = start;
  while (s < end) {
    const idx = ctx.sentenceAt[s];
    let e = s + 1;
    while (e < end && ctx.sentenceAt[e] === idx) e++;
    const text = document.createTextNode(slice(ctx, s, e));
    if (idx >= 0) {
      const span = sentenceSpan(ctx, idx);
      span.append(text);
      parent.append(span);
      supportMark(ctx, parent, idx, e);
    } else {
      parent.append(text);
    }
    s = e;
  }
}

// After a supported sentence, the sources that back it and that the model did
// not cite itself, as small links: the reader sees [n] on every checked claim.
function supportMark(ctx, parent, idx, at) {
  const sentence = ctx.info.sentences[idx];
  if (at !== sentence.end || sentence.support !== "supported" || !ctx.info.anchor) return;
  const extra = sentence.sources.filter((n) => !sentence.markers.includes(n) && ctx.info.anchor(n));
  if (!extra.length) return;
  const sup = el("sup", { className: "support", title: "found in these sources by the checker" });
  for (const n of extra) sup.append(el("a", { className: "cite added", href: `#${ctx.info.anchor(n)}`, text: `[${n}]` }));
  parent.append(sup);
}

// [n, passage text] for each passage that backs the sentence (clipped to the
// excerpt the client has: a frame-size cut may have shortened it).
function backingPassages(sentence, excerpts) {
  if (!excerpts || !sentence.passages) return [];
  const out = [];
  for (const p of sentence.passages) {
    const chars = codePoints(excerpts.get(p.source) || "");
    const text = chars.slice(p.start, Math.min(p.end, chars.length)).join("");
    if (text) out.push([p.source, text]);
  }
  return out;
}

function sentenceSpan(ctx, idx) {
  const sentence = ctx.info.sentences[idx];
  const span = el("span", { className: `sentence ${sentence.support}` });
  span.dataset.sentence = String(idx);
  span.title = sentenceSummary(sentence, ctx.info.titles, ctx.info.excerpts);
  return span;
}

function sentenceSummary(sentence, titles, excerpts) {
  const name = (n) => `[${n}]${titles && titles.get(n) ? ` ${titles.get(n)}` : ""}`;
  if (sentence.support === "supported") {
    const quotes = backingPassages(sentence, excerpts).map(([n, text]) => `\n[${n}] “${text}”`);
    return `Supported by ${sentence.sources.map(name).join(", ")}${quotes.join("")}`;
  }
  if (sentence.support === "unsupported") {
    const wrong = sentence.unsupported_markers.length
      ? ` (${sentence.unsupported_markers.map((n) => `[${n}]`).join(", ")} does not say this)` : "";
    return `Not supported by the sources${wrong}`;
  }
  return "Nothing to check in this sentence";
}
