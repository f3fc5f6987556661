"""The per-file summary of an archive analysis: one row per input, as a table, CSV and Markdown.

A row says what the analysis of one file found, in counts a reviewer can scan down a whole archive:
frames analysed, distinct vessels by kind, frames with a needle, alerts by code, processing time per
frame, and the file's status with the reason when it is not ``ok``.

Counting rules
--------------
* **vessels by kind**: distinct tracked vessel ``id``s of the file; each id counts once, under the kind it
  was given in most of its frames (ties: the later kind).
* **needle frames**: frames whose ``needle`` is not null.
* **alerts by code**: number of frames raising each alert code.
* **ms per frame**: wall time of the file on its worker (open, decode, analyse) divided by its frames.
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = ["FileStatus", "FileSummary", "summarise_document", "summary_csv", "summary_markdown", "summary_table"]

FileStatus = Literal["ok", "partial", "failed", "cancelled"]
VESSEL_KINDS = ("vein", "artery", "unknown")


@dataclass(frozen=True, slots=True)
class FileSummary:
    """One row of the archive summary.

    Parameters
    ----------
    name
        The file's name relative to the archive folder.
    status
        ``"ok"`` (every frame analysed), ``"partial"`` (stopped half-way; the frames before are kept),
        ``"failed"`` (nothing analysed) or ``"cancelled"`` (the run was interrupted first).
    reason
        Why the status is not ``ok`` (one line), else ``""``.
    frames
        Frames analysed.
    vessels_by_kind
        Distinct vessels found, by kind (``vein``, ``artery``, ``unknown``).
    needle_frames
        Frames in which a needle was found.
    alerts_by_code
        Frames raising each alert code.
    ms_per_frame
        Wall time per frame on the worker, decoding included; ``None`` without frames.
    output
        Name of the per-file JSON written (relative to the output folder), or ``""``.
    """

    name: str
    status: FileStatus
    reason: str = ""
    frames: int = 0
    vessels_by_kind: dict[str, int] = field(default_factory=dict)
    needle_frames: int = 0
    alerts_by_code: dict[str, int] = field(default_factory=dict)
    ms_per_frame: float | None = None
    output: str = ""

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "frames": self.frames,
            "vessels_by_kind": dict(self.vessels_by_kind),
            "needle_frames": self.needle_frames,
            "alerts_by_code": dict(self.alerts_by_code),
            "ms_per_frame": None if self.ms_per_frame is None else round(self.ms_per_frame, 2),
            "output": self.output,
        }


def summarise_document(
    document: dict,
    *,
    name: str,
    elapsed_s: float,
    status: FileStatus = "ok",
    reason: str = "",
    output: str = "",
) -> FileSummary:
    """Count what an ``echosclero.analysis/1`` document holds (see the module's counting rules).

    Parameters
    ----------
    document
        One file's analysis (``frames`` as in ``docs/design.md``).
    name
        The file's name in the archive.
    elapsed_s
        Wall time the file took (seconds), for ``ms_per_frame``.
    status, reason, output
        Copied into the row.
    """
    frames = document.get("frames", [])
    kinds: dict[str, Counter] = {}
    needle_frames = 0
    alerts: Counter = Counter()
    for frame in frames:
        for vessel in frame.get("vessels", []):
            kinds.setdefault(vessel["id"], Counter())[vessel.get("kind", "unknown")] += 1
        if frame.get("needle") is not None:
            needle_frames += 1
        alerts.update({a["code"] for a in frame.get("alerts", [])})
    by_kind = dict.fromkeys(VESSEL_KINDS, 0)
    for counts in kinds.values():
        top = max(counts.values())
        kind = [k for k, c in counts.items() if c == top][-1]
        by_kind[kind] = by_kind.get(kind, 0) + 1
    return FileSummary(
        name=name,
        status=status,
        reason=reason,
        frames=len(frames),
        vessels_by_kind=by_kind,
        needle_frames=needle_frames,
        alerts_by_code=dict(sorted(alerts.items())),
        ms_per_frame=(elapsed_s * 1e3 / len(frames)) if frames else None,
        output=output,
    )


def _alert_codes(rows: list[FileSummary]) -> list[str]:
    return sorted({code for row in rows for code in row.alerts_by_code})


def _alerts_text(row: FileSummary) -> str:
    return " ".join(f"{code}x{n}" for code, n in row.alerts_by_code.items()) or "-"


def _ms_text(row: FileSummary) -> str:
    return "-" if row.ms_per_frame is None else f"{row.ms_per_frame:.1f}"


def summary_csv(rows: list[FileSummary], path: str | os.PathLike | None = None) -> str:
    """The summary as CSV: fixed columns, then one ``alerts_<CODE>`` column per alert code seen.

    Returns the text, and writes it to ``path`` when given.
    """
    codes = _alert_codes(rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["name", "status", "frames", *(f"vessels_{k}" for k in VESSEL_KINDS), "needle_frames", "ms_per_frame",
         *(f"alerts_{c}" for c in codes), "reason", "output"]
    )
    for row in rows:
        writer.writerow(
            [row.name, row.status, row.frames, *(row.vessels_by_kind.get(k, 0) for k in VESSEL_KINDS),
             row.needle_frames, "" if row.ms_per_frame is None else f"{row.ms_per_frame:.2f}",
             *(row.alerts_by_code.get(c, 0) for c in codes), row.reason, row.output]
        )
    text = out.getvalue()
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def _cells(row: FileSummary) -> list[str]:
    v = row.vessels_by_kind
    return [row.name, row.status, str(row.frames), str(v.get("vein", 0)), str(v.get("artery", 0)),
            str(v.get("unknown", 0)), str(row.needle_frames), _alerts_text(row), _ms_text(row), row.reason]


_HEADERS = ["file", "status", "frames", "veins", "arteries", "unknown", "needle frames", "alerts (frames)",
            "ms/frame", "reason"]


def summary_markdown(rows: list[FileSummary], *, title: str | None = None) -> str:
    """The summary as a Markdown table (``|`` in cells escaped)."""
    lines = [f"# {title}", ""] if title else []
    lines.append("| " + " | ".join(_HEADERS) + " |")
    lines.append("| " + " | ".join(["---", "---"] + ["---:"] * 5 + ["---", "---:", "---"]) + " |")
    for row in rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in _cells(row)) + " |")
    return "\n".join(lines) + "\n"


def summary_table(rows: list[FileSummary], *, max_reason_chars: int = 80) -> str:
    """The summary as a fixed-width text table for a terminal."""
    table = [_HEADERS] + [_cells(row) for row in rows]
    for cells in table[1:]:
        if len(cells[-1]) > max_reason_chars:
            cells[-1] = cells[-1][: max_reason_chars - 3] + "..."
    widths = [max(len(cells[i]) for cells in table) for i in range(len(_HEADERS))]
    right = {2, 3, 4, 5, 6, 8}
    lines = []
    for cells in table:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)
