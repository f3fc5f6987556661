"""Results into the record: an ``analyze`` (``echosclero.analysis/1``) or ``reflux`` (``echosclero.reflux/1``)
document attached to a duplex exam or a treatment session, with a link back to its source image.

- Into an **exam**: the reflux time (reflux document) or the vessel's median diameter (analysis document) of
  one segment of one leg goes into the exam's vein map (the finding is added or updated; the vein map's own
  checks apply, so a reflux time that contradicts a stated verdict is refused).
- Into a **session**: the alerts raised (code, severity, first frame) and the key frames (each alert's first
  frame, the fullest foam of each vessel, the first frame with the needle tip in a vessel), each with an
  overlay picture when the source can be read again.

The link back is the source as named in the document (path, ``sim:`` scenario) and, for DICOM, the SOP
Instance, Series and Study UIDs read from the file (or given by the caller, e.g. by the DICOM receiver).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session as DbSession

from echosclero.errors import InputError
from echosclero.frames import ANALYSIS_SCHEMA
from echosclero.mapping.model import VeinMap
from echosclero.store import models as m

__all__ = [
    "ANALYSIS_SCHEMA",
    "REFLUX_SCHEMA",
    "attach_result",
    "dicom_link",
    "summarise_analysis",
    "summarise_reflux",
]

REFLUX_SCHEMA = "echosclero.reflux/1"
#: Points of the reflux velocity trace kept for the report's plot.
TRACE_POINTS = 400
#: Key frames kept per analysis (alerts first, then foam, then the needle).
MAX_KEY_FRAMES = 8


def dicom_link(path: str | os.PathLike) -> dict:
    """The UIDs of a readable DICOM file (``{}`` when the path is not one)."""
    p = Path(os.fspath(path))
    if not p.is_file():
        return {}
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError, EOFError):
        return {}
    return {
        k: str(getattr(ds, a))
        for k, a in (
            ("sop_instance_uid", "SOPInstanceUID"),
            ("series_instance_uid", "SeriesInstanceUID"),
            ("study_instance_uid", "StudyInstanceUID"),
            ("sop_class_uid", "SOPClassUID"),
        )
        if getattr(ds, a, None)
    }


def _check_schema(doc: Mapping) -> str:
    if not isinstance(doc, Mapping):
        raise InputError("a result must be a JSON object (from `echosclero analyze --json` or `reflux --json`)")
    schema = doc.get("schema")
    if schema not in (ANALYSIS_SCHEMA, REFLUX_SCHEMA):
        raise InputError(
            f"result schema {schema!r} is neither {ANALYSIS_SCHEMA!r} (echosclero analyze --json) nor "
            f"{REFLUX_SCHEMA!r} (echosclero reflux --json)"
        )
    return "analysis" if schema == ANALYSIS_SCHEMA else "reflux"


def summarise_reflux(doc: Mapping) -> dict:
    """What the record keeps of a reflux document: times, peaks, the verdict and a thinned trace."""
    try:
        reflux_ms = float(doc["reflux_ms"]) if doc.get("reflux_ms") is not None else None
        trace = np.asarray(doc.get("trace") or [], dtype=float).reshape(-1, 2)
    except (TypeError, ValueError, KeyError) as exc:
        raise InputError(
            f"reflux document is malformed ({exc}); write it again with `echosclero reflux --json`"
        ) from None
    if len(trace) > TRACE_POINTS:
        trace = trace[np.linspace(0, len(trace) - 1, TRACE_POINTS).round().astype(int)]
    keep = ("peak_reflux_velocity_cm_s", "peak_antegrade_velocity_cm_s", "reflux_start_s", "reflux_end_s",
            "augmentation_start_s", "augmentation_end_s", "display")
    out = {"reflux_ms": reflux_ms, **{k: doc.get(k) for k in keep}}
    out["classification"] = doc.get("classification")
    out["trace"] = np.round(trace, 4).tolist()
    return out


def summarise_analysis(doc: Mapping) -> dict:
    """Alerts (first frame, count), vessels (median diameter, frames seen) and key frames of an analysis."""
    try:
        return _summarise_analysis(doc)
    except (AttributeError, TypeError, ValueError, KeyError) as exc:
        raise InputError(f"analysis document is malformed ({type(exc).__name__}: {exc}); write it again with "
                         "`echosclero analyze --json`") from None


def _summarise_analysis(doc: Mapping) -> dict:
    frames = doc.get("frames")
    if not isinstance(frames, list):
        raise InputError("analysis document has no 'frames' list; write it again with `echosclero analyze --json`")
    alerts: dict[str, dict] = {}
    vessels: dict[str, dict] = {}
    foam_best: dict[str, tuple[float, int, float]] = {}
    tip_frame = None
    for f in frames:
        try:
            idx, t_s = int(f["index"]), float(f["t_s"])
        except (KeyError, TypeError, ValueError):
            raise InputError("analysis document has a frame without index/t_s") from None
        for a in f.get("alerts") or []:
            code = str(a.get("code"))
            entry = alerts.setdefault(
                code,
                {"code": code, "severity": a.get("severity"), "message": a.get("message"), "first_index": idx,
                 "first_t_s": t_s, "frames": 0},
            )
            entry["frames"] += 1
        for v in f.get("vessels") or []:
            d = vessels.setdefault(str(v.get("id")), {"id": str(v.get("id")), "kinds": [], "d": [], "deep": []})
            d["kinds"].append(v.get("kind"))
            d["deep"].append(bool(v.get("deep")))
            if v.get("diameter_mm") is not None:
                d["d"].append(float(v["diameter_mm"]))
            if v.get("contains_needle_tip") and tip_frame is None:
                tip_frame = (idx, t_s, str(v.get("id")), v.get("kind"))
        for fo in f.get("foam") or []:
            vid, fill = str(fo.get("vessel_id")), float(fo.get("fill_fraction") or 0.0)
            if fill > foam_best.get(vid, (-1.0, 0, 0.0))[0]:
                foam_best[vid] = (fill, idx, t_s)
    vessel_out = []
    for d in vessels.values():
        kinds = [k for k in d["kinds"] if k]
        kind = max(set(kinds), key=kinds.count) if kinds else "unknown"
        vessel_out.append({
            "id": d["id"],
            "kind": kind,
            "deep": sum(d["deep"]) * 2 > len(d["deep"]),
            "frames": len(d["kinds"]),
            "median_diameter_mm": round(float(np.median(d["d"])), 2) if d["d"] else None,
        })
    key = [{"index": a["first_index"], "t_s": a["first_t_s"], "reason": f"alert {a['code']} raised"}
           for a in alerts.values()]
    key += [{"index": i, "t_s": t, "reason": f"foam in {vid}: {fill:.0%} of the lumen"}
            for vid, (fill, i, t) in foam_best.items()]
    if tip_frame is not None:
        key.append({"index": tip_frame[0], "t_s": tip_frame[1],
                    "reason": f"needle tip in {tip_frame[2]} ({tip_frame[3]})"})
    merged: dict[int, dict] = {}
    for k in key:  # one key frame per frame, its reasons joined
        if k["index"] in merged:
            merged[k["index"]]["reason"] += "; " + k["reason"]
        else:
            merged[k["index"]] = dict(k)
    key = sorted(merged.values(), key=lambda k: k["index"])
    return {
        "n_frames": len(frames),
        "calibration": doc.get("calibration"),
        "alerts": sorted(alerts.values(), key=lambda a: a["first_index"]),
        "vessels": sorted(vessel_out, key=lambda v: -v["frames"]),
        "key_frames": key[:MAX_KEY_FRAMES],
    }


def _ns(d):
    """A frame's JSON as attributes, for :func:`echosclero.render.draw_overlay`."""
    vessels = [
        SimpleNamespace(**{k: x for k, x in v.items() if k != "contour_mm"},
                        contour_mm=np.asarray(v["contour_mm"]) if v.get("contour_mm") else None)
        for v in d.get("vessels") or []
    ]
    for v in vessels:
        v.center_mm = tuple(v.center_mm)
    needle = d.get("needle")
    return SimpleNamespace(
        t_s=d["t_s"],
        vessels=vessels,
        needle=SimpleNamespace(**needle) if needle else None,
        foam=[SimpleNamespace(**f) for f in d.get("foam") or []],
        alerts=[SimpleNamespace(**a) for a in d.get("alerts") or []],
    )


def _key_frame_pngs(doc: Mapping, wanted: set[int], *, source: str, mm_per_px: float | None) -> dict[int, bytes]:
    """Overlay pictures of the wanted frames, drawn on the source read again (``{}`` when it cannot be)."""
    import cv2

    from echosclero.errors import EchoScleroError
    from echosclero.render import draw_overlay
    from echosclero.sources.open import open_source

    if not wanted or not source or source.startswith("igtl://"):
        return {}
    by_index = {int(f["index"]): f for f in doc["frames"]}
    out: dict[int, bytes] = {}
    try:
        with open_source(source, mm_per_px=mm_per_px) as src:
            for i, frame in enumerate(src.frames()):
                if i in wanted and i in by_index:
                    img = draw_overlay(frame, _ns(by_index[i]), scale=2 if frame.pixels.shape[1] < 400 else 1)
                    ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
                    if ok:
                        out[i] = buf.tobytes()
                if i >= max(wanted):
                    break
    except EchoScleroError:
        return out
    return out


def _pick_vessel(summary: dict, vessel: str | None) -> dict:
    vessels = summary["vessels"]
    if vessel is not None:
        for v in vessels:
            if v["id"] == vessel:
                return v
        raise InputError(f"vessel {vessel!r} is not in the analysis; vessels: {', '.join(v['id'] for v in vessels)}")
    veins = [v for v in vessels if v["kind"] == "vein" and not v["deep"] and v["median_diameter_mm"]]
    if not veins:
        raise InputError("the analysis found no superficial vein with a diameter; name one with --vessel ID")
    return veins[0]  # seen in the most frames


def attach_result(
    db: DbSession,
    doc: Mapping,
    *,
    exam_id: int | None = None,
    session_id: int | None = None,
    segment: str | None = None,
    leg: str | None = None,
    vessel: str | None = None,
    link: Mapping[str, str] | None = None,
    user_id: int | None = None,
    mm_per_px: float | None = None,
    key_frame_images: bool = True,
    read_files: bool = True,
) -> m.AttachedResult:
    """Attach one result document; the caller commits (with its audit entry).

    Parameters
    ----------
    doc
        An ``echosclero.analysis/1`` or ``echosclero.reflux/1`` document.
    exam_id, session_id
        Exactly one: where the result goes.
    segment, leg
        The vein segment the result measures (exams; a reflux document's own ``classification.segment`` is
        used when not given) and the leg (default: the exam's or the session's limb).
    vessel
        Analysis into an exam: the tracked vessel id whose diameter is taken (default: the superficial vein
        seen in the most frames).
    link
        UIDs of the source image (``sop_instance_uid``, ...); default: those of the received DICOM instance at
        the source's path, else read from the source file if it is one.
    read_files
        ``False`` for uploads (the API): the source is read again (UIDs, key frame pictures) only when it is
        an image the receiver stored or a ``sim:`` scenario, never another path named in the document.

    Raises
    ------
    InputError
        Wrong schema, unknown exam/session, missing segment, or a finding the vein map refuses.
    """
    kind = _check_schema(doc)
    if (exam_id is None) == (session_id is None):
        raise InputError("attach a result to exactly one of an exam (--exam ID) or a session (--session ID)")
    target = db.get(m.Exam, exam_id) if exam_id is not None else db.get(m.Session, session_id)
    if target is None:
        what = "exam" if exam_id is not None else "session"
        raise InputError(f"no {what} {exam_id if exam_id is not None else session_id} in the record")
    summary = summarise_reflux(doc) if kind == "reflux" else summarise_analysis(doc)
    source = str(doc.get("source") or "")
    received = db.scalars(select(m.DicomInstance).where(m.DicomInstance.path == source)).first() if source else None
    if link:
        link = dict(link)
    elif received is not None:
        link = {"sop_instance_uid": received.sop_instance_uid, "series_instance_uid": received.series_instance_uid,
                "study_instance_uid": received.study_instance_uid, "sop_class_uid": received.sop_class_uid}
    else:
        link = dicom_link(source) if read_files else {}
    readable = read_files or received is not None or source.startswith("sim:")
    if kind == "reflux" and segment is None:
        segment = (doc.get("classification") or {}).get("segment")
    side = leg or target.limb
    if isinstance(target, m.Exam):
        if not segment:
            raise InputError("which segment does this result measure? give --segment CODE (e.g. GSVa, SSV, SFJ)")
        vm = VeinMap.from_json(target.vein_map)
        if kind == "reflux":
            if summary["reflux_ms"] is None:
                raise InputError("the reflux document holds no reflux time (no reflux found): nothing to record")
            values = {"reflux_ms": round(summary["reflux_ms"], 1)}
        else:
            v = _pick_vessel(summary, vessel)
            values = {"diameter_mm": v["median_diameter_mm"]}
            summary["vessel"] = v["id"]
        note = f"from {kind} of {Path(source).name or source}"
        try:
            finding = vm.update(segment, side, **values)
        except InputError as exc:
            if "not mapped yet" not in str(exc):
                raise
            finding = vm.record(segment, side, note=note, **values)
        segment = finding.segment
        summary["finding"] = finding.to_json()
        target.vein_map = vm.to_json()  # a new object: the JSON column is written
    result = m.AttachedResult(
        patient_id=target.patient_id,
        exam_id=exam_id,
        session_id=session_id,
        kind=kind,
        leg=str(side) if side else None,
        segment=segment,
        source=source[:500],
        sop_instance_uid=link.get("sop_instance_uid"),
        series_instance_uid=link.get("series_instance_uid"),
        study_instance_uid=link.get("study_instance_uid"),
        sop_class_uid=link.get("sop_class_uid"),
        summary=summary,
        created_by=user_id,
    )
    db.add(result)
    db.flush()
    if kind == "analysis" and session_id is not None:
        wanted = {k["index"] for k in summary["key_frames"]}
        pngs = (_key_frame_pngs(doc, wanted, source=source, mm_per_px=mm_per_px)
                if key_frame_images and readable else {})
        for k in summary["key_frames"]:
            db.add(m.KeyFrame(result_id=result.id, frame_index=k["index"], t_s=k["t_s"], reason=k["reason"][:200],
                              png=pngs.get(k["index"])))
        db.flush()
    return result
