"""Alert rules: pure functions from the frame's findings (and a little tracked context) to coded alerts.

Codes and severities (issue #3):

=========================  =========  ====================================================================
code                       severity   raised when
=========================  =========  ====================================================================
``TIP_IN_ARTERY``          critical   the needle tip lies in the lumen of a vessel classified as artery,
                                      clear of its wall (a tip found on the wall is not in the lumen)
``TIP_IN_UNCLASSIFIED``    warning    the tip lies in a vessel not yet classified (artery not excluded)
``TIP_OUTSIDE_TARGET``     warning    foam is appearing (growing) while the tip, in view, is in no vein
``FOAM_IN_DEEP_VEIN``      critical   foam in a deep vein (below the deep fascia)
``NONCOMPRESSIBLE_VEIN``   warning    under probe compression a vein keeps >= half its area (possible
                                      thrombus; compression ultrasound, Lensing et al. NEJM 1989;320:342)
``NEEDLE_LOST``            warning    a tracked needle has not been seen for longer than the hold time
``FRAME_UNUSABLE``         info       the frame cannot be analysed (all black, saturated, featureless)
=========================  =========  ====================================================================
"""

from __future__ import annotations

from echosclero.guidance.findings import Alert, FoamFinding, NeedleFinding, VesselFinding

__all__ = ["NONCOMPRESSIBLE_MAX", "evaluate_alerts"]

#: A vein that loses less than half its area under compression is flagged (DVT compression criterion).
NONCOMPRESSIBLE_MAX = 0.5


def evaluate_alerts(vessels: tuple[VesselFinding, ...], needle: NeedleFinding | None,
                    foam: tuple[FoamFinding, ...], *, foam_growing: set[str], needle_lost: bool,
                    compressed: bool) -> tuple[Alert, ...]:
    """Alerts for one frame.

    Parameters
    ----------
    foam_growing
        Ids of vessels whose foam fill is increasing (sclerosant being injected now).
    needle_lost
        The needle tracker has just lost the needle.
    compressed
        The probe is compressing the tissue near the peak of a manoeuvre.
    """
    alerts: list[Alert] = []
    by_id = {v.id: v for v in vessels}
    tip_vessels = [v for v in vessels if v.contains_needle_tip] if needle is not None else []
    for v in tip_vessels:
        if v.kind == "artery" and v.tip_in_lumen:
            alerts.append(Alert("TIP_IN_ARTERY", "critical", f"needle tip inside artery {v.id}: do not inject",
                                v.id))
        elif v.kind == "unknown" and v.artery_probability >= 0.3:  # (at its wall too: confirm before going on)
            alerts.append(Alert("TIP_IN_UNCLASSIFIED", "warning",
                                f"needle tip inside vessel {v.id}, not yet classified: confirm it is a vein "
                                "(colour Doppler, compression) before injecting", v.id))
    if foam_growing and needle is not None and not any(v.kind == "vein" for v in tip_vessels):
        # (with no needle in view nobody can tell where its tip is: foam spreading from an injection out of the
        # plane raises nothing; NEEDLE_LOST has said the needle went)
        alerts.append(Alert("TIP_OUTSIDE_TARGET", "warning",
                            "sclerosant appearing while the needle tip is outside the target vein"))
    for f in foam:
        v = by_id.get(f.vessel_id)
        if v is not None and v.deep and v.kind != "artery" and f.fill_fraction > 0:
            alerts.append(Alert("FOAM_IN_DEEP_VEIN", "critical",
                                f"foam entering deep vein {v.id}: stop injecting, compress the junction", v.id))
    if compressed:
        for v in vessels:
            if v.kind == "vein" and v.compressibility is not None and v.compressibility < NONCOMPRESSIBLE_MAX:
                alerts.append(Alert("NONCOMPRESSIBLE_VEIN", "warning",
                                    f"vein {v.id} does not compress: possible thrombus", v.id))
    if needle_lost:
        alerts.append(Alert("NEEDLE_LOST", "warning", "needle no longer visible: re-align the probe with the shaft"))
    return tuple(alerts)
