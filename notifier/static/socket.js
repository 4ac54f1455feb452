/*
 * NotificationSocket: the reference client for Notifier's `/ws`.
 *
 * Copy this file into your app. It has no dependencies and does what every client must:
 *
 *  - Resume without gaps or duplicates. It remembers the id of the last notification it
 *    handed over and reconnects with `?since=<that id>`: the server first replays every
 *    stored notification after it, then goes live. Any frame at or below the last id is
 *    dropped, so nothing is shown twice.
 *  - Reconnect with exponential backoff and jitter after network loss, 1001 (going away),
 *    1011, 1013 and the like, so a fleet of clients does not come back all at once.
 *  - Honour the server's own delay on 1012 ("server restarting; retry_after_ms=2300").
 *  - Stop on 1008 (policy violation: no/invalid/expired token, unknown user, origin not
 *    allowed, invalid since). Reconnecting with the same credentials cannot succeed, so it
 *    asks the app what to do: `onAuthFailure(reason)` may renew the session and resolve to
 *    true (reconnect at once), or resolve to false (stay closed, e.g. show a login form).
 *
 * Authentication is the app's business: in a browser that logged in with `POST /session`,
 * the `access_token` cookie goes with the handshake by itself; a native app passes a token
 * through `url` (for example `wss://host/ws?token=...`, see `buildUrl`).
 *
 * Usage:
 *   const socket = new NotificationSocket({
 *     url: "wss://notify.example.com/ws",
 *     since: lastSeenId,                       // null: only what arrives from now on
 *     onNotification: (n, frame) => show(n),   // each notification exactly once, in id order
 *     onRead: (frame) => markRead(frame.ids),  // read state changed on another device
 *     onUnreadCount: (count) => setBadge(count),
 *     onStatus: (state, detail) => ...,        // "connecting" | "live" | "waiting" | "closed"
 *     onAuthFailure: async (reason) => false,  // see above
 *   });
 *   socket.start();
 */
"use strict";

class NotificationSocket {
  /** Delays in milliseconds for the n-th consecutive failed attempt: base * 2^n, capped. */
  static BACKOFF_BASE_MS = 500;
  static BACKOFF_CAP_MS = 30000;

  constructor(options) {
    this.url = options.url;
    this.lastId = options.since ?? null;
    this.onNotification = options.onNotification || (() => {});
    this.onRead = options.onRead || (() => {});
    this.onUnreadCount = options.onUnreadCount || (() => {});
    this.onStatus = options.onStatus || (() => {});
    this.onAuthFailure = options.onAuthFailure || (async () => false);
    this.onTokenExpiring = options.onTokenExpiring || (() => {});
    this.ws = null;
    this.attempts = 0; // consecutive failures, reset once a socket opens
    this.timer = null;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  /** Close for good (logout, page teardown). No reconnect follows. */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, "client closing");
    }
    this.onStatus("closed", "");
  }

  /** Close and reconnect at once, resuming from the last id (after renewing credentials). */
  restart() {
    clearTimeout(this.timer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null; // its close event must not schedule a second reconnect
      ws.close(1000, "reconnecting");
    }
    this.stopped = false;
    this.connect();
  }

  /** Skip the remaining wait, e.g. when the browser reports it is back online. */
  reconnectNow() {
    if (!this.stopped && this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
      this.connect();
    }
  }

  buildUrl() {
    if (this.lastId === null) return this.url;
    const url = new URL(this.url, location.href);
    url.searchParams.set("since", String(this.lastId));
    return url.toString();
  }

  connect() {
    this.timer = null;
    this.onStatus("connecting", "");
    const ws = new WebSocket(this.buildUrl());
    this.ws = ws;
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this.attempts = 0;
      this.onStatus("live", "");
    };
    ws.onmessage = (event) => {
      if (ws !== this.ws) return;
      this.handleFrame(event.data);
    };
    // Every failure ends in a close event (an "error" event always comes before one), so
    // the close handler alone decides what happens next.
    ws.onclose = (event) => {
      if (ws !== this.ws) return; // a socket we replaced or stopped on purpose
      this.ws = null;
      this.handleClose(event.code, event.reason);
    };
  }

  handleFrame(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return; // not ours to crash on; the server only sends JSON text frames
    }
    if (frame.type === "notification") {
      const notification = frame.notification;
      // Ids grow along a user's stream. Anything at or below the last one was already
      // handed over (for example replayed and then also queued live): drop it.
      if (this.lastId !== null && notification.id <= this.lastId) return;
      this.lastId = notification.id;
      this.onNotification(notification, frame);
      if (typeof frame.unread_count === "number") this.onUnreadCount(frame.unread_count);
    } else if (frame.type === "read") {
      this.onRead(frame);
      if (typeof frame.unread_count === "number") this.onUnreadCount(frame.unread_count);
    } else if (frame.type === "token_expiring") {
      this.onTokenExpiring(frame.expires_in);
    }
    // Unknown types are ignored, so newer servers can add messages without breaking us.
  }

  async handleClose(code, reason) {
    if (this.stopped) return;
    if (code === 1008) {
      // The credentials are refused: ask the app whether it renewed them.
      this.onStatus("closed", reason);
      let renewed = false;
      try {
        renewed = await this.onAuthFailure(reason);
      } catch {
        renewed = false;
      }
      if (renewed && !this.stopped) {
        this.connect();
      } else {
        this.stopped = true;
      }
      return;
    }
    const delay = NotificationSocket.serverDelay(reason) ?? this.backoff(code);
    this.attempts += 1;
    this.onStatus("waiting", `${code}${reason ? " " + reason : ""}; retrying in ${Math.round(delay / 100) / 10} s`);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** Exponential backoff with "equal jitter": half the step fixed, half random. */
  backoff(code) {
    // A restarting server that named no delay: spread reconnects over 1-5 s.
    if (code === 1012 && this.attempts === 0) return 1000 + Math.random() * 4000;
    const step = Math.min(
      NotificationSocket.BACKOFF_CAP_MS,
      NotificationSocket.BACKOFF_BASE_MS * 2 ** this.attempts,
    );
    return step / 2 + Math.random() * (step / 2);
  }

  /** The delay a 1012 close asks for: "server restarting; retry_after_ms=2300" -> 2300. */
  static serverDelay(reason) {
    const match = /retry_after_ms=(\d+)/.exec(reason || "");
    return match ? Number(match[1]) : null;
  }
}
