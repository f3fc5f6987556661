"""Leg diagram of a vein map: anterior and posterior views of both legs, segments coloured by finding.

It reproduces the schematic map clinics draw by hand after a duplex exam: superficial veins as solid
lines, deep veins dashed, perforators and junctions as dots, each coloured by its finding (incompetent
red, competent blue, occluded black, thrombosed purple, treated green, indeterminate orange, not examined
grey) and annotated with diameter and reflux time. The geometry is schematic (not to scale).

Views follow the clinical convention: in the anterior view the patient's right leg is on the viewer's
left; in the posterior view the patient's left leg is on the viewer's left. Leg-local coordinates are
``u`` (0 medial edge, 1 lateral edge) and ``v`` (0 groin, 1 ankle).
"""

from __future__ import annotations

import os
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from echosclero.mapping.model import Leg, SegmentFinding, Status, VeinMap

__all__ = ["STATUS_COLOURS", "leg_diagram_svg", "write_leg_diagram"]

STATUS_COLOURS: dict[Status, str] = {
    Status.INCOMPETENT: "#d62728",
    Status.COMPETENT: "#1f77b4",
    Status.OCCLUDED: "#222222",
    Status.THROMBOSED: "#9467bd",
    Status.TREATED: "#2ca02c",
    Status.INDETERMINATE: "#ff7f0e",
    Status.NOT_EXAMINED: "#c8c8c8",
}

# (view, kind, points (u, v)); kind: "line" superficial, "deep" dashed, "dot" junction/perforator/cluster
_GEOMETRY: dict[str, tuple[str, str, tuple[tuple[float, float], ...]]] = {
    "CFV": ("anterior", "deep", ((0.45, 0.0), (0.45, 0.07))),
    "FV": ("anterior", "deep", ((0.45, 0.07), (0.42, 0.25), (0.38, 0.42))),
    "DFV": ("anterior", "deep", ((0.47, 0.07), (0.58, 0.18), (0.62, 0.3))),
    "ATV": ("anterior", "deep", ((0.72, 0.52), (0.68, 0.72), (0.6, 0.92))),
    "SFJ": ("anterior", "dot", ((0.33, 0.05),)),
    "GSV": ("anterior", "line", ((0.33, 0.05), (0.2, 0.25), (0.12, 0.46), (0.15, 0.7), (0.26, 0.96))),
    "GSVa": ("anterior", "line", ((0.33, 0.05), (0.2, 0.25), (0.12, 0.46))),
    "GSVb": ("anterior", "line", ((0.12, 0.47), (0.15, 0.7), (0.26, 0.96))),
    "AASV": ("anterior", "line", ((0.35, 0.07), (0.47, 0.22), (0.52, 0.38))),
    "TRIB_THIGH": ("anterior", "line", ((0.22, 0.25), (0.36, 0.3), (0.33, 0.4))),
    "TRIB_CALF": ("anterior", "line", ((0.16, 0.6), (0.34, 0.66), (0.3, 0.78))),
    "RECURRENT": ("anterior", "line", ((0.3, 0.07), (0.38, 0.12), (0.34, 0.18))),
    "TPV": ("anterior", "dot", ((0.17, 0.33),)),
    "KPV": ("anterior", "dot", ((0.11, 0.5),)),
    "CPV": ("anterior", "dot", ((0.14, 0.76),)),
    "APV": ("anterior", "dot", ((0.2, 0.9),)),
    "RETICULAR": ("anterior", "dot", ((0.85, 0.3),)),
    "TEL": ("anterior", "dot", ((0.85, 0.62),)),
    "SPJ": ("posterior", "dot", ((0.5, 0.45),)),
    "SSV": ("posterior", "line", ((0.5, 0.45), (0.5, 0.7), (0.68, 0.95))),
    "GIAC": ("posterior", "line", ((0.5, 0.44), (0.4, 0.3), (0.25, 0.14))),
    "PASV": ("posterior", "line", ((0.18, 0.08), (0.2, 0.22), (0.24, 0.36))),
    "POPV": ("posterior", "deep", ((0.46, 0.38), (0.5, 0.53))),
    "GAV": ("posterior", "deep", ((0.38, 0.5), (0.36, 0.62))),
    "SOV": ("posterior", "deep", ((0.58, 0.55), (0.58, 0.7))),
    "PTV": ("posterior", "deep", ((0.36, 0.55), (0.3, 0.75), (0.22, 0.93))),
    "PRV": ("posterior", "deep", ((0.62, 0.56), (0.64, 0.75), (0.62, 0.92))),
}

_LEG_W, _LEG_H, _GAP, _TOP, _LEFT = 170.0, 460.0, 40.0, 60.0, 30.0


def _half_width(v: np.ndarray) -> np.ndarray:
    """Schematic leg half-width (thigh, knee, calf bulge, ankle) as a fraction of the column width."""
    vs = np.array([0.0, 0.25, 0.45, 0.52, 0.62, 0.85, 1.0])
    ws = np.array([0.5, 0.42, 0.3, 0.32, 0.34, 0.2, 0.18])
    return np.interp(v, vs, ws)


def _slots() -> dict[tuple[str, Leg], float]:
    """Left x of each (view, leg) column: anterior R, L | posterior L, R."""
    step = _LEG_W + _GAP
    x0 = _LEFT
    return {
        ("anterior", Leg.RIGHT): x0,
        ("anterior", Leg.LEFT): x0 + step,
        ("posterior", Leg.LEFT): x0 + 2 * step + _GAP,
        ("posterior", Leg.RIGHT): x0 + 3 * step + _GAP,
    }


def _medial_on_right(view: str, leg: Leg) -> bool:
    # the medial side faces the midline between the two legs of a view
    return (view, leg) in (("anterior", Leg.RIGHT), ("posterior", Leg.LEFT))


def _to_xy(view: str, leg: Leg, uv: np.ndarray) -> np.ndarray:
    uv = np.atleast_2d(np.asarray(uv, dtype=float))
    x_left = _slots()[(view, leg)]
    centre = x_left + _LEG_W / 2
    hw = _half_width(uv[:, 1]) * _LEG_W
    # u = 0 at the medial edge, 1 at the lateral edge
    s = (uv[:, 0] - 0.5) * 2 * hw  # signed offset, + towards lateral
    x = centre - s if _medial_on_right(view, leg) else centre + s
    y = _TOP + uv[:, 1] * _LEG_H
    return np.c_[x, y]


def _outline(view: str, leg: Leg) -> np.ndarray:
    v = np.linspace(0, 1, 40)
    left = _to_xy(view, leg, np.c_[np.zeros_like(v), v])
    right = _to_xy(view, leg, np.c_[np.ones_like(v), v])
    return np.vstack([left, right[::-1]])


def _finding_label(f: SegmentFinding) -> str:
    parts = [f.segment + (f" {f.label}" if f.label else "")]
    if f.diameter_mm is not None:
        parts.append(f"{f.diameter_mm:.1f} mm")
    if f.reflux_ms is not None:
        parts.append(f"{f.reflux_ms:.0f} ms")
    for flag, text in ((f.occluded, "occluded"), (f.thrombosed, "thrombus"), (f.previously_treated, "treated")):
        if flag:
            parts.append(text)
    return " ".join(parts)


def _items(vein_map: VeinMap):
    """(view, leg, kind, xy points, colour, width, label, segment code) for every drawable element, background
    first."""
    items = []
    mapped = {(f.leg, f.segment) for f in vein_map.findings}
    for leg in (Leg.RIGHT, Leg.LEFT):
        for code, (view, kind, pts) in _GEOMETRY.items():
            if code == "GSV" or (leg, code) in mapped:
                continue  # the whole-GSV path is only drawn when mapped as such
            items.append((view, leg, kind, _to_xy(view, leg, pts), STATUS_COLOURS[Status.NOT_EXAMINED], 1.5, "", code))
    counts: dict[tuple[Leg, str], int] = {}
    for f in vein_map.findings:
        geom = _GEOMETRY.get(f.segment)
        if geom is None:
            continue
        view, kind, pts = geom
        k = counts.get((f.leg, f.segment), 0)
        counts[(f.leg, f.segment)] = k + 1
        uv = np.asarray(pts, dtype=float) + np.array([0.0, 0.05 * k])  # several labelled perforators
        items.append((view, f.leg, kind, _to_xy(view, f.leg, uv), STATUS_COLOURS[f.status], 4.0,
                      _finding_label(f), f.segment))
    return items


def _label_anchor(kind: str, xy: np.ndarray) -> tuple[float, float]:
    """Deep veins are labelled at their lower end, superficial lines at their middle (fewer overlaps)."""
    x, y = xy[-1] if kind == "deep" else xy[len(xy) // 2]
    return float(x), float(y)


def _size() -> tuple[float, float]:
    return _LEFT * 2 + 4 * _LEG_W + 4 * _GAP, _TOP + _LEG_H + 90


def leg_diagram_svg(vein_map: VeinMap, *, title: str = "Duplex vein map", interactive: bool = False) -> str:
    """The diagram as an SVG document (text).

    ``interactive=True`` wraps each segment in a focusable ``<g class="seg" data-segment data-leg>`` with an
    accessible name and a wider invisible hit line, for the workstation's mapping page to click.
    """
    width, height = _size()
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif">',
           f'<rect width="{width:.0f}" height="{height:.0f}" fill="white"/>',
           f'<text x="{width / 2:.0f}" y="22" font-size="16" text-anchor="middle">{escape(title)}</text>']
    for (view, leg), x in _slots().items():
        poly = " ".join(f"{a:.1f},{b:.1f}" for a, b in _outline(view, leg))
        out.append(f'<polygon points="{poly}" fill="#f6efe8" stroke="#8c7b6b" stroke-width="1.2"/>')
        out.append(f'<text x="{x + _LEG_W / 2:.0f}" y="{_TOP - 12:.0f}" font-size="12" text-anchor="middle">'
                   f'{view} - {leg.value}</text>')
    for _view, leg, kind, xy, colour, w, label, code in _items(vein_map):
        if interactive:
            name = escape(f"{leg.value} {code}" + (f": {label}" if label else ": not examined"), {'"': "&quot;"})
            out.append(f'<g class="seg" data-segment="{code}" data-leg="{leg.value}" tabindex="0" role="button" '
                       f'aria-label="{name}">')
            if kind != "dot":
                pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in xy)
                out.append(f'<polyline points="{pts}" fill="none" stroke="transparent" stroke-width="14"/>')
        if kind == "dot":
            cx, cy = xy[0]
            out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{w + 1.5:.1f}" fill="{colour}"/>')
        else:
            pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in xy)
            dash = ' stroke-dasharray="6,4"' if kind == "deep" else ""
            out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="{w:.1f}" '
                       f'stroke-linecap="round"{dash}/>')
        if label:
            lx, ly = _label_anchor(kind, xy)
            out.append(f'<text x="{lx + 6:.1f}" y="{ly - 4:.1f}" font-size="9" fill="{colour}">'
                       f'{escape(label)}</text>')
        if interactive:
            out.append("</g>")
    y = _TOP + _LEG_H + 30
    x = _LEFT
    for status, colour in STATUS_COLOURS.items():
        out.append(f'<rect x="{x:.0f}" y="{y - 9:.0f}" width="14" height="10" fill="{colour}"/>')
        out.append(f'<text x="{x + 18:.0f}" y="{y:.0f}" font-size="11">{status.value}</text>')
        x += 110
    out.append(f'<text x="{_LEFT:.0f}" y="{y + 24:.0f}" font-size="10">solid: superficial; dashed: deep; '
               'dots: junctions, perforators, clusters. Schematic, not to scale.</text>')
    out.append("</svg>")
    return "\n".join(out)


def write_leg_diagram(path: str | os.PathLike, vein_map: VeinMap, *, title: str = "Duplex vein map") -> Path:
    """Write the diagram as SVG (``.svg``) or PNG (``.png``, drawn with matplotlib from the same geometry)."""
    from echosclero.errors import InputError

    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in (".svg", ".png"):
        raise InputError(f"leg diagram file {out.name!r} must end in .svg or .png")
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".svg":
        out.write_text(leg_diagram_svg(vein_map, title=title))
        return out
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    width, height = _size()
    fig = plt.figure(figsize=(width / 100, height / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    try:
        ax.text(width / 2, 22, title, ha="center", va="center", fontsize=13)
        for (view, leg), x in _slots().items():
            ax.add_patch(Polygon(_outline(view, leg), closed=True, facecolor="#f6efe8", edgecolor="#8c7b6b"))
            ax.text(x + _LEG_W / 2, _TOP - 12, f"{view} - {leg.value}", ha="center", fontsize=9)
        for _view, _leg, kind, xy, colour, w, label, _code in _items(vein_map):
            if kind == "dot":
                ax.plot(xy[:, 0], xy[:, 1], "o", color=colour, markersize=w + 2)
            else:
                ax.plot(xy[:, 0], xy[:, 1], color=colour, lw=w * 0.8, ls="--" if kind == "deep" else "-",
                        solid_capstyle="round")
            if label:
                lx, ly = _label_anchor(kind, xy)
                ax.text(lx + 6, ly - 4, label, color=colour, fontsize=6.5)
        y = _TOP + _LEG_H + 30
        x = _LEFT
        for status, colour in STATUS_COLOURS.items():
            ax.add_patch(Polygon([(x, y - 9), (x + 14, y - 9), (x + 14, y + 1), (x, y + 1)], color=colour))
            ax.text(x + 18, y, status.value, fontsize=8, va="bottom")
            x += 110
        fig.savefig(out, dpi=100)
    finally:
        plt.close(fig)
    return out
