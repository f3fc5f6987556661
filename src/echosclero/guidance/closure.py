"""Closure of a vein: is its lumen occluded (treated, or thrombosed), from the evidence gathered on its track?

A vein is closed when it is no longer anechoic — its lumen holds echogenic sclerosant foam or thrombus — or no
longer compressible under the probe (the compression criterion of Lensing et al., N Engl J Med 1989;320:342).
A vein seen anechoic, or seen to collapse under the probe, is open. Spasm (the diameter lost against the
pre-injection baseline) goes with a closing vein and is listed as evidence, but does not decide alone: a vein in
spasm with blood still flowing in it is not closed. Arteries are not judged (``None``), nor is a vessel tracked
too briefly to say.

The decision is made on every frame from the state of the vessel's track; the last frame of a session holds the
session's answer (``"closed"`` and ``"closed_evidence"`` of each vessel in the ``echosclero.analysis/1`` JSON).
"""

from __future__ import annotations

from echosclero.guidance.tracking import Track

__all__ = ["CLOSED_FILL", "MIN_TRACKED_S", "closure"]

#: Foam over this fraction of the lumen: the vein is no longer anechoic (a lumen filled with sclerosant).
CLOSED_FILL = 0.8
#: Below this fill (and not echogenic) a vein seen now is anechoic: open.
OPEN_FILL = 0.2
#: Share of the free-lumen frames found echogenic by the wall-ring detector above which the lumen holds thrombus,
#: over at least THROMBUS_MIN_FRAMES frames (one echogenic frame is speckle).
THROMBUS_SHARE = 0.5
THROMBUS_MIN_FRAMES = 5
#: Compressibility (area lost under the probe) below which a vein does not compress (the NONCOMPRESSIBLE_VEIN rule).
NONCOMPRESSIBLE_MAX = 0.5
#: Spasm (relative diameter loss) worth listing as evidence of a closing vein.
SPASM_EVIDENCE = 0.15
#: A vessel tracked for less than this (s) is not judged.
MIN_TRACKED_S = 1.0


def closure(tr: Track, t_s: float) -> tuple[bool | None, tuple[str, ...]]:
    """``(closed, evidence)`` for one tracked vessel at time ``t_s``: True (occluded), False (open) or None
    (an artery, a vessel too briefly seen, or no evidence either way), with the findings that decided it."""
    if tr.kind_state.kind == "artery" or t_s - tr.t_first < MIN_TRACKED_S:
        return None, ()
    closed: list[str] = []
    open_: list[str] = []
    if tr.foam_fill >= CLOSED_FILL:
        closed.append(f"lumen filled with echogenic foam ({min(1.0, tr.foam_fill):.2f})")
    n_echo = tr.kind_state.echogenic_frames + tr.kind_state.clear_frames
    if n_echo >= THROMBUS_MIN_FRAMES and tr.kind_state.echogenic_frames >= THROMBUS_SHARE * n_echo:
        closed.append(f"lumen echogenic, thrombus ({tr.kind_state.echogenic_frames}/{n_echo} frames)")
    if tr.compression.max_compressibility is not None:
        if tr.compression.max_compressibility < NONCOMPRESSIBLE_MAX:
            closed.append(f"does not compress ({tr.compression.max_compressibility:.2f} of its area)")
        else:
            open_.append(f"compresses ({tr.compression.max_compressibility:.2f} of its area)")
    if closed:
        if tr.spasm_now is not None and tr.spasm_now >= SPASM_EVIDENCE:
            closed.append(f"in spasm ({tr.spasm_now:.2f} of its diameter)")
        return True, tuple(closed)
    if tr.seen_now and tr.foam_fill < OPEN_FILL and not tr.lumen.echogenic:
        open_.append("lumen anechoic")
    if open_:
        return False, tuple(open_)
    return None, ()
