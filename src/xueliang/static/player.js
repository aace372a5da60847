// The player page's script (a file of its own: the CSP allows scripts from 'self' only).
"use strict";
(() => {
  const q = new URLSearchParams(location.search);
  const channel = q.get("channel");
  const stream = q.get("stream");
  const transcode = q.get("transcode");
  const via = q.get("via"); // "http": skip the WebSocket (debugging, restrictive proxies)
  const $ = (id) => document.getElementById(id);
  const video = $("video");
  // Exposed for tests and for the console: what the player is doing.
  const state = (window.xlPlayer = { via: null, mime: null, error: null, appended: 0, messages: 0 });
  let token = q.get("token") || sessionStorage.getItem("xueliang.token");

  function status(text, error) {
    $("status").textContent = text;
    $("status").className = error ? "error" : "";
    if (error) state.error = text;
  }

  if (!channel && !stream) {
    status("add ?channel=<channel id> (or ?stream=<stream name>) to the address", true);
    return;
  }
  $("what").textContent = channel ? `channel ${channel}` : `stream ${stream}`;
  const base = channel
    ? `/api/v1/channels/${encodeURIComponent(channel)}/`
    : `/api/v1/streams/${stream.split("/").map(encodeURIComponent).join("/")}/`;

  function login() {
    const form = $("login");
    form.hidden = false;
    status("log in to play");
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      const body = { username: form.username.value, password: form.password.value };
      const r = await fetch("/api/v1/auth/login", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      if (!r.ok) { status(`login failed (${r.status})`, true); return; }
      token = (await r.json()).access_token;
      sessionStorage.setItem("xueliang.token", token);
      form.hidden = true;
      start();
    };
  }

  // A login token is exchanged for a short-lived media token scoped to this channel/stream;
  // a token that is already a media token (from the URL) is used as it is.
  async function mediaToken() {
    try {
      const r = await fetch(base + "media-token", { method: "POST", headers: { Authorization: `Bearer ${token}` } });
      if (r.ok) return (await r.json()).token;
      if (r.status === 403 || r.status === 404) throw new Error(`${r.status}: ${(await r.json()).detail}`);
    } catch (e) {
      if (e instanceof Error && /^40[34]/.test(e.message)) throw e;
    }
    return token;
  }

  function query(tok) {
    const p = new URLSearchParams({ token: tok });
    if (transcode) p.set("transcode", transcode);
    return "?" + p.toString();
  }

  // ------------------------------------------------------------------- MSE plumbing
  function attach(mime) {
    if (!window.MediaSource || !MediaSource.isTypeSupported(mime)) {
      throw new Error(`this browser cannot play ${mime}` + (mime.includes("hvc1") ? " (try &transcode=h264)" : ""));
    }
    state.mime = mime;
    $("codec").textContent = mime;
    const ms = new MediaSource();
    const pending = [];
    let sb = null;
    video.src = URL.createObjectURL(ms);
    ms.addEventListener("sourceopen", () => {
      sb = ms.addSourceBuffer(mime);
      sb.mode = "segments";
      sb.addEventListener("updateend", () => { keepLive(sb); pump(); });
      pump();
    }, { once: true });
    function pump() {
      if (!sb || sb.updating || !pending.length) return;
      const size = pending.reduce((n, b) => n + b.byteLength, 0);
      const data = new Uint8Array(size);
      let off = 0;
      for (const b of pending) { data.set(new Uint8Array(b), off); off += b.byteLength; }
      pending.length = 0;
      try { sb.appendBuffer(data); state.appended += size; }
      catch (e) { status(`append failed: ${e.message}`, true); }
    }
    return (buf) => { pending.push(buf); pump(); };
  }

  // Stay near the live edge: a new reader starts at the cached key frame, up to a GOP old.
  let lastTrim = 0;
  function keepLive(sb) {
    const b = video.buffered;
    if (!b.length) return;
    const end = b.end(b.length - 1);
    if (video.currentTime < b.start(0) || end - video.currentTime > 2.5) video.currentTime = Math.max(b.start(0), end - 0.3);
    if (video.paused) video.play().catch(() => {});
    const now = performance.now();
    if (now - lastTrim > 10000 && video.currentTime - b.start(0) > 30 && !sb.updating) {
      lastTrim = now;
      sb.remove(b.start(0), video.currentTime - 10);
    }
  }

  // ------------------------------------------------------------------- transports
  function playWebSocket(tok) {
    return new Promise((resolve, reject) => {
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      const ws = new WebSocket(`${proto}//${location.host}${base}live.ws${query(tok)}`);
      ws.binaryType = "arraybuffer";
      let feed = null;
      ws.onmessage = (ev) => {
        state.messages += 1;
        if (typeof ev.data === "string") {
          const meta = JSON.parse(ev.data);
          if (meta.width) $("size").textContent = `${meta.width}×${meta.height}`;
          try { feed = attach(meta.mime); } catch (e) { ws.close(); reject(e); return; }
          state.via = "websocket";
          $("via").textContent = "fMP4 over WebSocket";
          status("playing");
          resolve();
        } else if (feed) {
          feed(ev.data);
        }
      };
      ws.onerror = () => { if (!feed) reject(new Error("WebSocket failed")); };
      ws.onclose = (ev) => {
        if (!feed) reject(new Error(ev.reason || `WebSocket closed (${ev.code})`));
        else status(`stream ended${ev.reason ? ": " + ev.reason : ""}`, ev.code !== 1000);
      };
    });
  }

  async function playFetch(tok) {
    const info = await fetch(`${base}live.info${query(tok)}`);
    if (!info.ok) throw new Error(`live.info: ${info.status}`);
    const meta = await info.json();
    if (meta.width) $("size").textContent = `${meta.width}×${meta.height}`;
    const feed = attach(meta.mime);
    const r = await fetch(`${base}live.mp4${query(tok)}`);
    if (!r.ok || !r.body) throw new Error(`live.mp4: ${r.status}`);
    state.via = "fetch";
    $("via").textContent = "fMP4 over HTTP";
    status("playing");
    const reader = r.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) { status("stream ended"); return; }
      state.messages += 1;
      feed(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
    }
  }

  async function start() {
    status("connecting…");
    let tok;
    try { tok = await mediaToken(); } catch (e) { status(e.message, true); return; }
    if (via === "http") {
      try { await playFetch(tok); } catch (e) { status(e.message || String(e), true); }
      return;
    }
    try {
      await playWebSocket(tok);
    } catch (e) {
      if (/cannot play/.test(e.message)) { status(e.message, true); return; }
      console.warn("WebSocket playback failed, falling back to HTTP:", e);
      try { await playFetch(tok); } catch (e2) { status(e2.message || String(e2), true); }
    }
  }

  setInterval(() => {
    $("time").textContent = `t = ${video.currentTime.toFixed(2)} s`;
    if (video.videoWidth) $("size").textContent = `${video.videoWidth}×${video.videoHeight}`;
  }, 250);

  if (token) start(); else login();
})();
