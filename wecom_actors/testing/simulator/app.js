// The wecom-actors simulator page: a WeCom-like chat over the fake's control API (/api/v1).
// No framework, no build step: state from GET requests, live updates from Server-Sent Events.
"use strict";

const API = "/api/v1";
const state = {
  convs: new Map(),    // id -> {id, type, members, messages: []}
  current: null,       // conversation id shown
  frames: new Map(),   // seq -> frame
  status: {},
};
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) node.setAttribute(k, v);
  }
  for (const c of children) if (c) node.append(c);
  return node;
}

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// A small, safe subset of markdown: the text is escaped first, then **bold**, `code`, links.
function markdown(s) {
  return escapeHtml(s)
    .replace(/\*\*(.+?)\*\*/g, "<b>$1</b>")
    .replace(/`([^`]+)`/g, "<code>$1</code>")
    .replace(/\[([^\]]+)\]\((https?:\/\/[^)\s]+)\)/g, '<a href="$2" target="_blank" rel="noopener">$1</a>');
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function call(path, body) {
  const response = await fetch(API + path, body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

async function act(path, body) {
  try {
    showError("");
    const result = await call(path, body);
    if (result.conversation && !state.convs.has(result.conversation)) await loadConversation(result.conversation);
    return result;
  } catch (err) {
    showError(err.message);
    return null;
  }
}

// --- conversations -----------------------------------------------------------------------------

function ensureConv(id, info = {}) {
  let conv = state.convs.get(id);
  if (!conv) {
    conv = { id, type: info.type || "single", members: info.members || [id], messages: [] };
    state.convs.set(id, conv);
  }
  if (info.type) conv.type = info.type;
  for (const m of info.members || []) if (!conv.members.includes(m)) conv.members.push(m);
  return conv;
}

async function loadConversation(id) {
  try {
    const data = await call(`/conversations/${encodeURIComponent(id)}`);
    const conv = ensureConv(id, data);
    conv.messages = data.messages;
    renderSidebar();
    if (state.current === id) renderMessages();
  } catch (err) { /* not known to the server yet: a local conversation */ }
}

function select(id) {
  state.current = id;
  renderSidebar();
  renderHeader();
  renderMessages();
  $("composer-input").disabled = $("send-btn").disabled = false;
  $("composer-input").focus();
}

function speaker() {
  const conv = state.convs.get(state.current);
  return conv.type === "group" ? $("speaker").value : conv.id;
}

function renderSidebar() {
  const list = $("conversations");
  list.replaceChildren();
  for (const conv of state.convs.values()) {
    const label = conv.type === "group" ? `# ${conv.id}` : conv.id;
    const sub = conv.type === "group" ? `group · ${conv.members.join(", ")}` : "single chat";
    list.append(el("li", { class: conv.id === state.current ? "active" : "", "data-conv": conv.id,
      onclick: () => select(conv.id) }, el("span", { text: label }), el("small", { text: sub })));
  }
}

function renderHeader() {
  const conv = state.convs.get(state.current);
  if (!conv) return;
  $("chat-title").textContent = conv.type === "group" ? `# ${conv.id} (${conv.members.length} members)` : `${conv.id} ⇄ ${state.status.bot_name || "Bot"}`;
  const box = $("speaker-box");
  box.hidden = conv.type !== "group";
  const select = $("speaker");
  const chosen = select.value;
  select.replaceChildren(...conv.members.map((m) => el("option", { value: m, text: m })));
  if (conv.members.includes(chosen)) select.value = chosen;
}

// --- messages ----------------------------------------------------------------------------------

function mediaUrl(key) {
  return key.startsWith("bot:") ? `${API}/media/bot/${encodeURIComponent(key.slice(4))}` : `${API}/media/user/${encodeURIComponent(key)}`;
}

function renderCard(card, conv, msg) {
  const box = el("div", { class: "card", "data-task-id": card.task_id || "" });
  const main = card.main_title || {};
  if (main.title) box.append(el("div", { class: "title", text: main.title }));
  if (main.desc) box.append(el("div", { class: "desc", text: main.desc }));
  if (card.sub_title_text) box.append(el("div", { class: "sub", text: card.sub_title_text }));
  const buttons = card.button_list || [];
  if (buttons.length) {
    const row = el("div", { class: "buttons" });
    for (const b of buttons) {
      row.append(el("button", {
        type: "button", class: b.style === 1 ? "primary" : "", "data-key": b.key, text: b.text || b.key,
        onclick: () => act("/card_click", { userid: speaker(), chatid: conv.type === "group" ? conv.id : null, task_id: card.task_id, event_key: b.key }),
      }));
    }
    box.append(row);
  }
  if (!main.title && !buttons.length) box.append(el("div", { class: "desc", text: `(${card.card_type || "card"})` }));
  if (msg.updates) box.append(el("div", { class: "updated", text: `updated ${msg.updates}×` }));
  return box;
}

function renderMessage(msg, conv, index) {
  const kind = msg.kind;
  const node = el("div", { class: `msg ${msg.from} ${kind}`, "data-index": index, "data-kind": kind,
    "data-finished": String(msg.finished !== false) });
  if (msg.from === "event") {
    node.append(el("div", { class: "bubble", text: msg.content }));
    return node;
  }
  const who = el("div", { class: "who", text: msg.from === "bot" ? (state.status.bot_name || "Bot") : msg.userid });
  if (msg.pushed) who.append(el("span", { class: "tag", text: "push" }));
  node.append(who);
  let bubble;
  if (msg.card) {
    bubble = renderCard(msg.card, conv, msg);
    if (msg.content) bubble.prepend(el("div", { class: "bubble", text: msg.content }));
  } else {
    bubble = el("div", { class: "bubble" });
    if (msg.from === "bot" && (kind === "stream" || kind === "markdown")) bubble.innerHTML = markdown(msg.content || "");
    else bubble.textContent = msg.content || "";
  }
  if (msg.media) {
    if (kind === "image" || (msg.from === "user" && kind === "image")) bubble.append(el("img", { src: mediaUrl(msg.media), alt: "image" }));
    else bubble.append(el("a", { href: mediaUrl(msg.media), download: msg.filename || msg.content || "file", text: ` ⬇ ${msg.filename || msg.content || kind}` }));
  }
  for (const part of msg.parts || []) if (part.media) bubble.append(el("img", { src: mediaUrl(part.media), alt: "image" }));
  for (const b64 of msg.images || []) bubble.append(el("img", { src: `data:image/png;base64,${b64}`, alt: "image" }));
  node.append(bubble);
  if (msg.timed_out) node.append(el("div", { class: "errors", text: "the stream did not finish in time" }));
  for (const e of msg.errors || []) node.append(el("div", { class: "errors", text: e }));
  return node;
}

// Only messages that changed are rebuilt, so a button being clicked stays in the page.
const rendered = { conv: null, keys: [] };

function renderMessages() {
  const conv = state.convs.get(state.current);
  const box = $("messages");
  if (!conv) return;
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  if (rendered.conv !== conv.id) {
    box.replaceChildren();
    rendered.conv = conv.id;
    rendered.keys = [];
  }
  conv.messages.forEach((m, i) => {
    const key = JSON.stringify(m) + (m.from === "bot" ? state.status.bot_name : "");
    if (rendered.keys[i] === key) return;
    const node = renderMessage(m, conv, i);
    if (i < box.children.length) box.children[i].replaceWith(node);
    else box.append(node);
    rendered.keys[i] = key;
  });
  if (atBottom) box.scrollTop = box.scrollHeight;
}

// --- frames ------------------------------------------------------------------------------------

function addFrame(frame) {
  if (state.frames.has(frame.seq)) return;
  state.frames.set(frame.seq, frame);
  const arrow = frame.direction === "out" ? "→" : "←";
  const li = el("li", { class: `${frame.direction}${frame.delivered === false ? " lost" : ""}` },
    el("span", { class: "dir", text: `${arrow} ${frame.cmd || (frame.errcode !== undefined && frame.errcode !== null ? `ack ${frame.errcode}` : "frame")} ` }),
    el("span", { text: frame.text }));
  const list = $("frame-list");
  list.append(li);
  while (list.children.length > 500) list.firstChild.remove();
  list.scrollTop = list.scrollHeight;
}

// --- live updates ------------------------------------------------------------------------------

function onEvent(event) {
  if (event.type === "message") {
    const conv = ensureConv(event.conversation);
    conv.messages[event.index] = event.message;
    if (event.message.from === "user" && !conv.members.includes(event.message.userid)) conv.members.push(event.message.userid);
    if (!document.querySelector(`#conversations li[data-conv="${CSS.escape(event.conversation)}"]`)) {
      loadConversation(event.conversation);
    }
    if (state.current === event.conversation) renderMessages();
  } else if (event.type === "frame") {
    addFrame(event.frame);
  } else if (event.type === "status") {
    setStatus(event.status);
  }
}

function setStatus(status) {
  state.status = status;
  const box = $("status");
  box.dataset.subscribed = String(!!status.subscribed);
  box.textContent = status.mode === "webhook" ? `webhook · ${status.bot_url}` : status.subscribed ? `bot connected (${status.bot_id})` : "bot not connected";
}

function listen() {
  const source = new EventSource(`${API}/events`);
  for (const type of ["message", "frame", "status"]) {
    source.addEventListener(type, (e) => onEvent(JSON.parse(e.data)));
  }
  source.addEventListener("reset", () => boot());
}

async function boot() {
  setStatus(await call("/status"));
  const { conversations } = await call("/conversations");
  for (const info of conversations) ensureConv(info.id, info);
  await Promise.all(conversations.map((c) => loadConversation(c.id)));
  const { frames } = await call("/frames?since=0&limit=5000");
  frames.forEach(addFrame);
  renderSidebar();
}

// --- user actions ------------------------------------------------------------------------------

$("new-chat").addEventListener("submit", async (e) => {
  e.preventDefault();
  const id = $("new-user").value.trim();
  ensureConv(id, { type: "single", members: [id] });
  select(id);
  $("new-user").value = "";
  await act("/enter_chat", { userid: id });  // entering the chat: the bot may welcome
});

$("new-group").addEventListener("submit", (e) => {
  e.preventDefault();
  const id = $("new-group-id").value.trim();
  const members = $("new-group-members").value.split(",").map((s) => s.trim()).filter(Boolean);
  if (!members.length) return showError("a group needs at least one member");
  ensureConv(id, { type: "group", members });
  select(id);
  $("new-group-id").value = $("new-group-members").value = "";
});

$("composer").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("composer-input");
  const text = input.value.trim();
  const conv = state.convs.get(state.current);
  if (!text || !conv) return;
  input.value = "";
  await act("/messages", { type: "text", userid: speaker(), chatid: conv.type === "group" ? conv.id : null, text });
});

$("attach").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  e.target.value = "";
  const conv = state.convs.get(state.current);
  if (!file || !conv) return;
  if (conv.type === "group") return showError("WeCom delivers images and files from single chats only");
  const data = await new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result.split(",", 2)[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
  const type = file.type.startsWith("image/") ? "image" : "file";
  await act("/messages", { type, userid: speaker(), data_base64: data, filename: type === "file" ? file.name : null });
});

$("speaker").addEventListener("change", () => $("composer-input").focus());
$("toggle-frames").addEventListener("click", () => { $("frames").hidden = !$("frames").hidden; });

boot().then(listen, (err) => showError(`cannot reach the control API: ${err.message}`));
