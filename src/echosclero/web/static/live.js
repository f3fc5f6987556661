/* The live procedure: ultrasound frames and the engine's findings over a WebSocket, drawn in the page.
   Newest frame only: a frame that arrives while the previous one waits to be drawn replaces it, and the
   server sends the next one only after this page acknowledges a draw. Latency is measured here: from the
   server's clock when the engine's result was ready (corrected by the clock offset measured with pings) to
   the end of drawing the frame and its overlays. */
"use strict";

(() => {
  const { api, h, num, fmtTime } = ES;
  const pid = ES.patientId;
  const canvas = document.getElementById("us"), g = canvas.getContext("2d");
  const statusEl = document.getElementById("live-status"), banner = document.getElementById("alert-banner");
  // grey level -> RGBA as one 32-bit word in the platform's byte order (little-endian: ABGR)
  const GREY = new Uint32Array(256), GREY8 = new Uint8Array(GREY.buffer);
  for (let v = 0; v < 256; v++) GREY8.set([v, v, v, 255], 4 * v);
  const KIND = { vein: "#3c8cff", artery: "#ff3c3c", unknown: "#ffdc00" };
  // latencies: ms from the frame leaving the engine to the end of its drawing; its parts per frame: slotMs
  // (waiting on the server for the socket), wireMs (sent to received by the page), pageMs (received to drawn)
  const stats = (window.esLive = { drawn: 0, received: 0, latencies: [], slotMs: [], wireMs: [], pageMs: [], drawMs: [], offsetMs: null, rttMs: null, firstMs: null, lastMs: null, dropped: 0, analysed: 0, alerts: {}, critical: 0, error: null });
  let ws = null, pending = null, pendingAt = 0, scheduled = false, image = null, image32 = null, last = null, audio = null, lastBeep = 0;
  let session = null, plan = null, rules = {}, lastInjectionAt = null;

  // --- source form ---
  const kind = document.getElementById("source-kind");
  function showSource() {
    const sim = kind.value === "sim";
    for (const el of document.querySelectorAll('[data-for="sim"]')) el.hidden = !sim;
    for (const el of document.querySelectorAll('[data-for="text"]')) el.hidden = sim;
    const t = document.getElementById("source-text");
    t.placeholder = { dicom: "/path/to/cine.dcm", igtl: "igtl://127.0.0.1:18944", video: "video:0" }[kind.value] || "";
    if (kind.value === "video" && !t.value) t.value = "video:0";
    if (kind.value === "igtl" && !t.value) t.value = "igtl://127.0.0.1:18944";
  }
  kind.addEventListener("change", showSource);
  showSource();

  function sourceSpec() {
    if (kind.value === "sim") return "sim:" + document.getElementById("source-sim").value;
    return document.getElementById("source-text").value.trim();
  }

  document.getElementById("source-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    try { audio = audio || new (window.AudioContext || window.webkitAudioContext)(); } catch { audio = null; }
    connect(sourceSpec());
  });
  document.getElementById("live-stop").addEventListener("click", () => disconnect("Stopped."));

  function disconnect(text) {
    if (ws) { try { ws.send(JSON.stringify({ type: "stop" })); } catch {} ws.close(); ws = null; }
    if (text) statusEl.textContent = text;
  }

  function connect(spec) {
    disconnect();
    if (!spec) { ES.fail(new Error("name a source: a path, igtl://HOST:PORT or video:N")); return; }
    const q = new URLSearchParams({ source: spec });
    const params = new URLSearchParams(location.search);
    for (const k of ["rate_hz", "precomputed", "loop", "seed"]) if (params.get(k)) q.set(k, params.get(k));
    const mm = document.getElementById("source-mm").value;
    if (mm && kind.value !== "sim") q.set("mm_per_px", mm);
    Object.assign(stats, { drawn: 0, received: 0, latencies: [], slotMs: [], wireMs: [], pageMs: [], drawMs: [], firstMs: null, error: null });
    ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/live?${q}`);
    ws.binaryType = "arraybuffer";
    statusEl.textContent = `Connecting to ${spec}...`;
    const sock = ws;
    // the clock offset from the quickest of the pings: five at the start, then one every 2 s (a quicker round
    // trip later, on a machine less busy, narrows it)
    ws.onopen = () => {
      for (let i = 0; i < 5; i++) setTimeout(() => ping(sock), i * 60);
      const every = setInterval(() => { if (sock.readyState === 1) ping(sock); else clearInterval(every); }, 2000);
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") return control(JSON.parse(ev.data));
      stats.received++;
      pending = ev.data; pendingAt = performance.timeOrigin + performance.now(); // newest only: a frame not drawn yet is replaced
      if (!scheduled) { scheduled = true; queueMicrotask(draw); }
    };
    ws.onclose = (ev) => { if (sock === ws) { ws = null; if (!stats.error) statusEl.textContent = `Disconnected${ev.reason ? ": " + ev.reason : ""}.`; } };
    ws.onerror = () => { if (!stats.error) statusEl.textContent = "The live connection failed."; };
  }

  function ping(sock) { if (sock.readyState === 1) sock.send(JSON.stringify({ type: "ping", t_page_ms: performance.timeOrigin + performance.now() })); }

  function control(m) {
    if (m.type === "pong") {
      const now = performance.timeOrigin + performance.now(), rtt = now - m.t_page_ms;
      if (stats.rttMs === null || rtt < stats.rttMs) { stats.rttMs = rtt; stats.offsetMs = m.t_server_ms - (m.t_page_ms + rtt / 2); }
    } else if (m.type === "error") {
      stats.error = m.message;
      statusEl.textContent = "";
      ES.say(m.message, "error");
    } else if (m.type === "end") {
      statusEl.textContent = `End of the stream: ${m.analysed} frames analysed.`;
    }
  }

  // --- drawing ---
  function draw() {
    scheduled = false;
    const buf = pending, arrived = pendingAt; pending = null;
    if (!buf) return;
    const t0 = performance.now();
    const dv = new DataView(buf), n = dv.getUint32(0, true);
    const head = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, n)));
    const px = new Uint8Array(buf, 4 + n);
    const { rows, cols, channels } = head;
    if (canvas.width !== cols || canvas.height !== rows) { canvas.width = cols; canvas.height = rows; image = null; }
    if (!image) { image = g.createImageData(cols, rows); image32 = new Uint32Array(image.data.buffer); }
    const d = image.data, npx = rows * cols;
    if (channels === 1) for (let i = 0; i < npx; i++) image32[i] = GREY[px[i]]; // one store per pixel
    else for (let i = 0, j = 0, k = 0; i < npx; i++, j += 4, k += 3) { d[j] = px[k]; d[j + 1] = px[k + 1]; d[j + 2] = px[k + 2]; d[j + 3] = 255; }
    g.putImageData(image, 0, 0);
    overlay(head);
    const done = performance.timeOrigin + performance.now();
    if (ws && ws.readyState === 1) ws.send('{"type":"ack"}');
    last = head;
    stats.drawn++; stats.drawMs.push(performance.now() - t0);
    stats.firstMs = stats.firstMs ?? done; stats.lastMs = done;
    if (stats.offsetMs !== null) {
      stats.latencies.push(done - (head.t_ready_ms - stats.offsetMs));
      stats.slotMs.push(head.t_sent_ms - head.t_ready_ms); stats.wireMs.push(arrived - (head.t_sent_ms - stats.offsetMs)); stats.pageMs.push(done - arrived);
    }
    stats.dropped = head.dropped; stats.analysed = head.analysed; stats.index = head.index;
    alerts(head.result.alerts);
    facts(head.result); // the findings of the frame on screen
    if (stats.drawn % 10 === 0) status(head);
  }

  function overlay(head) {
    const r = head.result, sx = 1 / head.mm_per_px_x, sz = 1 / head.mm_per_px_z;
    const P = (p) => [p[0] * sx, p[1] * sz];
    const foam = new Map(r.foam.map((f) => [f.vessel_id, f]));
    g.lineJoin = "round"; g.font = "12px sans-serif";
    for (const v of r.vessels) {
      const col = KIND[v.kind] || KIND.unknown;
      if (v.contour_mm && v.contour_mm.length >= 3) {
        g.beginPath();
        v.contour_mm.forEach((p, i) => { const [x, y] = P(p); if (i) g.lineTo(x, y); else g.moveTo(x, y); });
        g.closePath();
        const f = foam.get(v.id);
        if (f && f.fill_fraction > 0) { g.fillStyle = `rgba(255,255,255,${0.15 + 0.45 * f.fill_fraction})`; g.fill(); }
        g.setLineDash(v.coasting ? [4, 4] : []); g.lineWidth = 2; g.strokeStyle = col; g.stroke(); g.setLineDash([]);
      }
      const [cx, cy] = P(v.center_mm);
      const f = foam.get(v.id);
      g.fillStyle = col;
      g.fillText(`${v.id} ${v.kind} ${v.diameter_mm.toFixed(1)} mm${f ? ` foam ${Math.round(100 * f.fill_fraction)}%` : ""}`, cx + 6, Math.max(12, cy - 6));
    }
    for (const f of r.foam) if (f.front_mm) { const [x, y] = P(f.front_mm); g.strokeStyle = "#fff"; g.lineWidth = 1.5; g.beginPath(); g.moveTo(x, y - 6); g.lineTo(x + 6, y); g.lineTo(x, y + 6); g.lineTo(x - 6, y); g.closePath(); g.stroke(); }
    const nd = r.needle;
    if (nd) {
      const [ex, ey] = P(nd.entry_mm), [tx, ty] = P(nd.tip_mm);
      g.strokeStyle = "#00ff66"; g.lineWidth = 1.5; g.setLineDash(nd.held ? [5, 4] : []);
      g.beginPath(); g.moveTo(ex, ey); g.lineTo(tx, ty); g.stroke(); g.setLineDash([]);
      g.lineWidth = 2.5; g.beginPath(); g.moveTo(tx - 8, ty); g.lineTo(tx + 8, ty); g.moveTo(tx, ty - 8); g.lineTo(tx, ty + 8); g.stroke();
    }
    // millimetre scale: 10 mm bar with 1 mm ticks, bottom left
    const bar = 10 * sx, x0 = 12, y0 = canvas.height - 14;
    g.strokeStyle = "#fff"; g.fillStyle = "#fff"; g.lineWidth = 2;
    g.beginPath(); g.moveTo(x0, y0); g.lineTo(x0 + bar, y0); g.stroke();
    g.lineWidth = 1; for (let i = 0; i <= 10; i++) { const x = x0 + i * sx; g.beginPath(); g.moveTo(x, y0); g.lineTo(x, y0 - (i % 5 ? 3 : 7)); g.stroke(); }
    g.fillText("10 mm", x0 + bar + 6, y0 + 4);
    g.fillText(`t=${head.t_s.toFixed(2)} s  #${head.index}`, canvas.width - 120, canvas.height - 10);
  }

  const SEV = { critical: 2, warning: 1, info: 0 };
  function alerts(list) {
    for (const a of list) stats.alerts[a.code] = (stats.alerts[a.code] || 0) + 1;
    if (!list.length) { if (!banner.hidden) { banner.hidden = true; banner.className = "alert-banner"; } return; }
    const worst = list.reduce((a, b) => (SEV[b.severity] > SEV[a.severity] ? b : a));
    const cls = `alert-banner ${worst.severity}`; // the page's style is touched only when the banner changes
    if (banner.hidden) banner.hidden = false;
    if (banner.className !== cls) banner.className = cls;
    if (banner.dataset.code !== worst.code) banner.dataset.code = worst.code;
    const text = list.map((a) => `${a.severity === "critical" ? "STOP: " : ""}${a.message}`).join("  |  ");
    if (banner.textContent !== text) banner.textContent = text;
    if (worst.severity === "critical") { stats.critical++; beep(); }
  }
  function beep() {
    const now = performance.now();
    if (!audio || now - lastBeep < 1200) return;
    lastBeep = now;
    try {
      const o = audio.createOscillator(), gain = audio.createGain();
      o.type = "square"; o.frequency.value = 880; gain.gain.value = 0.15;
      o.connect(gain); gain.connect(audio.destination); o.start(); o.stop(audio.currentTime + 0.25);
      stats.beeps = (stats.beeps || 0) + 1;
    } catch {}
  }

  function median(a) { if (!a.length) return null; const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; }
  function status(head) {
    const span = (stats.lastMs - stats.firstMs) / 1000, fps = span > 0 ? (stats.drawn - 1) / span : 0;
    const lat = median(stats.latencies.slice(-60));
    statusEl.textContent = `${head.source}: ${fps.toFixed(1)} frames/s drawn, latency ${lat === null ? "-" : lat.toFixed(0)} ms, ${head.dropped} dropped of ${head.analysed} analysed`;
  }
  let factsShown = "";
  function facts(r) {
    const tipIn = r.needle ? r.vessels.find((v) => v.contains_needle_tip) : null;
    const rows = [["Vessels", r.vessels.map((v) => `${v.id} ${v.kind}`).join(", ") || "none"],
      ["Needle tip", r.needle ? `${num(r.needle.tip_mm[0])}, ${num(r.needle.tip_mm[1])} mm${tipIn ? " in " + tipIn.id + " (" + tipIn.kind + ")" : ""}` : "not seen"],
      ["Foam", r.foam.map((x) => `${x.vessel_id} ${Math.round(100 * x.fill_fraction)}%`).join(", ") || "none"]];
    const text = rows.flat().join("\n");
    if (text === factsShown) return; // the page's layout is redone only when the findings read differently
    factsShown = text;
    document.getElementById("engine-facts").replaceChildren(...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  }

  // --- session, dose counter, injection, snapshot, observation ---
  const LIMITS = { foam_ml_session: "Foam this session (mL)", polidocanol_mg_today: "Polidocanol today (mg)", polidocanol_foam_ml_today: "Polidocanol foam today (mL)", sts_ml_session: "STS this session (mL)" };
  function counter(totals, remaining) {
    const used = { foam_ml_session: totals.foam_ml, polidocanol_mg_today: null, polidocanol_foam_ml_today: null, sts_ml_session: totals.sts_volume_ml };
    document.getElementById("dose-counter").replaceChildren(
      h("div", { class: "dose-line" }, h("span", {}, "Given this session"), h("strong", { id: "dose-total" }, `${num(totals.volume_ml)} mL in ${totals.count} injection(s)`)),
      ...Object.entries(LIMITS).map(([k, label]) => h("div", { class: "dose-line" }, h("span", {}, label),
        h("span", {}, used[k] !== null && used[k] !== undefined ? `${num(used[k])} used, ${num(remaining[k])} left` : `${num(remaining[k])} left`))));
  }

  async function loadSession() {
    const box = document.getElementById("session-box");
    try {
      const [ss, plans, rl] = await Promise.all([api("GET", `/api/patients/${pid}/sessions`), api("GET", `/api/patients/${pid}/plans`), api("GET", "/api/rules")]);
      for (const r of rl) rules[r.code] = r;
      const today = ES.today();
      session = ss.filter((s) => s.status === "open" && s.date === today).pop() || null;
      if (session) {
        plan = plans.find((p) => p.id === session.plan_id) || null;
        box.replaceChildren(h("p", {}, `Session ${session.id}, ${session.limb} leg` + (plan ? `, plan ${plan.id}: ${plan.items.map((i) => i.segment).join(", ")}` : ", no plan")),
          h("div", { class: "row" }, h("button", { type: "button", id: "observe-btn", onclick: recordObservation }, "Record observation"),
            h("button", { type: "button", id: "close-btn", onclick: closeSession }, "Close the session")));
        counter(session.totals, session.remaining);
        const inj = session.injections;
        if (inj.length) { lastInjectionAt = new Date(inj[inj.length - 1].injected_at); }
        loadKeyframes();
      } else {
        const sel = h("select", { id: "session-plan", "aria-label": "plan for the session" }, h("option", { value: "" }, "no plan"),
          ...plans.filter((p) => p.status !== "done").map((p) => h("option", { value: p.id }, `plan ${p.id} (${p.limb}): ${p.items.map((i) => i.segment).join(", ")}`)));
        if (plans.length) sel.value = plans[plans.length - 1].id;
        const limb = h("select", { id: "session-limb", "aria-label": "leg" }, h("option", { value: "left" }, "left"), h("option", { value: "right" }, "right"));
        box.replaceChildren(h("div", { class: "row" }, h("label", { for: "session-plan" }, "Plan"), sel, h("label", { for: "session-limb" }, "Leg"), limb),
          h("button", { type: "button", class: "primary", id: "session-start", onclick: async () => {
            const p = plans.find((x) => String(x.id) === sel.value);
            try {
              await api("POST", `/api/patients/${pid}/sessions`, { date: today, limb: p ? p.limb : limb.value, plan_id: p ? p.id : null });
              ES.say("session started"); loadSession();
            } catch (e) { ES.fail(e); }
          } }, "Start a session"));
        document.getElementById("dose-counter").replaceChildren(h("p", { class: "muted" }, "Start a session to log injections."));
      }
    } catch (e) { if (e.status === 403) box.replaceChildren(h("p", { class: "muted" }, e.message)); else ES.fail(e); }
  }

  const dlg = document.getElementById("inject-dialog"), inf = document.getElementById("inject-form");
  ES.segmentOptions(document.getElementById("in-segment"), (s) => s.system !== "deep");
  function openInjection() {
    if (!session) { ES.fail(new Error("start a session before logging an injection")); return; }
    const r = last ? last.result : null, item = plan ? plan.items[0] : null;
    const tipIn = r && r.needle ? r.vessels.find((v) => v.contains_needle_tip) : null;
    if (item) {
      inf.segment.value = item.segment; inf.agent.value = item.agent; inf.form.value = item.form;
      inf.concentration_pct.value = item.concentration_pct; inf.liquid_gas_ratio.value = item.liquid_gas_ratio || "";
    }
    inf.tip.value = r && r.needle ? `${num(r.needle.tip_mm[0])}, ${num(r.needle.tip_mm[1])} mm` + (tipIn ? ` in ${tipIn.id} (${tipIn.kind})` : " (in no vessel)") : "no needle seen";
    inf.frame_ref.value = last ? `${last.source}#frame=${last.index};t=${last.t_s}s` : "";
    inf.ultrasound_confirmed.checked = !!(tipIn && tipIn.kind === "vein");
    inf.volume_ml.value = "";
    document.getElementById("inject-error").hidden = true;
    dlg.showModal();
    inf.volume_ml.focus();
  }
  document.getElementById("inject-btn").addEventListener("click", openInjection);
  document.getElementById("inject-cancel").addEventListener("click", () => dlg.close());
  inf.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const d = ES.formData(inf);
    const body = { segment: d.segment, agent: d.agent, form: d.form, concentration_pct: d.concentration_pct, volume_ml: d.volume_ml,
      ultrasound_confirmed: d.ultrasound_confirmed, frame_ref: d.frame_ref || null, notes: `needle tip ${d.tip || "not recorded"}` };
    if (d.form === "foam") body.liquid_gas_ratio = d.liquid_gas_ratio || "1:4";
    const err = document.getElementById("inject-error");
    try {
      const r = await api("POST", `/api/sessions/${session.id}/injections`, body);
      dlg.close();
      lastInjectionAt = new Date(r.injected_at);
      counter(r.session_totals, r.remaining);
      ES.say(`injection recorded: ${r.segment} ${r.volume_ml} mL` + (r.warnings.length ? `; ${r.warnings.map((w) => w.message).join("; ")}` : ""), r.warnings.length ? "warn" : "ok");
    } catch (e) {
      err.textContent = `Refused: ${e.message}`; err.hidden = false;
    }
  });

  async function snapshot() {
    if (!session) { ES.fail(new Error("start a session to keep key frames with it")); return; }
    if (!last) { ES.fail(new Error("no frame yet: start the live view")); return; }
    try {
      const k = await api("POST", `/api/web/sessions/${session.id}/keyframes`, { png_base64: canvas.toDataURL("image/png"), frame_ref: `${last.source}#frame=${last.index};t=${last.t_s}s` });
      ES.say(`key frame kept (${k.frame_ref})`); loadKeyframes();
    } catch (e) { ES.fail(e); }
  }
  document.getElementById("snapshot-btn").addEventListener("click", snapshot);
  async function loadKeyframes() {
    try {
      const ks = await api("GET", `/api/web/sessions/${session.id}/keyframes`);
      document.getElementById("keyframes").replaceChildren(...ks.map((k) => h("li", {}, h("a", { href: k.url, target: "_blank", rel: "noopener" }, h("img", { src: k.url, alt: `key frame ${k.frame_ref}` })))));
    } catch (e) { ES.fail(e); }
  }

  async function recordObservation() {
    if (!lastInjectionAt) { ES.fail(new Error("no injection yet")); return; }
    const minutes = Math.floor((Date.now() - lastInjectionAt) / 60000);
    try { await api("PATCH", `/api/sessions/${session.id}`, { observation_minutes: minutes, observation_outcome: "uneventful" }); ES.say(`observation of ${minutes} min recorded`); }
    catch (e) { ES.fail(e); }
  }
  async function closeSession() {
    try { await api("PATCH", `/api/sessions/${session.id}`, { status: "closed" }); ES.say("session closed; follow-ups scheduled"); session = null; loadSession(); }
    catch (e) { ES.fail(e); }
  }

  setInterval(() => {
    const el = document.getElementById("observation");
    if (!lastInjectionAt) { el.textContent = ""; return; }
    const need = Number(rules.OBSERVATION_MIN_MINUTES?.value ?? 10) * 60, gone = (Date.now() - lastInjectionAt) / 1000, left = Math.max(0, need - gone);
    el.classList.toggle("done", left === 0);
    el.textContent = left > 0 ? `Observation: ${Math.floor(left / 60)}:${String(Math.floor(left % 60)).padStart(2, "0")} left (last injection ${fmtTime(lastInjectionAt.toISOString())})`
      : `Observation complete: ${Math.floor(gone / 60)} min since the last injection`;
  }, 500);

  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || dlg.open) return;
    if (ev.target.closest("input, select, textarea")) return;
    if (ev.key === "i" || ev.key === "I") { ev.preventDefault(); openInjection(); }
    else if (ev.key === "s" || ev.key === "S") { ev.preventDefault(); snapshot(); }
  });

  ES.patientHeader();
  loadSession();
})();
