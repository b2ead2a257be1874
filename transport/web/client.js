// vdistream web client: WebRTC video (and sound) of one desktop, keyboard and pointer back over
// a data channel, the desktop's cursor drawn by the browser, a stats overlay, and reconnects.
"use strict";
(() => {
  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  // "input", "clipboard" (with copy=TEXT, copy_repeat=N and copy_every=MS), "mic" (presses the
  // microphone button, if the page has one): the test suite's synthetic events
  const selftest = params.get("selftest");
  const wsUrl = (location.protocol === "https:" ? "wss://" : "ws://") + location.host +
      location.pathname.replace(/[^/]*$/, "") + "ws" + (token ? "?token=" + encodeURIComponent(token) : "");

  const video = document.getElementById("video");
  const screen = document.getElementById("screen");
  const overlay = document.getElementById("overlay");
  const stateBox = document.getElementById("state");
  const hint = document.getElementById("hint");
  const audio = document.getElementById("audio");
  const soundButton = document.getElementById("sound");
  const micButton = document.getElementById("mic");

  let ws = null, pc = null, channel = null, retryDelay = 500, reconnectTimer = null, framesThisConnection = 0;
  // Watchdog: connected, yet no frame decoded for this long (the host re-sends the picture every
  // 2 s even when nothing changes): start again rather than stay black.
  const STALL_MS = 6000;
  // Interrupted (ICE "disconnected") for this long: connect again.
  const INTERRUPTED_MS = 4000;
  // Not connected this long after the offer came (a relay down, no path at all): start again.
  const CONNECT_MS = 15000;
  let interruptedTimer = null, connectTimer = null, iceProblem = "";
  let decodedFrames = -1, decodedAt = 0;
  let selftestStarted = false;
  let desktop = { w: 0, h: 0 };
  let cursorCss = "default", cursorVisible = true;
  const shown = { state: "connecting", fps: 0, kbps: 0, rtt: null, latency: null, frames: 0 };
  window.vdistream = shown;  // for tests and curious users

  function setState(text, hidden) {
    shown.state = text;
    stateBox.textContent = text;
    stateBox.className = hidden ? "hidden" : "";
  }

  function send(obj) { if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj)); }
  function sendInput(obj) { if (channel && channel.readyState === "open") channel.send(JSON.stringify(obj)); }

  function teardown() {
    if (channel) { channel.onmessage = null; channel = null; }
    clearTimeout(interruptedTimer);
    clearTimeout(connectTimer);
    if (pc) { pc.ontrack = pc.onicecandidate = pc.onicecandidateerror = pc.onconnectionstatechange = pc.ondatachannel = null; pc.close(); pc = null; }
    if (ws) { ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null; try { ws.close(); } catch (e) {} ws = null; }
    // The user's choice and capture stay; the next connection's host says whether it listens.
    mic.sender = null; mic.sending = false; mic.listening = false; reportedMicrophone = "";
  }

  function scheduleReconnect(why) {
    if (iceProblem) why += "; " + iceProblem;
    teardown();
    setState("Disconnected (" + why + "), reconnecting…", false);
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 5000);
  }

  function connect() {
    teardown();
    framesThisConnection = 0;
    iceProblem = "";
    setState("Connecting…", false);
    ws = new WebSocket(wsUrl);
    ws.onmessage = async (m) => {
      let msg;
      try { msg = JSON.parse(m.data); } catch (e) { return; }
      if (msg.type === "config") {
        // Whether the desktop has a microphone the page may send to (then the button shows).
        mic.available = msg.microphone === true;
        updateMicrophone();
        // The host's STUN/TURN servers (TURN credentials made for this connection) and policy.
        makePeerConnection({ iceServers: msg.iceServers || [], iceTransportPolicy: msg.iceTransportPolicy || "all" });
      } else if (msg.type === "sdp" && msg.data.type === "offer") {
        if (!pc) makePeerConnection({ iceServers: [] });
        await pc.setRemoteDescription(msg.data);
        if (mic.available) attachMicrophoneSender();
        const answer = await pc.createAnswer();
        await pc.setLocalDescription(answer);
        send({ type: "sdp", data: { type: "answer", sdp: answer.sdp } });
      } else if (msg.type === "ice") {
        try { if (pc) await pc.addIceCandidate(msg.data); } catch (e) {}
      } else if (msg.type === "latency") {
        shown.latency = msg.p50_ms;
      } else if (msg.type === "error") {
        console.warn("server: " + msg.message);
      }
    };
    ws.onclose = (e) => scheduleReconnect(e.code === 1006 ? "no server" : "closed " + e.code);
  }

  function makePeerConnection(configuration) {
    if (pc) { pc.ontrack = pc.onicecandidate = pc.onicecandidateerror = pc.onconnectionstatechange = pc.ondatachannel = null; pc.close(); }
    shown.iceServers = configuration.iceServers.length;
    shown.icePolicy = configuration.iceTransportPolicy || "all";
    try {
      pc = new RTCPeerConnection(configuration);
    } catch (e) {
      // A server list the browser does not accept: say so, and try without it.
      console.warn("ICE servers refused by the browser: " + e);
      setState("The host's ICE servers were refused by the browser (" + e.message + ")", false);
      pc = new RTCPeerConnection({ iceServers: [] });
    }
    clearTimeout(connectTimer);
    connectTimer = setTimeout(() => {
      if (pc && pc.connectionState !== "connected") scheduleReconnect("no connection in " + CONNECT_MS / 1000 + " s");
    }, CONNECT_MS);
    pc.onicecandidateerror = (e) => {
      // 401: the TURN server refused the credentials; 701: no answer from the server.
      send({ type: "ice-error", url: e.url || "", code: e.errorCode || 0, text: e.errorText || "" });
      if (e.errorCode === 401) {
        iceProblem = "the TURN server refused the credentials";
        setState("The TURN server refused the credentials (401)", false);
      }
    };
    pc.ontrack = (e) => {
      // Lowest playout delay: render as soon as a frame is decodable.
      try { e.receiver.jitterBufferTarget = 0; } catch (err) {}
      try { e.receiver.playoutDelayHint = 0; } catch (err) {}
      if (e.track.kind === "audio") return startSound(new MediaStream([e.track]));
      video.srcObject = new MediaStream([e.track]);
      video.play().catch(() => {});
    };
    pc.onicecandidate = (e) => {
      if (e.candidate) send({ type: "ice", data: { sdpMLineIndex: e.candidate.sdpMLineIndex, candidate: e.candidate.candidate } });
    };
    pc.onconnectionstatechange = () => {
      const s = pc.connectionState;
      clearTimeout(interruptedTimer);
      if (s === "connected") {
        clearTimeout(connectTimer);
        setState("connected", true); retryDelay = 500; hint.className = "";
        decodedFrames = -1; decodedAt = performance.now();
      }
      else if (s === "failed" || s === "closed") scheduleReconnect(s);
      else if (s === "disconnected") {
        // The path went away (a relay restarting, a network change): wait a moment for ICE to
        // find it again, then start over with a new connection (new TURN allocations).
        setState("Connection interrupted…", false);
        interruptedTimer = setTimeout(() => scheduleReconnect("connection lost"), INTERRUPTED_MS);
      }
    };
    pc.ondatachannel = (e) => {
      channel = e.channel;
      channel.onmessage = (m) => onChannelMessage(m.data);
      channel.onopen = () => {
        if (selftest === "mic" && !selftestStarted) {
          selftestStarted = true;
          // Pressed as a user would; without a microphone there is no button to press.
          setTimeout(() => { if (!micButton.classList.contains("hidden")) micButton.click(); reportMicrophone(); }, 300);
        }
        if (selftest === "input" && !selftestStarted) { selftestStarted = true; setTimeout(runInputSelftest, 300); }
        if (selftest === "clipboard" && !selftestStarted) { selftestStarted = true; setTimeout(runClipboardSelftest, 300); }
      };
    };
  }

  // ---- cursor and desktop size from the host ----
  function onChannelMessage(text) {
    let m;
    try { m = JSON.parse(text); } catch (e) { return; }
    if (m.t === "size") { desktop = { w: m.w, h: m.h }; }
    else if (m.t === "cursor") {
      const c = document.createElement("canvas");
      c.width = m.w; c.height = m.h;
      const bytes = Uint8ClampedArray.from(atob(m.rgba), (ch) => ch.charCodeAt(0));
      if (bytes.length === m.w * m.h * 4 && m.w > 0 && m.h > 0) {
        c.getContext("2d").putImageData(new ImageData(bytes, m.w, m.h), 0, 0);
        cursorCss = "url(" + c.toDataURL() + ") " + m.hx + " " + m.hy + ", default";
      }
      applyCursor();
    } else if (m.t === "pos") {
      cursorVisible = m.visible;
      applyCursor();
    } else if (m.t === "clip") {
      clipIncoming += m.text;
      if (!m.more) { const text = clipIncoming; clipIncoming = ""; vmCopied(text); }
    } else if (m.t === "mic") {
      mic.listening = m.listening === true;
      updateMicrophone();
    } else if (m.t === "clip-refused") {
      shown.clipboardRefused = m.why;
      console.warn("clipboard: " + m.why);
    }
  }
  function applyCursor() { video.style.cursor = cursorVisible ? cursorCss : "none"; }

  // ---- input: only while the desktop has the focus ----
  // Maps a point in the page to desktop pixels, minus the letterbox bars of object-fit: contain.
  function toDesktop(clientX, clientY) {
    const r = video.getBoundingClientRect();
    const w = desktop.w || video.videoWidth, h = desktop.h || video.videoHeight;
    if (!w || !h) return null;
    const scale = Math.min(r.width / w, r.height / h);
    const left = r.left + (r.width - w * scale) / 2, top = r.top + (r.height - h * scale) / 2;
    const x = Math.round((clientX - left) / scale), y = Math.round((clientY - top) / scale);
    return { x: Math.max(0, Math.min(w - 1, x)), y: Math.max(0, Math.min(h - 1, y)) };
  }
  const focused = () => document.activeElement === screen;
  screen.addEventListener("mousedown", () => screen.focus());
  for (const type of ["keydown", "keyup"]) {
    document.addEventListener(type, (e) => {
      if (!focused() || !e.code) return;
      if (e.repeat && type === "keyup") return;
      const key = { t: "key", code: e.code, down: type === "keydown" };
      if (type === "keydown" && isPasteKey(e)) {
        // Let the browser fire its paste event (it carries the text); the key waits for it.
        releaseHeldPaste();
        heldPaste = key;
        heldTimer = setTimeout(releaseHeldPaste, 200);
        return;
      }
      e.preventDefault();
      if (heldPaste) releaseHeldPaste();
      sendInput(key);
    });
  }
  screen.addEventListener("blur", () => {
    // Release what may be held, so no key stays down in the desktop.
    for (const code of ["ShiftLeft", "ShiftRight", "ControlLeft", "ControlRight", "AltLeft", "AltRight", "MetaLeft", "MetaRight"])
      sendInput({ t: "key", code, down: false });
  });
  video.addEventListener("pointermove", (e) => {
    const p = toDesktop(e.clientX, e.clientY);
    if (p) sendInput({ t: "move", x: p.x, y: p.y });
  });
  for (const type of ["pointerdown", "pointerup"]) {
    video.addEventListener(type, (e) => {
      const p = toDesktop(e.clientX, e.clientY);
      if (p) sendInput({ t: "move", x: p.x, y: p.y });
      if (e.button >= 0 && e.button <= 4) sendInput({ t: "button", b: e.button, down: type === "pointerdown" });
      e.preventDefault();
    });
  }
  video.addEventListener("wheel", (e) => {
    e.preventDefault();
    if (e.deltaY !== 0) sendInput({ t: "wheel", dy: e.deltaY < 0 ? -1 : 1 });
  }, { passive: false });
  video.addEventListener("contextmenu", (e) => e.preventDefault());

  // ---- clipboard: text only, both ways ----
  // The VM copied: into the local clipboard (the browser allows it while the page has the focus),
  // and the page tells the host it got it (length and hash, never the text).
  let clipIncoming = "", lastClip = null;
  const PIECE = 8192;  // characters per data channel message
  function fnv1a(text) {
    let h = 0x811c9dc5;
    for (const b of new TextEncoder().encode(text)) { h ^= b; h = Math.imul(h, 0x01000193) >>> 0; }
    return h >>> 0;
  }
  function vmCopied(text) {
    lastClip = text;
    shown.clipboardLength = text.length;
    const report = (wrote) => send({ type: "clipboard", length: new TextEncoder().encode(text).length, fnv: fnv1a(text), wrote });
    if (navigator.clipboard && navigator.clipboard.writeText)
      navigator.clipboard.writeText(text).then(() => report(true), () => report(false));
    else report(false);
  }
  // The user's text to the VM, in pieces on the (ordered) data channel. A paste always sends it
  // (another viewer may have copied since, so the VM's clipboard need not be ours any more);
  // coming back to the page sends it only when it changed.
  async function sendClipboard(text, onlyIfChanged) {
    if (typeof text !== "string" || (onlyIfChanged && text === lastClip)) return;
    lastClip = text;
    let at = 0;
    do {
      let end = Math.min(text.length, at + PIECE);
      // Not between the two halves of a surrogate pair.
      const last = text.charCodeAt(end - 1);
      if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
      // The browser refuses to queue more than 16 MiB on a channel: let it drain.
      while (channel && channel.bufferedAmount > (4 << 20)) await new Promise((r) => setTimeout(r, 20));
      sendInput({ t: "clip", text: text.slice(at, end), more: end < text.length });
      at = end;
    } while (at < text.length);
  }
  // Ctrl+V (or Cmd+V, Shift+Insert) in the desktop: the browser's paste event carries the local
  // clipboard's text, which goes first; the keys follow, so the VM pastes what the user copied.
  document.addEventListener("paste", (e) => {
    if (!focused()) return;
    e.preventDefault();
    clearTimeout(heldTimer);
    sendClipboard(e.clipboardData ? e.clipboardData.getData("text/plain") : "").then(releaseHeldPaste);
  });
  let heldPaste = null, heldTimer = null;
  function isPasteKey(e) {
    return (e.code === "KeyV" && (e.ctrlKey || e.metaKey)) || (e.code === "Insert" && e.shiftKey);
  }
  function releaseHeldPaste() {
    clearTimeout(heldTimer);
    if (heldPaste) { sendInput(heldPaste); heldPaste = null; }
  }
  // When the user comes back to the page, the browser may let it read the clipboard without asking
  // (the permission was given before): the VM then has the latest copy before any key.
  window.addEventListener("focus", async () => {
    try {
      const state = (await navigator.permissions.query({ name: "clipboard-read" })).state;
      if (state === "granted") sendClipboard(await navigator.clipboard.readText(), true);
    } catch (e) {}
  });

  function runClipboardSelftest() {
    screen.focus();
    const text = (params.get("copy") || "").repeat(Number(params.get("copy_repeat") || 1));
    const data = new DataTransfer();
    data.setData("text/plain", text);
    document.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
    // copy_every=MS: the same paste again every MS ms (the local clipboard unchanged), 100 times at most.
    const every = Number(params.get("copy_every") || 0);
    if (every > 0 && ++clipboardSelftestPastes < 100) setTimeout(runClipboardSelftest, every);
  }
  let clipboardSelftestPastes = 0;

  // Test suite hook (?selftest=input): the same handlers, driven by synthetic DOM events.
  function runInputSelftest() {
    screen.focus();
    const r = video.getBoundingClientRect();
    const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
    document.dispatchEvent(new KeyboardEvent("keydown", { code: "KeyA", key: "a", bubbles: true }));
    document.dispatchEvent(new KeyboardEvent("keyup", { code: "KeyA", key: "a", bubbles: true }));
    document.dispatchEvent(new KeyboardEvent("keydown", { code: "ArrowUp", key: "ArrowUp", bubbles: true }));
    document.dispatchEvent(new KeyboardEvent("keyup", { code: "ArrowUp", key: "ArrowUp", bubbles: true }));
    video.dispatchEvent(new PointerEvent("pointermove", { clientX: cx, clientY: cy, bubbles: true }));
    video.dispatchEvent(new PointerEvent("pointerdown", { clientX: cx, clientY: cy, button: 2, bubbles: true }));
    video.dispatchEvent(new PointerEvent("pointerup", { clientX: cx, clientY: cy, button: 2, bubbles: true }));
    video.dispatchEvent(new WheelEvent("wheel", { clientX: cx, clientY: cy, deltaY: -120, bubbles: true, cancelable: true }));
    document.dispatchEvent(new KeyboardEvent("keydown", { code: "Enter", key: "Enter", bubbles: true }));
    document.dispatchEvent(new KeyboardEvent("keyup", { code: "Enter", key: "Enter", bubbles: true }));
  }

  // ---- frames: the barcode of the synthetic desktop, for the latency figure ----
  // Layout (capture/synthetic/barcode.hpp): 16-px blocks at the top left: white, black sync,
  // 24 data bits, 8 CRC-8 bits, black, white end.
  const BLOCK = 16, BLOCKS = 36;
  const probe = document.createElement("canvas");
  probe.width = BLOCKS * BLOCK; probe.height = BLOCK;
  const probeCtx = probe.getContext("2d", { willReadFrequently: true });
  function crc8(v) {
    let crc = 0;
    for (let shift = 16; shift >= 0; shift -= 8) {
      crc ^= (v >> shift) & 255;
      for (let b = 0; b < 8; ++b) crc = (crc & 0x80) ? ((crc << 1) ^ 7) & 255 : (crc << 1) & 255;
    }
    return crc;
  }
  function readBarcode() {
    const w = video.videoWidth, h = video.videoHeight;
    if (w < BLOCKS * BLOCK || h < BLOCK) return null;
    probeCtx.drawImage(video, 0, 0, BLOCKS * BLOCK, BLOCK, 0, 0, BLOCKS * BLOCK, BLOCK);
    const px = probeCtx.getImageData(0, 0, BLOCKS * BLOCK, BLOCK).data;
    const level = [];
    for (let b = 0; b < BLOCKS; ++b) {
      let sum = 0;
      for (let y = 4; y < 12; ++y)
        for (let x = b * BLOCK + 4; x < b * BLOCK + 12; ++x) {
          const i = (y * BLOCKS * BLOCK + x) * 4;
          sum += (px[i] * 77 + px[i + 1] * 150 + px[i + 2] * 29) >> 8;
        }
      level.push(sum / 64);
    }
    if (level[0] - level[1] < 32) return null;
    const t = (level[0] + level[1]) / 2, white = (b) => level[b] > t;
    if (white(34) || !white(35)) return null;
    let v = 0, c = 0;
    for (let i = 0; i < 24; ++i) v = v * 2 + (white(2 + i) ? 1 : 0);
    for (let i = 0; i < 8; ++i) c = c * 2 + (white(26 + i) ? 1 : 0);
    return c === crc8(v) ? v : null;
  }
  let pending = [], framesThisSecond = 0, lastBarcode = -1;
  function onFrame(now, meta) {
    ++framesThisSecond;
    ++shown.frames;
    // Test suite hook (?selftest=cycles): hang up after a few frames and connect again.
    if (selftest === "cycles" && ++framesThisConnection === 5) setTimeout(connect, 0);
    const code = readBarcode();
    if (code !== null && code !== lastBarcode) {
      lastBarcode = code;
      const origin = performance.timeOrigin;
      pending.push([code, origin + (meta.receiveTime || now), origin + (meta.presentationTime || now)]);
    }
    video.requestVideoFrameCallback(onFrame);
  }
  if ("requestVideoFrameCallback" in HTMLVideoElement.prototype) video.requestVideoFrameCallback(onFrame);
  setInterval(() => {
    if (pending.length) { send({ type: "frames", frames: pending.splice(0, 1000) }); }
  }, 200);

  // ---- sound ----
  // The desktop's sound plays in the <audio> element; browsers let it start only after the user
  // touched the page, so a button asks for that click when needed. An analyser reports what is
  // heard (level, strongest frequency) to the host: the overlay and the test suite read it.
  let audioCtx = null, analyser = null, onsetAnalyser = null, audioSource = null;
  function startSound(stream) {
    audio.srcObject = stream;
    tryPlay();
    try {
      if (!audioCtx) {
        audioCtx = new AudioContext();
        analyser = audioCtx.createAnalyser();
        analyser.fftSize = 8192;
        analyser.smoothingTimeConstant = 0;
        onsetAnalyser = audioCtx.createAnalyser();  // 5 ms: when a sound starts (vdistream-bench audio)
        onsetAnalyser.fftSize = 256;
      }
      if (audioSource) audioSource.disconnect();
      audioSource = audioCtx.createMediaStreamSource(stream);
      audioSource.connect(analyser);
      audioSource.connect(onsetAnalyser);
    } catch (err) { console.warn("no audio analyser:", err); }
  }
  function tryPlay() {
    const started = [audio.play()];
    if (audioCtx && audioCtx.state !== "running") started.push(audioCtx.resume());
    Promise.all(started).then(() => soundButton.className = "hidden", () => soundButton.className = "");
  }
  soundButton.addEventListener("click", (e) => { e.stopPropagation(); tryPlay(); });
  screen.addEventListener("pointerdown", () => { if (audio.srcObject && audio.paused) tryPlay(); });
  const spectrum = new Float32Array(4096), wave = new Float32Array(8192), recent = new Float32Array(256);
  // The last time the sound rose from silence (wall clock, ms): what latency is measured to.
  let loud = false, onsetMs = 0;
  setInterval(() => {
    if (!onsetAnalyser || !audio.srcObject) return;
    onsetAnalyser.getFloatTimeDomainData(recent);
    let sum = 0;
    for (const v of recent) sum += v * v;
    const rms = Math.sqrt(sum / recent.length);
    if (!loud && rms > 0.05) { loud = true; onsetMs = performance.timeOrigin + performance.now(); reportSound(); }
    else if (loud && rms < 0.01) loud = false;
  }, 5);
  setInterval(reportSound, 100);
  function reportSound() {
    if (!analyser || !audio.srcObject) return;
    analyser.getFloatTimeDomainData(wave);
    let sum = 0;
    for (const v of wave) sum += v * v;
    const level = Math.min(1, Math.sqrt(sum / wave.length));
    let peakHz = 0;
    if (level > 0.001) {
      analyser.getFloatFrequencyData(spectrum);
      let best = 1;
      for (let i = 2; i < spectrum.length - 1; i++) if (spectrum[i] > spectrum[best]) best = i;
      // Parabolic interpolation between the neighbouring bins (dB values).
      const a = spectrum[best - 1], b = spectrum[best], c = spectrum[best + 1];
      const shift = (a - 2 * b + c) !== 0 ? 0.5 * (a - c) / (a - 2 * b + c) : 0;
      peakHz = (best + shift) * audioCtx.sampleRate / analyser.fftSize;
    }
    shown.audioLevel = level;
    shown.audioPeakHz = peakHz;
    send({ type: "audio", level: level, peak_hz: peakHz, at_ms: performance.timeOrigin + performance.now(), onset_ms: onsetMs });
  }

  // ---- microphone: the user's, to the desktop's ----
  // Nothing is captured until the user presses the button (shown only when the desktop has a
  // microphone); the track goes to the host only while the desktop listens (the VM records), on
  // the audio transceiver's sender (replaceTrack: no renegotiation). Pressing again stops it.
  const mic = { available: false, wanted: false, stream: null, listening: false, sender: null, sending: false };
  function attachMicrophoneSender() {
    // The host's audio m-line may carry the page's microphone: answer it with a sender.
    mic.sender = null;
    for (const t of pc.getTransceivers()) {
      if (t.receiver.track && t.receiver.track.kind === "audio" && !mic.sender) {
        t.direction = "sendrecv";
        mic.sender = t.sender;
      }
    }
    mic.sending = false;
    updateMicrophone();
  }
  async function toggleMicrophone() {
    if (mic.wanted) {
      mic.wanted = false;
      if (mic.stream) for (const t of mic.stream.getTracks()) t.stop();
      mic.stream = null;
    } else {
      mic.wanted = true;
      updateMicrophone();
      try {
        // Browsers give the microphone only to a secure page (no navigator.mediaDevices otherwise).
        if (!navigator.mediaDevices) throw new Error("only over HTTPS or on localhost");
        const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
        if (mic.wanted) mic.stream = stream;
        else for (const t of stream.getTracks()) t.stop();  // switched off while the browser asked
      } catch (e) {
        mic.wanted = false;
        console.warn("microphone refused: " + e);
        setState("The browser gave no microphone (" + e.message + ")", false);
        setTimeout(() => { if (pc && pc.connectionState === "connected") setState("connected", true); }, 3000);
      }
    }
    updateMicrophone();
  }
  function updateMicrophone() {
    micButton.className = !mic.available ? "hidden" : mic.wanted ? "on" : "";
    micButton.setAttribute("aria-pressed", mic.wanted ? "true" : "false");
    micButton.textContent = !mic.wanted ? "Microphone off" :
        !mic.stream ? "Microphone: asking the browser…" :
        mic.listening ? "Microphone on: the desktop is listening" : "Microphone on (the desktop is not listening)";
    const track = mic.available && mic.wanted && mic.listening && mic.stream ? mic.stream.getAudioTracks()[0] || null : null;
    if (mic.sender && mic.sender.track !== track) {
      const sender = mic.sender;
      sender.replaceTrack(track).then(() => { if (sender === mic.sender) { mic.sending = track !== null; reportMicrophone(); } },
                                      (e) => console.warn("microphone: " + e));
    }
    if (!mic.sender) mic.sending = false;
    reportMicrophone();
  }
  let reportedMicrophone = "";
  function reportMicrophone() {
    const report = { type: "microphone", available: mic.available, captured: mic.stream !== null, sending: mic.sending };
    shown.microphone = report;
    const text = JSON.stringify(report);
    if (text !== reportedMicrophone && ws && ws.readyState === WebSocket.OPEN) { reportedMicrophone = text; ws.send(text); }
  }
  micButton.addEventListener("click", (e) => { e.stopPropagation(); toggleMicrophone(); });

  // ---- overlay ----
  let lastBytes = 0, lastTime = 0;
  setInterval(async () => {
    shown.fps = framesThisSecond;
    framesThisSecond = 0;
    if (pc) {
      try {
        const stats = await pc.getStats();
        stats.forEach((s) => {
          if (s.type === "inbound-rtp" && s.kind === "video") {
            if (lastTime) shown.kbps = Math.round((s.bytesReceived - lastBytes) * 8 / (s.timestamp - lastTime));
            lastBytes = s.bytesReceived; lastTime = s.timestamp;
            if ((s.framesDecoded || 0) > decodedFrames) { decodedFrames = s.framesDecoded || 0; decodedAt = performance.now(); }
          } else if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) {
            shown.rtt = s.currentRoundTripTime * 1000;
          }
        });
      } catch (e) {}
      if (pc && pc.connectionState === "connected" && performance.now() - decodedAt > STALL_MS)
        scheduleReconnect("no picture for " + STALL_MS / 1000 + " s");
    }
    overlay.textContent =
        shown.state + "  " + (desktop.w ? desktop.w + "×" + desktop.h : "") + "\n" +
        "fps " + shown.fps + "   " + (shown.kbps / 1000).toFixed(1) + " Mbit/s\n" +
        "rtt " + (shown.rtt === null ? "–" : shown.rtt.toFixed(1) + " ms") +
        "   latency " + (shown.latency === null ? "–" : shown.latency.toFixed(0) + " ms") +
        (audio.srcObject ? "\nsound " + (audio.paused ? "paused" : ((shown.audioLevel || 0) * 100).toFixed(0) + " %") : "") +
        (mic.wanted ? "\nmicrophone " + (mic.sending ? "sending" : mic.listening ? "starting" : "on, the desktop is not listening") : "") +
        (shown.clipboardLength !== undefined ? "\nclipboard " + shown.clipboardLength + " characters from the desktop" : "") +
        (shown.clipboardRefused ? "\nclipboard: " + shown.clipboardRefused : "");
    send({ type: "stats", fps: shown.fps, kbps: shown.kbps, rtt_ms: shown.rtt || 0,
           latency_ms: shown.latency === null ? -1 : shown.latency });
  }, 1000);

  if (!token && params.has("token")) setState("No token in the address", false);
  connect();
})();
