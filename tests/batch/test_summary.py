"""Counting rules of the archive summary, on literal documents."""

from __future__ import annotations

import csv
import io

from echosclero.batch.summary import FileSummary, summarise_document, summary_csv, summary_markdown, summary_table


def _frame(vessels=(), needle=False, alerts=()):
    return {
        "index": 0,
        "t_s": 0.0,
        "vessels": [{"id": vid, "kind": kind} for vid, kind in vessels],
        "needle": {"tip_mm": [1, 2]} if needle else None,
        "foam": [],
        "alerts": [{"code": c, "severity": "warning", "message": c} for c in alerts],
    }


DOC = {
    "schema": "echosclero.analysis/1",
    "frames": [
        _frame([("v1", "unknown"), ("v2", "artery")], needle=True, alerts=["TIP_IN_ARTERY", "TIP_IN_ARTERY"]),
        _frame([("v1", "vein"), ("v2", "artery")], alerts=["TIP_IN_ARTERY"]),
        _frame([("v1", "vein"), ("v3", "vein")], needle=True, alerts=["FOAM_IN_DEEP_VEIN"]),
        _frame([("v4", "vein"), ("v4", "artery")][1:]),  # v4 seen once, as an artery
    ],
}


def test_vessels_by_majority_kind_needle_frames_and_alert_frames():
    row = summarise_document(DOC, name="a.dcm", elapsed_s=0.2)
    assert row.frames == 4
    # v1: vein twice, unknown once -> vein; v2 artery; v3 vein; v4 artery
    assert row.vessels_by_kind == {"vein": 2, "artery": 2, "unknown": 0}
    assert row.needle_frames == 2
    # an alert raised twice in one frame counts once for that frame
    assert row.alerts_by_code == {"FOAM_IN_DEEP_VEIN": 1, "TIP_IN_ARTERY": 2}
    assert row.ms_per_frame == 50.0


def test_empty_document_has_no_time_per_frame():
    row = summarise_document({"frames": []}, name="x", elapsed_s=1.0)
    assert row.frames == 0 and row.ms_per_frame is None


def test_csv_has_one_column_per_alert_code_and_the_reason():
    rows = [
        summarise_document(DOC, name="a.dcm", elapsed_s=0.2, output="a.json"),
        FileSummary(name="b.dcm", status="failed", reason='truncated, "really"'),
    ]
    text = summary_csv(rows)
    table = list(csv.DictReader(io.StringIO(text)))
    assert [r["name"] for r in table] == ["a.dcm", "b.dcm"]
    assert table[0]["alerts_TIP_IN_ARTERY"] == "2" and table[1]["alerts_TIP_IN_ARTERY"] == "0"
    assert table[0]["vessels_vein"] == "2" and table[0]["output"] == "a.json"
    assert table[1]["status"] == "failed" and table[1]["reason"] == 'truncated, "really"'
    assert table[1]["ms_per_frame"] == ""


def test_markdown_and_text_tables():
    rows = [summarise_document(DOC, name="a|b.dcm", elapsed_s=0.2),
            FileSummary(name="c.dcm", status="failed", reason="x" * 200)]
    md = summary_markdown(rows, title="t")
    assert md.startswith("# t\n") and "a\\|b.dcm" in md and md.count("\n|") == 4
    text = summary_table(rows, max_reason_chars=40)
    lines = text.splitlines()
    assert len(lines) == 3 and lines[2].endswith("...") and len(lines[2]) < 200
    assert "TIP_IN_ARTERYx2" in lines[1]
