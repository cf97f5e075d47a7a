// The GeneralBot web chat. Tokens stay in memory (never in storage or the URL); the
// socket authenticates with its first message; every text is set with textContent.
"use strict";

const $ = (id) => document.getElementById(id);
let token = null;
let socket = null;
let conversation = null;

function status(text) { $("status").textContent = text; }

function show(sender, text) {
  const li = document.createElement("li");
  li.className = sender;
  const who = document.createElement("span");
  who.className = "visually-hidden";
  who.textContent = sender === "bot" ? "Bot: " : "You: ";
  li.append(who, document.createTextNode(text));
  $("log").append(li);
  li.scrollIntoView({ block: "nearest" });
}

function suggest(list) {
  const box = $("suggestions");
  box.replaceChildren();
  for (const q of list || []) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "suggestion";
    b.textContent = q;
    b.addEventListener("click", () => say(q));
    box.append(b);
  }
}

function replies(list) {
  let last = [];
  for (const r of list) { show("bot", r.text); last = r.suggestions || []; }
  suggest(last);
}

async function api(path, options = {}) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  const resp = await fetch(path, { ...options, headers });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(body.error || resp.statusText);
  return body;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  socket = new WebSocket(scheme + location.host + "/api/ws");
  socket.addEventListener("open", () => socket.send(JSON.stringify({ type: "auth", token })));
  socket.addEventListener("message", (event) => {
    const m = JSON.parse(event.data);
    if (m.type === "ready") { $("start").disabled = false; status("Connected."); }
    else if (m.type === "started") {
      conversation = m.conversation;
      $("log").replaceChildren();
      replies(m.replies);
      $("text").disabled = false; $("send").disabled = false; $("text").focus();
    } else if (m.type === "replies") { replies(m.replies); }
    else if (m.type === "error") { status(m.error); }
  });
  socket.addEventListener("close", () => {
    $("start").disabled = true; $("text").disabled = true; $("send").disabled = true;
    status("Disconnected.");
  });
}

function say(text) {
  if (!conversation || !text.trim()) return;
  show("user", text);
  suggest([]);
  socket.send(JSON.stringify({ type: "say", conversation, text }));
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("signin-error").textContent = "";
    const body = { email: $("email").value, password: $("password").value };
    if ($("totp").value) body.totp = $("totp").value;
    try {
      const t = await api("/api/auth/login", { method: "POST", body: JSON.stringify(body) });
      token = t.access_token;
      $("password").value = "";
      const bots = await api("/api/bots");
      $("bot").replaceChildren(...bots.map((b) => {
        const o = document.createElement("option");
        o.value = b.slug; o.textContent = b.name;
        return o;
      }));
      $("signin").hidden = true;
      $("chat").hidden = false;
      $("bot").focus();
      connect();
    } catch (e) {
      $("signin-error").textContent = "Sign-in failed: " + e.message;
    }
  });
  $("start").addEventListener("click", () => {
    socket.send(JSON.stringify({ type: "start", bot: $("bot").value }));
  });
  $("say-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("text").value;
    $("text").value = "";
    say(text);
  });
  $("signout").addEventListener("click", async () => {
    try { await api("/api/auth/logout", { method: "POST", body: "{}" }); } catch (e) { /* signed out anyway */ }
    token = null; conversation = null;
    if (socket) socket.close();
    $("chat").hidden = true; $("signin").hidden = false;
    $("log").replaceChildren(); suggest([]);
  });
});
