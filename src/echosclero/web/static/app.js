/* EchoSclero workstation: the script layer. Every read and write goes through the API (/api/...), signed in
   by the HttpOnly session cookie; state-changing calls carry the page's CSRF token. API errors are shown as
   their message, never as a blank page. No build step, no framework. */
"use strict";

const ES = (() => {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
  const body = document.body;
  const ref = JSON.parse(document.getElementById("reference-data")?.textContent || "{}");

  class ApiError extends Error {
    constructor(status, message, data) { super(message); this.status = status; this.data = data; }
  }

  async function api(method, path, data, opts = {}) {
    const headers = { Accept: "application/json" };
    let payload;
    if (data instanceof FormData) payload = data;
    else if (data !== undefined) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(data); }
    if (method !== "GET") headers["X-CSRF-Token"] = csrf;
    let r;
    try {
      r = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
    } catch (e) {
      throw new ApiError(0, "the workstation server cannot be reached; check that `echosclero serve` is running");
    }
    if (r.status === 401 && !opts.noRedirect) {
      location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
      throw new ApiError(401, "the session has expired; sign in again");
    }
    const type = r.headers.get("content-type") || "";
    const out = type.includes("json") ? await r.json().catch(() => null) : await r.text();
    if (!r.ok) {
      let msg = out && typeof out === "object" ? (out.message || (typeof out.detail === "string" ? out.detail : "")) : "";
      if (!msg) msg = `the server answered ${r.status} ${r.statusText}`;
      throw new ApiError(r.status, msg, out);
    }
    return out;
  }

  function h(tag, attrs = {}, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
    return el;
  }

  const box = () => document.getElementById("messages");
  function say(text, kind = "ok", where) {
    const el = h("p", { class: `msg ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
    const target = where || box();
    if (!where) target.replaceChildren();
    target.append(el);
    if (kind !== "error" && !where) setTimeout(() => el.remove(), 8000);
    return el;
  }
  const fail = (e, where) => say(e instanceof ApiError || e instanceof Error ? e.message : String(e), "error", where);

  function formData(form) {
    const out = {};
    for (const el of form.elements) {
      if (!el.name || el.disabled) continue;
      if (el.type === "checkbox") out[el.name] = el.checked;
      else if (el.type === "number") { if (el.value !== "") out[el.name] = Number(el.value); }
      else if (el.type === "file") continue;
      else if (el.value !== "") out[el.name] = el.value;
    }
    return out;
  }

  function onSubmit(form, fn) {
    if (!form) return;
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const btn = form.querySelector('[type="submit"]');
      if (btn) btn.disabled = true;
      try { await fn(formData(form), form); } catch (e) { fail(e); } finally { if (btn) btn.disabled = false; }
    });
  }

  const today = () => new Date().toISOString().slice(0, 10);
  const fmtDate = (s) => (s ? new Date(s.length <= 10 ? s + "T00:00:00" : s).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" }) : "");
  const fmtTime = (s) => (s ? new Date(s).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "");
  const num = (x, d = 1) => (x === null || x === undefined ? "-" : Number(x).toFixed(d));
  const patientId = Number(body.dataset.patient) || null;
  const role = body.dataset.role;

  async function patientHeader() {
    if (!patientId || !document.getElementById("patient-name")) return null;
    try {
      const p = await api("GET", `/api/patients/${patientId}`);
      document.getElementById("patient-name").textContent = `${p.family_name}, ${p.given_name}`;
      const bits = [`born ${fmtDate(p.birth_date)}`, p.sex];
      if (p.weight_kg !== null) bits.push(`${p.weight_kg} kg`);
      document.getElementById("patient-summary").textContent = bits.join(" · ");
      return p;
    } catch (e) { fail(e); return null; }
  }

  function setDefaults() {
    for (const el of document.querySelectorAll('input[type="date"]')) if (!el.value) el.value = today();
  }

  function segmentOptions(select, filter = () => true) {
    select.replaceChildren(...(ref.segments || []).filter(filter).map((s) => h("option", { value: s.code }, `${s.code} - ${s.name}`)));
  }

  /* a small SVG line plot: series [{name, points: [[x, y]...], colour}] */
  function linePlot(el, series, { xLabel = "", yLabel = "", yMin, yMax, xMin, xMax, marks = [] } = {}) {
    const W = 640, H = 300, L = 56, R = 16, T = 16, B = 44;
    const xs = series.flatMap((s) => s.points.map((p) => p[0])), ys = series.flatMap((s) => s.points.map((p) => p[1]));
    const x0 = xMin ?? Math.min(...xs, 0), x1 = xMax ?? Math.max(...xs, 1);
    const y0 = yMin ?? Math.min(...ys, 0), y1 = yMax ?? Math.max(...ys, 1);
    const sx = (x) => L + ((x - x0) / (x1 - x0 || 1)) * (W - L - R), sy = (y) => H - B - ((y - y0) / (y1 - y0 || 1)) * (H - T - B);
    const ns = "http://www.w3.org/2000/svg", svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`); svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", `${yLabel} against ${xLabel}`);
    const add = (tag, a, text) => { const e = document.createElementNS(ns, tag); for (const k in a) e.setAttribute(k, a[k]); if (text !== undefined) e.textContent = text; svg.append(e); return e; };
    add("rect", { x: 0, y: 0, width: W, height: H, fill: "#fff" });
    for (let i = 0; i <= 4; i++) {
      const y = y0 + ((y1 - y0) * i) / 4, x = x0 + ((x1 - x0) * i) / 4;
      add("line", { x1: L, x2: W - R, y1: sy(y), y2: sy(y), stroke: "#e3e8ea" });
      add("text", { x: L - 6, y: sy(y) + 4, "font-size": 11, "text-anchor": "end", fill: "#333" }, y.toFixed(Math.abs(y1 - y0) < 5 ? 2 : 0));
      add("text", { x: sx(x), y: H - B + 16, "font-size": 11, "text-anchor": "middle", fill: "#333" }, x.toFixed(Math.abs(x1 - x0) < 5 ? 1 : 0));
    }
    if (y0 < 0 && y1 > 0) add("line", { x1: L, x2: W - R, y1: sy(0), y2: sy(0), stroke: "#777" });
    for (const m of marks) {
      add("rect", { x: sx(m.from), y: T, width: Math.max(1, sx(m.to) - sx(m.from)), height: H - T - B, fill: m.colour, opacity: 0.18 });
      add("text", { x: sx(m.from) + 3, y: T + 12, "font-size": 11, fill: "#333" }, m.label);
    }
    series.forEach((s, i) => {
      add("polyline", { points: s.points.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" "), fill: "none", stroke: s.colour, "stroke-width": 2 });
      if (s.dots) for (const p of s.points) add("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 3.5, fill: s.colour });
      add("text", { x: L + 8 + i * 150, y: T + 2 + (marks.length ? 28 : 12), "font-size": 12, fill: s.colour }, s.name);
    });
    add("text", { x: (L + W - R) / 2, y: H - 6, "font-size": 12, "text-anchor": "middle", fill: "#333" }, xLabel);
    add("text", { x: 14, y: (T + H - B) / 2, "font-size": 12, "text-anchor": "middle", fill: "#333", transform: `rotate(-90 14 ${(T + H - B) / 2})` }, yLabel);
    el.replaceChildren(svg);
  }

  function barPlot(el, bars, { yLabel = "" } = {}) {
    const W = 640, H = 280, L = 56, B = 70, T = 16, bw = Math.min(60, (W - L - 10) / Math.max(1, bars.length) - 10);
    const ymax = Math.max(1, ...bars.map((b) => b.value));
    const ns = "http://www.w3.org/2000/svg", svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`); svg.setAttribute("role", "img"); svg.setAttribute("aria-label", yLabel);
    const add = (tag, a, text) => { const e = document.createElementNS(ns, tag); for (const k in a) e.setAttribute(k, a[k]); if (text !== undefined) e.textContent = text; svg.append(e); return e; };
    add("rect", { x: 0, y: 0, width: W, height: H, fill: "#fff" });
    bars.forEach((b, i) => {
      const x = L + 10 + i * (bw + 10), hgt = ((H - T - B) * b.value) / ymax;
      add("rect", { x, y: H - B - hgt, width: bw, height: hgt, fill: b.colour || "#0b5f73" });
      add("text", { x: x + bw / 2, y: H - B - hgt - 4, "font-size": 11, "text-anchor": "middle" }, b.value.toFixed(1));
      add("text", { x: x + bw / 2, y: H - B + 14, "font-size": 10, "text-anchor": "end", transform: `rotate(-35 ${x + bw / 2} ${H - B + 14})` }, b.label);
    });
    add("text", { x: 14, y: (H - B) / 2, "font-size": 12, "text-anchor": "middle", transform: `rotate(-90 14 ${(H - B) / 2})` }, yLabel);
    el.replaceChildren(svg);
  }

  return { api, h, say, fail, formData, onSubmit, today, fmtDate, fmtTime, num, patientId, role, ref, patientHeader,
           setDefaults, segmentOptions, linePlot, barPlot, ApiError };
})();

const pages = {};

pages.request = () => {
  ES.onSubmit(document.getElementById("request-form"), async (d, form) => {
    const r = await ES.api("POST", "/api/public/appointment-requests", d);
    form.reset();
    ES.say(r.message, "ok", document.getElementById("request-result"));
  });
};

pages.patients = () => {
  const { api, h, fmtDate } = ES;
  const tbody = document.querySelector("#patient-table tbody");
  async function load(q) {
    try {
      const rows = await api("GET", "/api/patients?limit=200" + (q ? "&q=" + encodeURIComponent(q) : ""));
      tbody.replaceChildren(...rows.map((p) => h("tr", {},
        h("td", {}, h("a", { href: `/patients/${p.id}` }, `${p.family_name}, ${p.given_name}`)),
        h("td", {}, fmtDate(p.birth_date)), h("td", {}, p.sex), h("td", {}, [p.phone, p.email].filter(Boolean).join(" · ")))));
      document.getElementById("patient-empty").hidden = rows.length > 0;
    } catch (e) { ES.fail(e); }
  }
  ES.onSubmit(document.getElementById("search-form"), (d) => load(d.q || ""));
  ES.onSubmit(document.getElementById("new-patient"), async (d) => {
    const p = await api("POST", "/api/patients", d);
    location.href = `/patients/${p.id}`;
  });
  load("");
};

pages.chart = async () => {
  const { api, h, fmtDate, fmtTime, num } = ES;
  const p = await ES.patientHeader();
  if (p) {
    const facts = document.getElementById("patient-facts");
    const rows = [["Born", fmtDate(p.birth_date)], ["Sex", p.sex], ["Weight", p.weight_kg === null ? null : `${p.weight_kg} kg`],
      ["Telephone", p.phone], ["E-mail", p.email], ["Notes", p.notes]];
    facts.replaceChildren(...rows.filter((r) => r[1]).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  }
  const pid = ES.patientId, events = [];
  const sources = [];
  const clinical = ["physician", "sonographer", "nurse"].includes(ES.role);
  if (clinical) sources.push(
    [`/api/patients/${pid}/exams`, (x) => ({ on: x.exam_date, kind: "duplex exam", text: `${x.limb} leg(s): ${x.vein_map.findings.length} segment finding(s)${x.findings ? "; " + x.findings : ""}`, href: `/patients/${pid}/mapping` })],
    [`/api/patients/${pid}/assessments`, (x) => ({ on: x.assessed_on, kind: "assessment", text: [x.ceap && `CEAP ${x.ceap}`, x.vcss !== null && `VCSS ${x.vcss}`, ...x.symptoms].filter(Boolean).join("; ") + ` (${x.limb})` })],
    [`/api/patients/${pid}/candidacy`, (x) => ({ on: x.assessed_on, kind: "candidacy", text: x.absolute.length ? `absolute: ${x.absolute.map((c) => c.text).join(", ")}${x.override_reason ? " (overridden)" : ""}` : x.relative.length ? `relative: ${x.relative.map((c) => c.text).join(", ")}` : "no contraindication", href: `/patients/${pid}/candidacy` })],
    [`/api/patients/${pid}/test-injections`, (x) => ({ on: x.given_on, kind: "test injection", text: `${x.agent} ${x.concentration_pct}% ${x.volume_ml} mL; ${x.reaction ? "REACTION" : "no reaction"}` })],
    [`/api/patients/${pid}/plans`, (x) => ({ on: x.created_at, kind: "plan", text: `${x.limb} leg: ` + x.items.map((i) => `${i.segment} ${i.agent} ${i.form} ${i.concentration_pct}% ${i.planned_volume_ml} mL`).join("; "), href: `/patients/${pid}/plan` })],
    [`/api/patients/${pid}/sessions`, (x) => ({ on: x.date, kind: "session", text: `${x.limb} leg, ${x.status}: ${x.injections.length} injection(s), ${num(x.totals.volume_ml)} mL${x.compression ? "; compression " + x.compression : ""}`, href: `/patients/${pid}/live` })],
    [`/api/patients/${pid}/followups`, (x) => ({ on: x.due_on, kind: "follow-up", text: `${x.kind.replace("_", " ")} (${x.status})${x.purpose ? ": " + x.purpose : ""}${x.outcomes.length ? "; " + x.outcomes.map((o) => `${o.segment} ${o.outcome}`).join(", ") : ""}`, href: `/patients/${pid}/aftercare` })],
    [`/api/patients/${pid}/complications`, (x) => ({ on: x.onset_on, kind: "complication", text: `${x.type.replaceAll("_", " ")} (${x.severity})${x.resolved_on ? ", resolved " + fmtDate(x.resolved_on) : ""}` })],
    [`/api/patients/${pid}/treatments`, (x) => ({ on: x.treated_on || "", kind: "prior treatment", text: `${x.limb} ${x.segment}: ${x.kind}` })],
  );
  if (["physician", "nurse", "front_desk", "sonographer"].includes(ES.role)) sources.push(
    [`/api/appointments?patient_id=${pid}&days=366&include_past_days=366`, (x) => ({ on: x.start, kind: "appointment", text: `${x.kind.replace("_", " ")} at ${fmtTime(x.start)} (${x.status})`, href: "/calendar" })]);
  const results = await Promise.allSettled(sources.map(([url]) => api("GET", url)));
  results.forEach((r, i) => {
    if (r.status === "fulfilled") for (const x of r.value) events.push(sources[i][1](x));
    else if (r.reason.status !== 403) ES.fail(r.reason);
  });
  events.sort((a, b) => String(b.on).localeCompare(String(a.on)));
  document.getElementById("timeline").replaceChildren(...events.map((e) => h("li", {},
    h("span", { class: "when" }, e.on ? fmtDate(String(e.on).slice(0, 10)) : "undated"), h("span", { class: "kind" }, e.kind),
    e.href ? h("a", { href: e.href }, e.text) : e.text)));
  document.getElementById("timeline-empty").hidden = events.length > 0;
};

pages.mapping = async () => {
  const { api, h, fmtDate, num } = ES;
  ES.patientHeader(); ES.setDefaults();
  const pid = ES.patientId;
  let findings = [];
  let chosen = null; // {segment, leg}
  let lastReflux = null;
  const form = document.getElementById("segment-form");
  const sel = document.getElementById("sg-segment");
  ES.segmentOptions(sel);

  async function draw() {
    try {
      const svg = await api("POST", "/api/web/diagram", { schema: "echosclero.veinmap/1", findings });
      const d = document.getElementById("diagram");
      d.innerHTML = svg.replace(/^<\?xml[^>]*>/, "");
      for (const g of d.querySelectorAll(".seg")) {
        if (chosen && g.dataset.segment === chosen.segment && g.dataset.leg === chosen.leg) g.classList.add("chosen");
        g.addEventListener("click", () => choose(g.dataset.segment, g.dataset.leg));
        g.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); choose(g.dataset.segment, g.dataset.leg); } });
      }
      return true;
    } catch (e) { ES.fail(e); return false; }
  }
  function choose(segment, leg) {
    chosen = { segment, leg };
    const f = findings.find((x) => x.segment === segment && x.leg === leg) || {};
    form.hidden = false;
    document.getElementById("segment-hint").textContent = `${leg} ${segment}: ${(ES.ref.segments.find((s) => s.code === segment) || {}).name || ""}`;
    sel.value = segment; form.leg.value = leg;
    form.diameter_mm.value = f.diameter_mm ?? ""; form.reflux_ms.value = f.reflux_ms ?? "";
    form.competent.value = f.competent === true ? "true" : f.competent === false ? "false" : "";
    form.occluded.checked = !!f.occluded; form.thrombosed.checked = !!f.thrombosed; form.previously_treated.checked = !!f.previously_treated;
    form.label.value = f.label || "";
    for (const g of document.querySelectorAll("#diagram .seg")) g.classList.toggle("chosen", g.dataset.segment === segment && g.dataset.leg === leg);
    form.diameter_mm.focus();
  }
  ES.onSubmit(form, async (d) => {
    const f = { segment: d.segment, leg: d.leg, diameter_mm: d.diameter_mm ?? null, reflux_ms: d.reflux_ms ?? null,
      competent: d.competent === "true" ? true : d.competent === "false" ? false : null,
      occluded: d.occluded, thrombosed: d.thrombosed, previously_treated: d.previously_treated, label: d.label || "" };
    const before = findings;
    findings = findings.filter((x) => !(x.segment === f.segment && x.leg === f.leg && (x.label || "") === f.label)).concat([f]);
    chosen = { segment: f.segment, leg: f.leg };
    if (!(await draw())) { findings = before; await draw(); } else ES.say(`${f.leg} ${f.segment} set (not saved until you save the exam)`);
  });
  document.getElementById("sg-remove").addEventListener("click", async () => {
    if (!chosen) return;
    findings = findings.filter((x) => !(x.segment === chosen.segment && x.leg === chosen.leg));
    await draw();
  });
  ES.onSubmit(document.getElementById("exam-form"), async (d) => {
    const exam = await api("POST", `/api/patients/${pid}/exams`, { exam_date: d.exam_date, limb: d.limb, findings: d.findings || "",
      vein_map: { schema: "echosclero.veinmap/1", findings } });
    ES.say(`exam ${exam.id} saved with ${exam.vein_map.findings.length} finding(s)`);
    loadExams();
  });
  const rf = document.getElementById("reflux-form");
  if (rf) rf.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const fd = new FormData();
    const file = document.getElementById("rf-file").files[0];
    if (!file) { ES.fail(new Error("choose a spectral Doppler DICOM file first")); return; }
    fd.append("file", file);
    if (chosen) fd.append("segment", chosen.segment);
    if (form.diameter_mm.value) fd.append("diameter_mm", form.diameter_mm.value);
    fd.append("reflux_above", document.getElementById("rf-above").checked ? "true" : "false");
    const btn = rf.querySelector("button"); btn.disabled = true;
    try {
      const r = await api("POST", "/api/web/reflux", fd);
      lastReflux = r;
      const marks = [];
      if (r.augmentation_start_s !== null) marks.push({ from: r.augmentation_start_s, to: r.augmentation_end_s, colour: "#1f77b4", label: "augmentation" });
      if (r.reflux_start_s !== null) marks.push({ from: r.reflux_start_s, to: r.reflux_end_s, colour: "#d62728", label: `reflux ${Math.round(r.reflux_ms)} ms` });
      ES.linePlot(document.getElementById("reflux-plot"), [
        { name: "max velocity", colour: "#0b5f73", points: r.trace },
        { name: "mean velocity", colour: "#999", points: r.mean_trace }], { xLabel: "time (s)", yLabel: "velocity (cm/s), antegrade +", marks });
      const c = r.classification;
      document.getElementById("reflux-caption").textContent = `Reflux ${Math.round(r.reflux_ms)} ms; peak reflux ${num(r.peak_reflux_velocity_cm_s)} cm/s` +
        (c ? `; ${c.segment}: ${c.verdict} (${c.rule})` : "; choose a segment for a verdict") + (r.warnings.length ? `. Note: ${r.warnings.join("; ")}` : "");
      document.getElementById("reflux-result").hidden = false;
    } catch (e) { ES.fail(e); } finally { btn.disabled = false; }
  });
  const use = document.getElementById("reflux-use");
  if (use) use.addEventListener("click", () => {
    if (!lastReflux) return;
    if (!chosen) { ES.fail(new Error("choose the segment on the diagram first")); return; }
    form.reflux_ms.value = Math.round(lastReflux.reflux_ms);
    form.requestSubmit();
  });
  async function loadExams() {
    try {
      const exams = await api("GET", `/api/patients/${pid}/exams`);
      document.getElementById("exam-list").replaceChildren(...exams.reverse().map((x) => h("li", {},
        `${fmtDate(x.exam_date)} (${x.limb}): ${x.vein_map.findings.length} finding(s) `,
        h("a", { href: `/api/exams/${x.id}/diagram?format=svg`, target: "_blank", rel: "noopener" }, "diagram"), " ",
        h("button", { type: "button", onclick: () => { findings = x.vein_map.findings.map(({ incompetent, status, ...f }) => f); draw(); } }, "Load into the editor"))));
    } catch (e) { ES.fail(e); }
  }
  // VCSS items
  const items = document.getElementById("vcss-items");
  if (items) {
    for (const it of ES.ref.vcss_items) {
      const id = `vcss-${it}`;
      items.append(h("label", { for: id }, it.replaceAll("_", " ")),
        h("select", { id, name: it, class: "vcss" }, [0, 1, 2, 3].map((v) => h("option", { value: v }, String(v)))));
    }
    items.addEventListener("change", () => {
      document.getElementById("vcss-total").textContent = [...items.querySelectorAll("select")].reduce((s, e) => s + Number(e.value), 0);
    });
  }
  ES.onSubmit(document.getElementById("vcss-form"), async (d) => {
    const vcss_items = {};
    for (const it of ES.ref.vcss_items) vcss_items[it] = Number(d[it] || 0);
    const a = await api("POST", `/api/patients/${pid}/assessments`, { assessed_on: d.assessed_on, limb: d.limb, vcss_items });
    ES.say(`VCSS ${a.vcss} saved`); loadAssessments();
  });
  ES.onSubmit(document.getElementById("ceap-form"), async (d) => {
    const a = await api("POST", `/api/patients/${pid}/assessments`, d);
    ES.say(`CEAP ${a.ceap} saved`); loadAssessments();
  });
  async function loadAssessments() {
    try {
      const rows = await api("GET", `/api/patients/${pid}/assessments`);
      document.getElementById("assessment-list").replaceChildren(...rows.reverse().map((a) => h("li", {},
        `${fmtDate(a.assessed_on)} (${a.limb}): ` + [a.ceap && `CEAP ${a.ceap}`, a.vcss !== null && `VCSS ${a.vcss}`].filter(Boolean).join("; "))));
    } catch (e) { ES.fail(e); }
  }
  draw(); loadExams(); loadAssessments();
};

pages.candidacy = async () => {
  const { api, h, fmtDate } = ES;
  ES.patientHeader(); ES.setDefaults();
  const pid = ES.patientId;
  const fs = document.getElementById("checklist");
  if (fs) {
    try {
      const list = await api("GET", "/api/candidacy/checklist");
      for (const kind of ["absolute", "relative"]) {
        const group = list.filter((c) => c.kind === kind);
        fs.append(h("h3", {}, `${kind} contraindications`));
        for (const c of group) {
          const id = `ci-${c.code}`;
          fs.append(h("div", { class: "row" }, h("input", { type: "checkbox", id, name: "present", value: c.code }),
            h("label", { for: id }, c.text + (c.foam_only ? " (foam only)" : "")), h("span", { class: "muted small" }, c.source)));
        }
      }
    } catch (e) { ES.fail(e); }
  }
  const cf = document.getElementById("candidacy-form");
  if (cf) cf.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const present = [...cf.querySelectorAll('input[name="present"]:checked')].map((e) => e.value);
    const body = { assessed_on: cf.assessed_on.value, present, reasoning: cf.reasoning.value };
    if (cf.override_reason && cf.override_reason.value.trim()) body.override_reason = cf.override_reason.value.trim();
    try {
      const c = await api("POST", `/api/patients/${pid}/candidacy`, body);
      ES.say(c.blocks_planning ? "recorded: an absolute contraindication blocks planning" : "recorded: planning may proceed", c.blocks_planning ? "warn" : "ok");
      load();
    } catch (e) { ES.fail(e); }
  });
  ES.onSubmit(document.getElementById("test-form"), async (d) => {
    const t = await api("POST", `/api/patients/${pid}/test-injections`, d);
    ES.say("test injection recorded" + (t.warnings.length ? ": " + t.warnings.map((w) => w.message).join("; ") : ""), t.warnings.length ? "warn" : "ok");
    load();
  });
  async function load() {
    try {
      const [cs, ts] = await Promise.all([api("GET", `/api/patients/${pid}/candidacy`), api("GET", `/api/patients/${pid}/test-injections`)]);
      document.getElementById("candidacy-list").replaceChildren(...cs.reverse().map((c) => h("li", {},
        h("strong", {}, fmtDate(c.assessed_on)), " ",
        c.blocks_planning ? h("span", { class: "badge crit" }, "blocks planning") : h("span", { class: "badge ok" }, "may proceed"), " ",
        [...c.absolute, ...c.relative].map((x) => `${x.kind}: ${x.text}`).join("; ") || "no contraindication",
        c.override_reason ? ` (overridden: ${c.override_reason})` : "")));
      document.getElementById("test-list").replaceChildren(...ts.reverse().map((t) => h("li", {},
        `${fmtDate(t.given_on)}: ${t.agent} ${t.concentration_pct}% ${t.volume_ml} mL, `, t.reaction ? h("span", { class: "badge crit" }, "reaction") : h("span", { class: "badge ok" }, "no reaction"))));
    } catch (e) { ES.fail(e); }
  }
  load();
};

pages.plan = async () => {
  const { api, h, num, fmtDate } = ES;
  const p = await ES.patientHeader();
  const pid = ES.patientId;
  const tbody = document.querySelector("#plan-items tbody");
  if (p) document.getElementById("calc-weight").textContent = p.weight_kg ? `Limits for ${p.weight_kg} kg` : "";
  function row(item = {}) {
    const n = tbody.children.length + 1;
    const seg = h("select", { name: "segment", "aria-label": `segment ${n}` }); ES.segmentOptions(seg, (s) => s.system !== "deep");
    seg.value = item.segment || "GSVa";
    const tr = h("tr", {},
      h("td", {}, seg),
      h("td", {}, h("select", { name: "agent", "aria-label": `agent ${n}` }, h("option", { value: "polidocanol" }, "polidocanol"), h("option", { value: "sodium_tetradecyl_sulfate" }, "STS"))),
      h("td", {}, h("select", { name: "form", "aria-label": `form ${n}` }, h("option", { value: "foam" }, "foam"), h("option", { value: "liquid" }, "liquid"), h("option", { value: "canister_foam" }, "canister foam"))),
      h("td", {}, h("input", { name: "concentration_pct", type: "number", step: "any", min: "0.05", max: "100", value: item.concentration_pct ?? 1, "aria-label": `concentration % ${n}`, size: 5 })),
      h("td", {}, h("input", { name: "liquid_gas_ratio", value: item.liquid_gas_ratio ?? "1:4", "aria-label": `liquid to gas ratio ${n}`, size: 5 })),
      h("td", {}, h("select", { name: "gas", "aria-label": `gas ${n}` }, ["air", "co2", "co2_o2", "o2"].map((g) => h("option", { value: g }, g)))),
      h("td", {}, h("input", { name: "planned_volume_ml", type: "number", step: "any", min: "0.1", max: "1000", value: item.planned_volume_ml ?? 4, "aria-label": `volume mL ${n}`, size: 5 })),
      h("td", {}, h("button", { type: "button", "aria-label": `remove segment ${n}`, onclick: () => { tr.remove(); calc(); } }, "×")));
    tbody.append(tr);
  }
  function items() {
    return [...tbody.children].map((tr) => {
      const g = (n) => tr.querySelector(`[name="${n}"]`).value;
      const it = { segment: g("segment"), agent: g("agent"), form: g("form"), concentration_pct: Number(g("concentration_pct")), planned_volume_ml: Number(g("planned_volume_ml")) };
      if (it.form === "foam") { it.liquid_gas_ratio = g("liquid_gas_ratio"); it.gas = g("gas"); }
      return it;
    });
  }
  const LIMITS = { polidocanol_mg_today: ["Polidocanol today", "mg"], polidocanol_foam_ml_today: ["Polidocanol foam today", "mL"], foam_ml_session: ["Foam this session", "mL"], sts_ml_session: ["STS this session", "mL"], canister_foam_ml_session: ["Canister foam this session", "mL"] };
  let timer;
  function calc() { clearTimeout(timer); timer = setTimeout(run, 250); }
  async function run() {
    const out = document.getElementById("calc");
    if (!tbody.children.length) { out.replaceChildren("Add a segment to see the doses."); return; }
    try {
      const r = await api("POST", "/api/web/dose-check", { patient_id: pid, items: items() });
      out.replaceChildren(...Object.entries(LIMITS).map(([k, [label, unit]]) => {
        const lim = r.limits[k], used = lim - r.remaining[k], frac = lim ? used / lim : 0;
        return h("div", { class: "meter" }, h("div", { class: "lbl" }, h("span", {}, label), h("span", {}, `${num(used, 1)} of ${num(lim, 1)} ${unit}`)),
          h("div", { class: "bar" + (frac >= 1 ? " over" : frac > 0.8 ? " warn" : ""), role: "meter", "aria-valuemin": 0, "aria-valuemax": lim, "aria-valuenow": used.toFixed(2), "aria-label": label },
            h("span", { style: null, "data-w": "" })));
      }));
      out.querySelectorAll(".bar").forEach((b, i) => {
        const k = Object.keys(LIMITS)[i], lim = r.limits[k], used = lim - r.remaining[k];
        b.firstChild.style.width = `${Math.min(100, (100 * used) / (lim || 1))}%`;
      });
      document.getElementById("calc-violations").replaceChildren(...r.violations.map((v) => h("li", { class: v.enforcement === "refuse" ? "msg error" : "msg warn" }, `${v.message} (${v.rule}; ${v.source})`)));
    } catch (e) { out.replaceChildren(ES.say(e.message, "error", out)); }
  }
  tbody.addEventListener("input", calc); tbody.addEventListener("change", calc);
  document.getElementById("add-item").addEventListener("click", () => { row(); calc(); });
  row(); calc();
  const pf = document.getElementById("plan-form");
  pf.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { limb: pf.limb.value, items: items(), notes: pf.notes.value };
    if (pf.override_reason && pf.override_reason.value.trim()) body.override_reason = pf.override_reason.value.trim();
    try {
      const plan = await api("POST", `/api/patients/${pid}/plans`, body);
      ES.say(`plan ${plan.id} saved` + (plan.warnings.length ? ` with ${plan.warnings.length} warning(s)` : ""), plan.warnings.length ? "warn" : "ok");
      load();
    } catch (e) { ES.fail(e); }
  });
  async function load() {
    try {
      const plans = await api("GET", `/api/patients/${pid}/plans`);
      document.getElementById("plan-list").replaceChildren(...plans.reverse().map((x) => h("li", {},
        h("strong", {}, `Plan ${x.id}`), ` (${x.limb}, ${x.status}, ${fmtDate(x.created_at.slice(0, 10))}): `,
        x.items.map((i) => `${i.segment} ${i.agent} ${i.form} ${i.concentration_pct}% ${i.planned_volume_ml} mL`).join("; "),
        x.warnings.length ? h("div", { class: "small muted" }, x.warnings.map((w) => w.message).join("; ")) : "")));
    } catch (e) { ES.fail(e); }
  }
  load();
};

/* the clinic's handout text (issue-able wording, kept as written): the first line as a heading, "- " lines as a
   list, an indented line continuing the line above */
function handoutNodes(text) {
  const lines = [];
  for (const raw of text.split("\n")) {
    if (/^\s+\S/.test(raw) && lines.length) lines[lines.length - 1] += " " + raw.trim();
    else if (raw.trim()) lines.push(raw.trim());
  }
  const out = [];
  let list = null;
  lines.forEach((line, i) => {
    if (i === 0) { out.push(ES.h("h2", {}, line)); return; }
    if (line.startsWith("- ")) { if (!list) out.push((list = ES.h("ul"))); list.append(ES.h("li", {}, line.slice(2))); }
    else { list = null; out.push(ES.h("p", {}, line)); }
  });
  return out;
}

pages.aftercare = async () => {
  const { api, h, fmtDate } = ES;
  ES.patientHeader();
  const pid = ES.patientId;
  const regSel = document.getElementById("ac-regimen"), kindSel = document.getElementById("ac-kind");
  let session = null;
  try {
    const regs = await api("GET", "/api/aftercare/regimens");
    regSel.replaceChildren(h("option", { value: "" }, "the latest session's"), ...regs.map((r) => h("option", { value: r.code }, r.title)));
  } catch (e) { ES.fail(e); }
  async function handout() {
    try {
      const q = new URLSearchParams({ kind: kindSel.value }); if (regSel.value) q.set("regimen", regSel.value);
      const r = await api("GET", `/api/patients/${pid}/instructions?${q}`);
      document.getElementById("handout").replaceChildren(...handoutNodes(r.text));
      document.getElementById("handout-source").textContent = `Regimen ${r.regimen}; source: ${r.source}`;
    } catch (e) { ES.fail(e); }
  }
  regSel.addEventListener("change", handout); kindSel.addEventListener("change", handout);
  document.getElementById("print-btn").addEventListener("click", () => window.print());
  async function sessions() {
    try {
      const ss = await api("GET", `/api/patients/${pid}/sessions`);
      session = ss[ss.length - 1] || null;
      const cf = document.getElementById("compression-form");
      if (session) {
        document.getElementById("ac-session").textContent = `Session ${session.id} of ${fmtDate(session.date)} (${session.limb} leg, ${session.status}): ` +
          (session.compression ? `${session.compression.replaceAll("_", " ")}${session.stocking_class ? ", class " + session.stocking_class : ""}${session.compression_days !== null ? ", " + session.compression_days + " days" : ""}` : "no compression recorded");
        if (cf) { cf.hidden = session.status === "closed"; if (session.compression) cf.compression.value = session.compression; cf.stocking_class.value = session.stocking_class ?? ""; cf.compression_days.value = session.compression_days ?? ""; }
      }
    } catch (e) { if (e.status !== 403) ES.fail(e); }
  }
  ES.onSubmit(document.getElementById("compression-form"), async (d) => {
    if (!session) throw new Error("no session to attach the plan to");
    const body = { compression: d.compression, stocking_class: d.stocking_class, compression_days: d.compression_days };
    if (regSel.value) body.regimen = regSel.value;
    await api("PATCH", `/api/sessions/${session.id}`, body);
    ES.say("bandage and stocking plan saved"); sessions(); handout();
  });
  async function followups() {
    try {
      const fs = await api("GET", `/api/patients/${pid}/followups`);
      document.getElementById("followup-list").replaceChildren(...fs.map((f) => h("li", {},
        h("strong", {}, fmtDate(f.due_on)), ` ${f.kind.replaceAll("_", " ")} (${f.status}) `, f.purpose ? h("span", { class: "muted small" }, f.purpose) : "", " ",
        f.status === "scheduled" ? h("a", { href: `/calendar?patient=${pid}&kind=followup&date=${f.due_on}` }, "Book") : "")));
      if (!fs.length) document.getElementById("followup-list").replaceChildren(h("li", { class: "muted" }, "Follow-ups are scheduled when a session is closed."));
    } catch (e) { ES.fail(e); }
  }
  handout(); sessions(); followups();
};

pages.calendar = async () => {
  const { api, h, fmtTime } = ES;
  let month = new Date(); month.setDate(1);
  let appts = [], noticeH = 48, patients = {};
  const qs = new URLSearchParams(location.search);
  const bf = document.getElementById("book-form");
  if (bf) {
    if (qs.get("patient")) bf.patient_id.value = qs.get("patient");
    if (qs.get("kind")) bf.kind.value = qs.get("kind");
    const d = qs.get("date") ? new Date(qs.get("date") + "T09:00") : new Date(Date.now() + 7 * 864e5);
    if (d < new Date()) d.setTime(Date.now() + 3 * 864e5);
    d.setHours(9, 0, 0, 0);
    bf.start.value = `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}T09:00`;
    if (qs.get("date")) month = new Date(d.getFullYear(), d.getMonth(), 1);
  }
  try {
    const rules = await api("GET", "/api/rules");
    const r = rules.find((x) => x.code === "APPOINTMENT_NOTICE_HOURS");
    if (r) { noticeH = Number(r.value); document.getElementById("notice-rule").textContent =
      `Notice rule: an appointment can be cancelled or moved without a written reason only more than ${noticeH} h before it starts (${r.code}, ${r.enforcement}; ${r.citation || r.source}).`; }
  } catch (e) { ES.fail(e); }
  async function load() {
    try {
      appts = await api("GET", "/api/appointments?days=366&include_past_days=62");
      const ids = [...new Set(appts.map((a) => a.patient_id))].filter((id) => !patients[id]);
      await Promise.all(ids.map(async (id) => { try { const p = await api("GET", `/api/patients/${id}`); patients[id] = `${p.family_name}, ${p.given_name}`; } catch { patients[id] = `patient ${id}`; } }));
      render();
    } catch (e) { ES.fail(e); }
  }
  const inside = (a) => a.status === "booked" && (new Date(a.start) - Date.now()) / 36e5 < noticeH;
  function render() {
    document.getElementById("cal-title").textContent = month.toLocaleDateString(undefined, { month: "long", year: "numeric" });
    const first = new Date(month), start = new Date(first); start.setDate(1 - ((first.getDay() + 6) % 7));
    const tbody = document.querySelector("#calendar tbody"), rows = [];
    const key = (d) => `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`, todayKey = key(new Date());
    for (let w = 0; w < 6; w++) {
      const tr = h("tr");
      for (let i = 0; i < 7; i++) {
        const d = new Date(start); d.setDate(start.getDate() + w * 7 + i);
        const evs = appts.filter((a) => a.status !== "cancelled" && key(new Date(a.start)) === key(d));
        tr.append(h("td", { class: (d.getMonth() !== month.getMonth() ? "other " : "") + (key(d) === todayKey ? "today" : "") },
          h("span", { class: "day" }, d.getDate()), ...evs.map((a) => h("span", { class: "ev" + (a.kind === "followup" ? " fu" : ""), title: `${a.kind} ${patients[a.patient_id] || ""}` },
            `${new Date(a.start).toTimeString().slice(0, 5)} ${patients[a.patient_id] || a.patient_id}`))));
      }
      rows.push(tr);
    }
    tbody.replaceChildren(...rows);
    document.querySelector("#appt-table tbody").replaceChildren(...appts.filter((a) => new Date(a.start) >= Date.now() - 864e5).map((a) => h("tr", {},
      h("td", {}, fmtTime(a.start)), h("td", {}, h("a", { href: `/patients/${a.patient_id}` }, patients[a.patient_id] || a.patient_id)),
      h("td", {}, a.kind.replaceAll("_", " ")), h("td", {}, a.status),
      h("td", {}, inside(a) ? h("span", { class: "badge warn" }, `inside ${noticeH} h: a change needs a reason`) : a.status === "booked" ? h("span", { class: "badge ok" }, "changeable") : ""),
      h("td", {}, a.status === "booked" && bf ? h("button", { type: "button", onclick: () => cancel(a) }, "Cancel") : ""))));
  }
  async function cancel(a) {
    const reason = prompt("Reason for cancelling:");
    if (!reason) return;
    const body = { reason };
    if (inside(a)) {
      const o = prompt(`This is inside the ${noticeH} h notice period. Written reason to cancel anyway (at least 10 characters):`);
      if (!o) return;
      body.override_reason = o;
    }
    try { await api("POST", `/api/appointments/${a.id}/cancel`, body); ES.say("appointment cancelled"); load(); } catch (e) { ES.fail(e); }
  }
  document.getElementById("cal-prev").addEventListener("click", () => { month.setMonth(month.getMonth() - 1); render(); });
  document.getElementById("cal-next").addEventListener("click", () => { month.setMonth(month.getMonth() + 1); render(); });
  ES.onSubmit(bf, async (d) => {
    const a = await api("POST", "/api/appointments", { ...d, start: new Date(d.start).toISOString() });
    ES.say(`booked: ${a.kind.replaceAll("_", " ")} on ${fmtTime(a.start)}`);
    const s = new Date(a.start); month = new Date(s.getFullYear(), s.getMonth(), 1);
    load();
  });
  const rl = document.getElementById("request-list");
  if (rl) try {
    const reqs = await api("GET", "/api/appointment-requests");
    rl.replaceChildren(...reqs.map((r) => h("li", {}, h("strong", {}, r.name), ` ${[r.phone, r.email].filter(Boolean).join(" · ")}; ${r.preferred_times || ""} ${r.reason || ""}`)));
    if (!reqs.length) rl.replaceChildren(h("li", { class: "muted" }, "No new request."));
  } catch (e) { ES.fail(e); }
  load();
};

pages.outcomes = async () => {
  const { api, h } = ES;
  try {
    const r = await api("GET", "/api/web/outcomes");
    const colours = { trunk: "#0b5f73", tributary: "#d62728", reticular: "#9467bd", perforator: "#ff7f0e", telangiectasia: "#2ca02c" };
    const series = Object.entries(r.occlusion).map(([k, pts]) => ({ name: k, colour: colours[k] || "#555", dots: true, points: pts.map((p) => [p.month, 100 * p.rate]) }));
    if (series.length) ES.linePlot(document.getElementById("occlusion-plot"), series, { xLabel: "months after the session", yLabel: "occluded (%)", yMin: 0, yMax: 100 });
    else document.getElementById("occlusion-plot").replaceChildren(h("p", { class: "muted" }, "No follow-up outcome recorded yet."));
    document.querySelector("#occlusion-table tbody").replaceChildren(...Object.entries(r.occlusion).flatMap(([k, pts]) => pts.map((p) => h("tr", {}, h("td", {}, k), h("td", {}, p.month), h("td", {}, `${p.occluded} / ${p.observed}`)))));
    if (r.complications.length) ES.barPlot(document.getElementById("complication-plot"), r.complications.map((c) => ({ label: c.type.replaceAll("_", " "), value: c.per_100_sessions || 0 })), { yLabel: "per 100 sessions" });
    else document.getElementById("complication-plot").replaceChildren(h("p", { class: "muted" }, "No complication recorded."));
    document.getElementById("complication-note").textContent = `${r.sessions} session(s) recorded.`;
  } catch (e) { ES.fail(e); }
};

pages.users = async () => {
  const { api, h } = ES;
  for (const sel of document.querySelectorAll("select.roles")) sel.replaceChildren(...ES.ref.roles.map((r) => h("option", { value: r }, r.replace("_", " "))));
  async function load() {
    try {
      const users = await api("GET", "/api/users");
      document.querySelector("#user-table tbody").replaceChildren(...users.map((u) => {
        const role = h("select", { "aria-label": `role of ${u.username}` }, ES.ref.roles.map((r) => h("option", { value: r, selected: r === u.role }, r.replace("_", " "))));
        role.addEventListener("change", async () => { try { await api("PATCH", `/api/users/${u.id}`, { role: role.value }); ES.say(`${u.username} is now ${role.value}`); } catch (e) { ES.fail(e); load(); } });
        const act = h("input", { type: "checkbox", checked: u.active, "aria-label": `${u.username} active` });
        act.addEventListener("change", async () => { try { await api("PATCH", `/api/users/${u.id}`, { active: act.checked }); ES.say(`${u.username} ${act.checked ? "enabled" : "disabled"}`); } catch (e) { ES.fail(e); load(); } });
        return h("tr", {}, h("td", {}, u.username), h("td", {}, u.full_name), h("td", {}, role), h("td", {}, act));
      }));
    } catch (e) { ES.fail(e); }
  }
  ES.onSubmit(document.getElementById("user-form"), async (d, form) => { const u = await api("POST", "/api/users", d); form.reset(); ES.say(`user ${u.username} created`); load(); });
  load();
};

pages.audit = async () => {
  const { api, h, fmtTime } = ES;
  async function load(d = {}) {
    try {
      const q = new URLSearchParams({ limit: 200 }); for (const [k, v] of Object.entries(d)) q.set(k, v);
      const rows = await api("GET", `/api/audit?${q}`);
      document.querySelector("#audit-table tbody").replaceChildren(...rows.map((a) => h("tr", {},
        h("td", {}, fmtTime(a.at)), h("td", {}, `${a.username || "-"} (${a.role || "-"})`), h("td", {}, a.action), h("td", {}, a.resource + (a.resource_id ? ` ${a.resource_id}` : "")),
        h("td", {}, a.patient_id ?? ""), h("td", {}, `${a.method} ${a.path}`), h("td", { class: "small" }, JSON.stringify(a.detail)))));
    } catch (e) { ES.fail(e); }
  }
  ES.onSubmit(document.getElementById("audit-form"), (d) => load(d));
  load();
};

document.addEventListener("DOMContentLoaded", () => {
  const fn = pages[document.body.dataset.page];
  if (fn) Promise.resolve(fn()).catch((e) => ES.fail(e));
});
