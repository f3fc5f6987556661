"""PDF documents with reportlab: the procedure report of a session and the patient's handout.

- :func:`procedure_report_pdf`: patient, the duplex findings with the leg diagram, reflux traces, the plan,
  the injections with their totals against the limits in force, key frames with their overlays, the alerts
  raised, observation, compression and aftercare given, and the follow-ups booked.
- :func:`handout_pdf`: the instructions before and after the treatment for this patient's regimen and dates,
  from the clinic's templates (:mod:`echosclero.clinic.aftercare`; the clinic edits them).

Both take a :class:`~echosclero.interop.record.Pathway` (one read of the record) and return the PDF bytes.
"""

from __future__ import annotations

import io
import tempfile
from datetime import date, datetime
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (
    Image,
    KeepTogether,
    ListFlowable,
    ListItem,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from echosclero import __version__
from echosclero.clinic import aftercare
from echosclero.errors import InputError
from echosclero.interop.record import Pathway, SessionRecord, age_on

__all__ = ["handout_pdf", "handout_text", "procedure_report_pdf"]

_STYLES = getSampleStyleSheet()
_BODY = ParagraphStyle("body", parent=_STYLES["BodyText"], fontSize=9.5, leading=12)
_SMALL = ParagraphStyle("small", parent=_BODY, fontSize=8, leading=10, textColor=colors.HexColor("#444444"))
_H1 = ParagraphStyle("h1", parent=_STYLES["Heading1"], fontSize=16, spaceAfter=4)
_H2 = ParagraphStyle("h2", parent=_STYLES["Heading2"], fontSize=12, spaceBefore=8, spaceAfter=3)
_BIG = ParagraphStyle("big", parent=_BODY, fontSize=12, leading=16)
_BIG_BOLD = ParagraphStyle("bigb", parent=_BIG, fontName="Helvetica-Bold")
_BIG_H = ParagraphStyle("bigh", parent=_H2, fontSize=15, spaceBefore=10)
_GRID = TableStyle([
    ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#999999")),
    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5")),
    ("FONTSIZE", (0, 0), (-1, -1), 8),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
])


def _p(text: str, style=_BODY) -> Paragraph:
    return Paragraph(escape(str(text)), style)


def _table(rows: list[list], widths=None) -> Table:
    data = [[_p(c, _SMALL) if not isinstance(c, Paragraph) else c for c in r] for r in rows]
    t = Table(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
    t.setStyle(_GRID)
    return t


def _fmt(v, unit: str = "", nd: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}{unit}"
    return f"{v}{unit}"


def _footer(title: str):
    def draw(canvas, doc):
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.setFillColor(colors.grey)
        canvas.drawString(18 * mm, 10 * mm, f"{title} - EchoSclero {__version__}")
        canvas.drawRightString(A4[0] - 18 * mm, 10 * mm, f"page {doc.page}")
        canvas.restoreState()

    return draw


def _build(story: list, *, title: str, author: str) -> bytes:
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                            bottomMargin=16 * mm, title=title, author=author, creator=f"EchoSclero {__version__}")
    doc.build(story, onFirstPage=_footer(title), onLaterPages=_footer(title))
    return buf.getvalue()


def _patient_line(pw: Pathway, on: date) -> str:
    p = pw.patient
    return (f"{p.family_name.upper()}, {p.given_name} - born {p.birth_date.isoformat()} "
            f"({age_on(p, on)} y), {p.sex}, {p.weight_kg:g} kg - record no. {p.id}")


def _image(png: bytes, width_mm: float) -> Image:
    img = Image(io.BytesIO(png))
    scale = width_mm * mm / img.imageWidth
    img.drawWidth, img.drawHeight = img.imageWidth * scale, img.imageHeight * scale
    return img


def _leg_diagram_png(pw: Pathway, exam) -> bytes:
    from echosclero.mapping.diagram import write_leg_diagram

    with tempfile.TemporaryDirectory() as tmp:
        path = write_leg_diagram(Path(tmp) / "legs.png", pw.vein_map(exam),
                                 title=f"Duplex vein map, exam of {exam.exam_date.isoformat()}")
        return path.read_bytes()


def _reflux_png(results) -> bytes | None:
    traces = [r for r in results if r.kind == "reflux" and r.summary.get("trace")]
    if not traces:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(traces), 1, figsize=(7, 1.9 * len(traces)), squeeze=False)
    try:
        for ax, r in zip(axes[:, 0], traces, strict=True):
            s = r.summary
            t = [p[0] for p in s["trace"]]
            v = [p[1] for p in s["trace"]]
            ax.plot(t, v, color="#1f4e9c", lw=1)
            ax.axhline(0, color="k", lw=0.6)
            if s.get("reflux_start_s") is not None and s.get("reflux_end_s") is not None:
                ax.axvspan(s["reflux_start_s"], s["reflux_end_s"], color="#e34a33", alpha=0.2,
                           label=f"reflux {s['reflux_ms']:.0f} ms")
                ax.legend(loc="upper right", fontsize=7)
            ax.set_title(f"{r.leg or ''} {r.segment or ''}: velocity (antegrade +), cm/s", fontsize=8)
            ax.set_xlabel("time, s", fontsize=7)
            ax.tick_params(labelsize=7)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=130)
        return buf.getvalue()
    finally:
        plt.close(fig)


def _findings_rows(pw: Pathway, exam) -> list[list]:
    rows = [["leg", "segment", "diameter (mm)", "reflux (ms)", "status", "note"]]
    for f in pw.vein_map(exam).findings:
        rows.append([f.leg.value, f.segment + (f" {f.label}" if f.label else ""), _fmt(f.diameter_mm),
                     _fmt(f.reflux_ms, nd=0), f.status.value, f.note])
    return rows


def procedure_report_pdf(pw: Pathway, *, session_id: int) -> bytes:
    """The procedure report of one session (A4 pages)."""
    rec: SessionRecord = pw.session(session_id)
    s = rec.session
    story: list = [
        _p(f"Sclerotherapy procedure report - {pw.clinic.name}", _H1),
        _p(_patient_line(pw, s.session_date)),
        _p(f"Session {s.id} on {s.session_date.isoformat()}, {s.limb} leg, status {s.status}"
           + (f"; started {s.started_at:%H:%M}" if s.started_at else "")
           + (f", ended {s.ended_at:%H:%M} UTC" if s.ended_at else ""), _SMALL),
    ]
    ceap = [a for a in pw.assessments if a.limb == s.limb and a.assessed_on <= s.session_date]
    if ceap:
        a = ceap[-1]
        story.append(_p(f"CEAP {a.ceap or '-'}; VCSS {a.vcss if a.vcss is not None else '-'} "
                        f"(assessed {a.assessed_on.isoformat()})"))
    story.append(_p("Duplex mapping", _H2))
    if rec.exam is None:
        story.append(_p(f"No duplex exam of the {s.limb} leg recorded before this session."))
    else:
        widths = [14 * mm, 26 * mm, 24 * mm, 22 * mm, 26 * mm, 60 * mm]
        story.append(_table(_findings_rows(pw, rec.exam), widths=widths))
        if rec.exam.findings:
            story.append(_p(rec.exam.findings, _SMALL))
        story.append(Spacer(1, 3 * mm))
        story.append(_image(_leg_diagram_png(pw, rec.exam), 170))
        png = _reflux_png(pw.exam_results.get(rec.exam.id, []) + rec.results)
        if png:
            story.append(KeepTogether([_p("Reflux traces (spectral Doppler)", _H2), _image(png, 160)]))
    if rec.plan is None:
        story += [_p("Plan", _H2), _p("No plan linked to this session.")]
    else:
        rows = [["segment", "agent", "form", "concentration (%)", "planned volume (ml)"]]
        rows += [[i.segment, i.agent, i.form + (f" {i.liquid_gas_ratio}" if i.liquid_gas_ratio else ""),
                  _fmt(i.concentration_pct, nd=2), _fmt(i.planned_volume_ml)] for i in rec.plan.items]
        story.append(KeepTogether([_p("Plan", _H2), _table(rows)]))
        if rec.plan.notes:
            story.append(_p(rec.plan.notes, _SMALL))
    heading = _p("Injections", _H2)
    rows = [["time (UTC)", "segment", "agent", "form", "conc. (%)", "volume (ml)", "drug (mg)", "US confirmed",
             "spread (cm)", "spasm", "image"]]
    for i in rec.injections:
        rows.append([f"{i.injected_at:%H:%M}", i.segment, i.agent,
                     i.form + (f" {i.liquid_gas_ratio}" if i.liquid_gas_ratio else ""),
                     _fmt(i.concentration_pct, nd=2), _fmt(i.volume_ml), _fmt(i.mass_mg),
                     {True: "yes", False: "no", None: "-"}[i.ultrasound_confirmed], _fmt(i.spread_cm),
                     {True: "yes", False: "no", None: "-"}[i.spasm], i.frame_ref or "-"])
    if len(rows) == 1:
        rows.append(["no injection recorded"] + [""] * 10)
    story.append(KeepTogether([heading, _table(rows)]))
    t = rec.totals
    story.append(Spacer(1, 2 * mm))
    lim = rec.limits
    rows = [["total", "given", "limit", "left", "rule and source"]]
    for label, given, key in (
        ("polidocanol today (mg)", rec.day_totals["polidocanol_mg"], "polidocanol_mg_today"),
        ("polidocanol foam today (ml)", rec.day_totals["polidocanol_foam_ml"], "polidocanol_foam_ml_today"),
        ("foam this session (ml)", t["foam_ml"], "foam_ml_session"),
        ("STS this session (ml)", t["sts_volume_ml"], "sts_ml_session"),
        ("canister foam this session (ml)", t["canister_foam_ml"], "canister_foam_ml_session"),
    ):
        rows.append([label, _fmt(float(given)), _fmt(float(lim[key]["limit"])), _fmt(float(rec.remaining[key])),
                     f"{lim[key]['rule']}: {lim[key]['source']}"])
    story.append(_table(rows, widths=[42 * mm, 16 * mm, 16 * mm, 16 * mm, 84 * mm]))
    story.append(_p(f"{t['count']} injection(s), {t['volume_ml']:g} ml in all "
                    f"(polidocanol {t['polidocanol_mg']:g} mg, STS {t['sts_mg']:g} mg).", _SMALL))
    analyses = [r for r in rec.results if r.kind == "analysis"]
    if rec.key_frames:
        story.append(_p("Key frames", _H2))
        cells = []
        for k in rec.key_frames:
            cap = _p(f"frame {k.frame_index} (t = {k.t_s:.2f} s): {k.reason}", _SMALL)
            cells.append([_image(k.png, 80), cap] if k.png else [cap])
        grid = [cells[i:i + 2] for i in range(0, len(cells), 2)]
        for row in grid:
            story.append(Table([row + [""] * (2 - len(row))], colWidths=[87 * mm, 87 * mm], hAlign="LEFT"))
        sources = {(r.source, r.sop_instance_uid) for r in analyses}
        for src, uid in sorted(sources, key=str):
            story.append(_p(f"source: {src}" + (f" (SOP Instance UID {uid})" if uid else ""), _SMALL))
    alerts = [(r, a) for r in analyses for a in r.summary.get("alerts", [])]
    warn = s.warnings or []
    block = [_p("Alerts raised", _H2)]
    if not alerts and not warn:
        block.append(_p("None recorded."))
    if alerts:
        rows = [["alert", "severity", "first at", "frames", "message"]]
        rows += [[a["code"], a.get("severity") or "", f"{a['first_t_s']:.2f} s (frame {a['first_index']})",
                  str(a["frames"]), a.get("message") or ""] for _r, a in alerts]
        block.append(_table(rows, widths=[34 * mm, 16 * mm, 30 * mm, 14 * mm, 80 * mm]))
    story.append(KeepTogether(block))
    for w in warn:
        story.append(_p(f"Rule: {w.get('rule', w.get('code', ''))}: {w.get('message', '')}", _SMALL))
    story.append(_p("Observation, compression and aftercare", _H2))
    obs = (f"observed {s.observation_minutes:g} min, {s.observation_outcome or 'outcome not recorded'}"
           if s.observation_minutes is not None else "observation not recorded")
    comp = (f"{s.compression}" + (f", class {s.stocking_class}" if s.stocking_class else "")
            + (f", {s.compression_days} days" if s.compression_days else "")) if s.compression else "not recorded"
    story.append(_p(f"Observation: {obs}." + (f" {s.observation_notes}" if s.observation_notes else "")))
    story.append(_p(f"Compression: {comp}."))
    if s.regimen:
        reg = aftercare.get_regimen(s.regimen)
        story.append(_p(f"Aftercare regimen given: {reg.title} ({reg.source})."))
    else:
        story.append(_p("Aftercare regimen: not recorded."))
    story.append(_p("Follow-ups booked", _H2))
    fus = rec.followups or [f for f in pw.followups if f.due_on >= s.session_date]
    appts = _visits_booked_after(pw, s.session_date)
    if fus or appts:
        rows = [["due", "kind", "status", "purpose"]]
        rows += [[f.due_on.isoformat(), f.kind, f.status, f.purpose] for f in fus]
        rows += [[f"{a.start_at:%Y-%m-%d %H:%M} UTC", a.kind, a.status, "appointment"] for a in appts]
        story.append(_table(rows, widths=[24 * mm, 30 * mm, 22 * mm, 98 * mm]))
    else:
        story.append(_p("None booked."))
    story.append(Spacer(1, 4 * mm))
    story.append(_p(f"Produced {datetime.now().astimezone():%Y-%m-%d %H:%M} from the EchoSclero record.", _SMALL))
    return _build(story, title=f"Procedure report, session {s.id}", author=pw.clinic.name)


_TREATMENT_KINDS = ("sclerotherapy", "test_injection")


def _next_treatment(pw: Pathway, today: date):
    booked = [a for a in pw.appointments if a.status == "booked" and pw.clinic.local(a.start_at).date() >= today
              and a.kind in _TREATMENT_KINDS]
    return booked[0] if booked else None


def _visits_booked_after(pw: Pathway, day: date) -> list:
    """Appointments booked after ``day`` that are not treatments (follow-up visits, reviews)."""
    return [a for a in pw.appointments if a.status == "booked" and pw.clinic.local(a.start_at).date() > day
            and a.kind not in _TREATMENT_KINDS]


def _handout_dates(pw: Pathway, rec: SessionRecord | None, today: date) -> dict:
    if rec is not None:
        procedure = rec.session.session_date
        fus = [f for f in rec.followups if f.status == "scheduled"] or [
            f for f in pw.followups if f.status == "scheduled" and f.due_on >= procedure]
    else:
        nxt = _next_treatment(pw, today)
        procedure = pw.clinic.local(nxt.start_at) if nxt else None
        fus = [f for f in pw.followups if f.status == "scheduled" and f.due_on >= today]
    when = ""
    if isinstance(procedure, datetime):
        when = f"{procedure:%A %d %B %Y, %H:%M}"
    elif procedure is not None:
        when = f"{procedure:%A %d %B %Y}"
    items = [{"date": f"{f.due_on:%A %d %B %Y}", "purpose": f.purpose or f.kind.replace("_", " ")} for f in fus]
    appts = _visits_booked_after(pw, rec.session.session_date if rec else today)
    items += [{"date": f"{pw.clinic.local(a.start_at):%A %d %B %Y, %H:%M}",
               "purpose": {"followup": "follow-up"}.get(a.kind, a.kind.replace("_", " ")) + " appointment"}
              for a in appts]
    return {"procedure": when, "followups": items}


def handout_text(pw: Pathway, *, session_id: int | None = None, regimen: str | None = None,
                 notice_hours: float = aftercare.DEFAULT_NOTICE_HOURS, today: date | None = None) -> dict[str, str]:
    """The handout's two texts (``pre_procedure``, ``aftercare``) filled for this patient."""
    today = today or date.today()
    if session_id is not None:
        rec = pw.session(session_id)
    elif _next_treatment(pw, today) is not None:  # the next treatment booked: its date, the follow-ups ahead
        rec = None
    else:
        rec = pw.sessions[-1] if pw.sessions else None
    code = regimen or (rec.session.regimen if rec and rec.session.regimen else None)
    if code is None:
        done = [r.session.regimen for r in pw.sessions if r.session.regimen]
        code = done[-1] if done else "trunk_foam"
    reg = aftercare.get_regimen(code)
    p = pw.patient
    kw = {
        "patient": {"given_name": p.given_name, "family_name": p.family_name, "age_years": age_on(p, today)},
        "regimen": reg,
        "clinic": {"name": pw.clinic.name, "phone": pw.clinic.phone, "notice_hours": notice_hours},
        "dates": _handout_dates(pw, rec, today),
    }
    return {key: aftercare.render(pw.templates[key], **kw) for key in ("pre_procedure", "aftercare")} | {
        "regimen": reg.code, "source": reg.source}


def _text_flowables(text: str) -> list:
    """A template's text: the first line as a heading, "- " lines as a bulleted list, others as paragraphs."""
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    out: list = [_p(lines[0], _BIG_H)]
    bullets: list = []

    def flush():
        if bullets:
            out.append(ListFlowable([ListItem(b, leftIndent=12) for b in bullets], bulletType="bullet",
                                    start="\u2022", leftIndent=12))
            bullets.clear()

    for ln in lines[1:]:
        if ln.lstrip().startswith("- "):
            item = ln.lstrip()[2:]
            # the warning signs stand out (bold), whatever the clinic's wording around them
            bullets.append(_p(item, _BIG_BOLD if item.lower().startswith("warning") else _BIG))
        else:
            flush()
            out.append(_p(ln, _BIG))
    flush()
    return out


def handout_pdf(pw: Pathway, *, session_id: int | None = None, regimen: str | None = None,
                notice_hours: float = aftercare.DEFAULT_NOTICE_HOURS, today: date | None = None) -> bytes:
    """The patient's handout (large type): before the treatment, after it, warning signs, follow-up dates."""
    texts = handout_text(pw, session_id=session_id, regimen=regimen, notice_hours=notice_hours, today=today)
    if not texts["aftercare"].strip():
        raise InputError("the aftercare template renders to nothing; edit it "
                         "(PUT /api/instruction-templates/aftercare)")
    story: list = [_p(f"{pw.clinic.name}: your sclerotherapy", _H1)]
    if pw.clinic.phone:
        story.append(_p(f"Telephone {pw.clinic.phone}", _BIG))
    story += _text_flowables(texts["pre_procedure"])
    story += _text_flowables(texts["aftercare"])
    story.append(Spacer(1, 6 * mm))
    # the regimen's code for the clinic's reference; its sources are the clinician's (the procedure report)
    story.append(_p(f"Regimen: {texts['regimen']}. Printed {date.today().isoformat()}.", _SMALL))
    return _build(story, title="Your sclerotherapy: before and after", author=pw.clinic.name)
