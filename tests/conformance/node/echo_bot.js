// An echo bot on the official @wecom/aibot-node-sdk, run by tests/test_conformance_sdks.py
// against the bundled fake WeCom. Settings from the environment (WECOM_WS_URL, WECOM_BOT_ID,
// WECOM_BOT_SECRET, HEARTBEAT_MS); trust for a wss:// fake through NODE_EXTRA_CA_CERTS.
// It reports what the SDK tells it as JSON lines on stdout: {"event": ...}.
"use strict";
const crypto = require("crypto");
const { WSClient } = require("@wecom/aibot-node-sdk");

const report = (event, extra = {}) => process.stdout.write(JSON.stringify({ event, ...extra }) + "\n");
const quiet = { debug() {}, info() {}, warn() {}, error: (...a) => process.stderr.write(a.join(" ") + "\n") };

const client = new WSClient({
  botId: process.env.WECOM_BOT_ID,
  secret: process.env.WECOM_BOT_SECRET,
  wsUrl: process.env.WECOM_WS_URL,
  heartbeatInterval: Number(process.env.HEARTBEAT_MS || 30000),
  reconnectInterval: 200,
  maxReconnectAttempts: -1,
  maxAuthFailureAttempts: 3,
  logger: quiet,
});
let streams = 0;
const md5 = (buf) => crypto.createHash("md5").update(buf).digest("hex");
const card = (taskId, title) => ({
  card_type: "button_interaction",
  main_title: { title, desc: "node sdk" },
  button_list: [{ text: "Yes", key: "yes", style: 1 }, { text: "No", key: "no", style: 2 }],
  task_id: taskId,
});
const guard = (fn) => async (frame) => {
  try { await fn(frame); } catch (err) { report("handler_error", { message: String(err && err.message || err) }); }
};

client.on("authenticated", () => report("authenticated"));
client.on("disconnected", (reason) => report("disconnected", { reason: String(reason) }));
client.on("reconnecting", (attempt) => report("reconnecting", { attempt }));
client.on("error", (err) => report("error", { name: err && err.name, message: String(err && err.message || err) }));
client.on("event.disconnected_event", () => report("kicked"));

client.on("message.text", guard(async (frame) => {
  const text = frame.body.text.content;
  const sid = `node-stream-${++streams}`;
  if (text === "/card") {
    await client.replyTemplateCard(frame, card(`node_card_${streams}`, "Node card"));
  } else if (text.startsWith("/push ")) {
    await client.replyStream(frame, sid, "pushing", true);
    await client.sendMessage(frame.body.from.userid, { msgtype: "markdown", markdown: { content: text.slice(6) } });
  } else if (text === "/upload") {
    const result = await client.uploadMedia(Buffer.from("hello from node"), { type: "file", filename: "hello.txt" });
    await client.replyMedia(frame, "file", result.media_id);
  } else {
    await client.replyStream(frame, sid, text.slice(0, Math.max(1, text.length >> 1)), false);
    await client.replyStream(frame, sid, text, true);
  }
}));
for (const kind of ["image", "file"]) {
  client.on(`message.${kind}`, guard(async (frame) => {
    const part = frame.body[kind];
    const { buffer, filename } = await client.downloadFile(part.url, part.aeskey);
    await client.replyStream(frame, `node-stream-${++streams}`, `${kind} ${filename || "-"} md5:${md5(buffer)}`, true);
  }));
}
client.on("event.enter_chat", guard(async (frame) => {
  await client.replyWelcome(frame, { msgtype: "text", text: { content: "welcome from node" } });
}));
client.on("event.template_card_event", guard(async (frame) => {
  const ev = frame.body.event.template_card_event;
  await client.updateTemplateCard(frame, card(ev.task_id, `clicked ${ev.event_key}`));
}));

process.on("SIGTERM", () => { client.disconnect(); setTimeout(() => process.exit(0), 100); });
client.connect();
