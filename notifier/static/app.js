/*
 * The Notifier page: log in, inbox with unread count, live toasts, and (for admins) a send
 * form. Plain DOM code with no framework and no build step; the socket logic lives in
 * socket.js (NotificationSocket), which is the part worth copying into other apps.
 *
 * Session: `POST /session` sets an HttpOnly cookie that every fetch and the socket carry.
 * `GET /session` says whether the cookie is still good (and when it expires) without
 * failing, so a fresh page load causes no 401 in the console.
 *
 * Renewal: the server has no refresh grant yet, so the page renews by posting the same
 * credentials to `POST /session` shortly before the cookie expires, then reconnects the
 * socket with `since` so nothing is lost. The password is kept only in this tab's memory
 * (never in storage): a reloaded tab cannot renew, and its session ends at expiry with the
 * server's 1008 "token expired", which brings back the login form with that reason.
 */
"use strict";

const $ = (id) => document.getElementById(id);

/** Friendly words for the 1008 reasons a socket can be closed with. */
const CLOSE_REASONS = {
  "token expired": "Your session expired. Log in again.",
  "invalid token": "Your session is no longer valid. Log in again.",
  "token revoked": "Your session was revoked. Log in again.",
  "unknown user": "This account no longer exists.",
  "no token": "You are logged out.",
  "origin not allowed": "This page's address may not use the session cookie.",
  "invalid since": "The client asked for an invalid position in the stream.",
};

const state = {
  me: null, // {username, is_admin}
  socket: null, // NotificationSocket while logged in
  items: new Map(), // notification id -> notification, everything listed in the inbox
  unread: 0,
  live: false, // the socket is open
  connectedBefore: false, // a socket was open once: the next open is a reconnect
  countsFromServer: false, // frames carry unread_count, so the socket keeps the badge right
  credentials: null, // {username, password} typed in this tab, for renewal; memory only
  renewTimer: null,
};

// --- HTTP --------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** Call the API with the session cookie; resolve to the JSON body or throw an ApiError. */
async function api(method, path, { json, form } = {}) {
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = new URLSearchParams(form);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { detail: text };
  }
  if (!response.ok) throw new ApiError(response.status, describeError(response, body), body);
  return body;
}

/** One readable line from FastAPI's error bodies ({"detail": "..."} or a list of field errors). */
function describeError(response, body) {
  const detail = body && body.detail;
  if (Array.isArray(body && body.usernames)) return `${detail}: ${body.usernames.join(", ")}`;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((e) => `${(e.loc || []).slice(1).join(".") || "request"}: ${e.msg}`).join("; ");
  }
  return `${response.status} ${response.statusText}`;
}

// --- Session -----------------------------------------------------------------------------

async function boot() {
  $("login-form").addEventListener("submit", onLogin);
  $("logout").addEventListener("click", onLogout);
  $("read-all").addEventListener("click", onReadAll);
  $("send-form").addEventListener("submit", onSend);
  for (const radio of document.querySelectorAll('input[name="audience"]')) {
    radio.addEventListener("change", updateAudience);
  }
  // Back online: skip what is left of the backoff.
  window.addEventListener("online", () => state.socket && state.socket.reconnectNow());

  const session = await api("GET", "/session");
  if (session.authenticated) {
    await enter(session);
  } else {
    showLogin(session.reason === "no token" ? "" : session.reason);
  }
}

async function onLogin(event) {
  event.preventDefault();
  const credentials = { username: $("login-username").value, password: $("login-password").value };
  const error = $("login-error");
  error.hidden = true;
  try {
    await api("POST", "/session", { form: credentials });
  } catch (err) {
    error.textContent = err.status === 401 ? "Wrong username or password." : err.message;
    error.hidden = false;
    return;
  }
  state.credentials = credentials;
  $("login-password").value = "";
  await enter(await api("GET", "/session"));
}

async function onLogout() {
  leave("");
  await api("DELETE", "/session");
}

/** Show the app for a live session: inbox first, then the socket resuming after it. */
async function enter(session) {
  state.me = { username: session.username, is_admin: session.is_admin };
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  $("session-bar").hidden = false;
  $("who").textContent = session.username;
  $("admin-view").hidden = !session.is_admin;
  scheduleRenewal(session.expires_in);

  const newestId = await loadInbox();
  state.socket = new NotificationSocket({
    url: `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`,
    // Resume right after the newest notification the inbox showed: whatever arrived
    // between that request and the socket opening is replayed, nothing is listed twice.
    since: newestId,
    onNotification: onNotification,
    onRead: onReadFrame,
    onUnreadCount: (count) => {
      state.countsFromServer = true;
      setUnread(count);
    },
    onStatus: showConnection,
    onAuthFailure: onAuthFailure,
    onTokenExpiring: () => renewAndReconnect(),
  });
  state.socket.start();
}

/** Back to the login form, with the reason the session ended (if any). */
function leave(reason) {
  clearTimeout(state.renewTimer);
  if (state.socket) state.socket.stop();
  Object.assign(state, {
    me: null,
    socket: null,
    unread: 0,
    live: false,
    connectedBefore: false,
    countsFromServer: false,
    credentials: null,
  });
  state.items.clear();
  $("inbox").replaceChildren();
  $("toasts").replaceChildren();
  showLogin(reason);
}

function showLogin(reason) {
  $("app-view").hidden = true;
  $("session-bar").hidden = true;
  $("login-view").hidden = false;
  const notice = $("login-reason");
  notice.hidden = !reason;
  notice.textContent = reason in CLOSE_REASONS ? `${CLOSE_REASONS[reason]} (${reason})` : reason;
  document.title = "Notifier";
  $("login-username").focus();
}

/** The socket was refused (1008): renew once if the token merely expired, else log out. */
async function onAuthFailure(reason) {
  if (reason === "token expired" && (await renewSession())) return true;
  leave(reason);
  return false;
}

function scheduleRenewal(expiresIn) {
  clearTimeout(state.renewTimer);
  if (!state.credentials || typeof expiresIn !== "number") return;
  // Renew a minute early (a fifth of the lifetime for short ones): timers in background
  // tabs may fire late.
  const margin = Math.min(60, expiresIn / 5);
  state.renewTimer = setTimeout(renewAndReconnect, Math.max(0, expiresIn - margin) * 1000);
}

/** A fresh cookie from the credentials typed in this tab; false when that is impossible. */
async function renewSession() {
  if (!state.credentials) return false;
  try {
    const token = await api("POST", "/session", { form: state.credentials });
    scheduleRenewal(token.expires_in);
    return true;
  } catch (err) {
    if (err.status === 401) {
      state.credentials = null; // the password changed: only the user can fix that
      return false;
    }
    // Server unreachable: try again soon. If the token expires meanwhile, the socket's
    // 1008 "token expired" comes back through onAuthFailure.
    clearTimeout(state.renewTimer);
    state.renewTimer = setTimeout(renewAndReconnect, 5000);
    return false;
  }
}

/** Renew, then move the socket to the new cookie: the open one keeps the old expiry. */
async function renewAndReconnect() {
  if ((await renewSession()) && state.socket) state.socket.restart();
}

// --- Inbox -------------------------------------------------------------------------------

/** Load the newest page of the inbox; resolve to the newest id (0 when it is empty). */
async function loadInbox() {
  const page = await api("GET", "/notifications?limit=50");
  state.items.clear();
  const list = $("inbox");
  list.replaceChildren();
  for (const notification of page.items) {
    state.items.set(notification.id, notification);
    list.append(renderItem(notification));
  }
  setUnread(page.unread_count);
  updateEmpty();
  return page.items.length ? page.items[0].id : 0;
}

/** After a reconnect: take read flags and the unread count from the server again. */
async function resyncInbox() {
  let page;
  try {
    page = await api("GET", "/notifications?limit=50");
  } catch {
    return; // the socket's next frames still carry the count
  }
  for (const notification of page.items) {
    if (notification.read) setRead(notification.id);
  }
  setUnread(page.unread_count);
}

function onNotification(notification, frame) {
  if (state.items.has(notification.id)) return;
  state.items.set(notification.id, notification);
  $("inbox").prepend(renderItem(notification));
  updateEmpty();
  // Servers that do not send unread_count yet: count it here.
  if (typeof frame.unread_count !== "number" && !notification.read) setUnread(state.unread + 1);
  showToast(notification);
}

/** Another device (or this one) marked notifications read. */
function onReadFrame(frame) {
  for (const id of frame.ids || []) setRead(id);
}

async function markRead(id) {
  try {
    const notification = await api("POST", `/notifications/${id}/read`);
    const wasUnread = setRead(notification.id);
    // With a live socket the server's "read" frame brings the new count.
    if (wasUnread && !(state.live && state.countsFromServer)) setUnread(state.unread - 1);
  } catch (err) {
    showToast({ title: "Could not mark as read", body: err.message }, "error");
  }
}

async function onReadAll() {
  try {
    await api("POST", "/notifications/read-all");
  } catch (err) {
    showToast({ title: "Could not mark all as read", body: err.message }, "error");
    return;
  }
  for (const id of state.items.keys()) setRead(id);
  if (!(state.live && state.countsFromServer)) setUnread(0);
}

/** Mark one listed notification read; true when it was unread until now. */
function setRead(id) {
  const notification = state.items.get(id);
  if (!notification || notification.read) return false;
  notification.read = true;
  const item = document.querySelector(`#inbox li[data-id="${id}"]`);
  if (item) item.replaceWith(renderItem(notification));
  return true;
}

function setUnread(count) {
  state.unread = Math.max(0, count);
  const badge = $("badge");
  badge.textContent = String(state.unread);
  badge.dataset.count = String(state.unread);
  $("unread-label").textContent = state.unread ? `(${state.unread} unread)` : "";
  document.title = state.unread ? `(${state.unread}) Notifier` : "Notifier";
}

function updateEmpty() {
  $("inbox-empty").hidden = state.items.size > 0;
}

/** One inbox row. Notification text is untrusted: it only ever goes in as textContent. */
function renderItem(notification) {
  const item = document.createElement("li");
  item.dataset.id = String(notification.id);
  item.className = notification.read ? "read" : "unread";

  const title = document.createElement("strong");
  title.className = "title";
  title.textContent = notification.title;
  const time = document.createElement("time");
  time.dateTime = notification.created_at;
  time.textContent = new Date(notification.created_at).toLocaleString();
  item.append(title, time);

  if (notification.body) {
    const body = document.createElement("p");
    body.className = "body";
    body.textContent = notification.body;
    item.append(body);
  }
  if (notification.data && Object.keys(notification.data).length) {
    const data = document.createElement("code");
    data.className = "data";
    data.textContent = JSON.stringify(notification.data);
    item.append(data);
  }
  if (!notification.read) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "mark-read";
    button.textContent = "Mark read";
    button.addEventListener("click", () => markRead(notification.id));
    item.append(button);
  }
  return item;
}

// --- Live status and toasts --------------------------------------------------------------

function showConnection(socketState, detail) {
  state.live = socketState === "live";
  if (state.live) {
    // Read frames are not replayed: whatever other devices marked read while this one was
    // away only shows after a fresh look at the inbox.
    if (state.connectedBefore) resyncInbox();
    state.connectedBefore = true;
  }
  const label = $("connection");
  label.dataset.state = socketState;
  label.textContent = {
    live: "live",
    connecting: "connecting",
    waiting: "reconnecting",
    closed: "offline",
  }[socketState];
  label.title = detail || "Live connection";
}

function showToast(notification, kind = "notification") {
  const toast = document.createElement("div");
  toast.className = `toast ${kind}`;
  toast.setAttribute("role", kind === "error" ? "alert" : "status");
  const title = document.createElement("strong");
  title.textContent = notification.title;
  toast.append(title);
  if (notification.body) {
    const body = document.createElement("p");
    body.textContent = notification.body;
    toast.append(body);
  }
  toast.addEventListener("click", () => toast.remove());
  $("toasts").append(toast);
  setTimeout(() => toast.remove(), 8000);
}

// --- Sending (admins) --------------------------------------------------------------------

function audience() {
  return document.querySelector('input[name="audience"]:checked').value;
}

function updateAudience() {
  const everyone = audience() === "everyone";
  $("recipients-label").hidden = everyone;
  $("send-usernames").required = !everyone;
}

async function onSend(event) {
  event.preventDefault();
  const report = (text, ok) => {
    const line = $("send-result");
    line.textContent = text;
    line.className = ok ? "ok" : "error";
    line.hidden = false;
  };
  let data = {};
  const rawData = $("send-data").value.trim();
  if (rawData) {
    try {
      data = JSON.parse(rawData);
    } catch {
      data = null;
    }
    if (data === null || typeof data !== "object" || Array.isArray(data)) {
      report("Data must be a JSON object, like {\"run\": 42}.", false);
      return;
    }
  }
  const content = { title: $("send-title").value, body: $("send-body").value, data };
  const sent = (text) => {
    report(text, true);
    for (const id of ["send-title", "send-body", "send-data"]) $(id).value = "";
  };
  const usernames = $("send-usernames").value.split(/[\s,]+/).filter(Boolean);
  try {
    if (audience() === "everyone") {
      const result = await api("POST", "/notifications/broadcast", { json: content });
      sent(`Broadcast to ${result.recipients} user${result.recipients === 1 ? "" : "s"}.`);
    } else if (audience() === "one") {
      if (usernames.length !== 1) {
        report("Name exactly one user, or choose \"several users\".", false);
        return;
      }
      const path = `/users/${encodeURIComponent(usernames[0])}/notifications`;
      const notification = await api("POST", path, { json: content });
      sent(`Sent to ${notification.username} (id ${notification.id}).`);
    } else {
      const result = await api("POST", "/notifications", { json: { ...content, usernames } });
      sent(`Sent to ${result.notifications.length} users.`);
    }
  } catch (err) {
    report(err.message, false);
  }
}

boot().catch((err) => showLogin(`Cannot reach the server: ${err.message}`));
