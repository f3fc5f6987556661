"""``echosclero analyze`` end to end on the simulator."""

from __future__ import annotations

import json

from echosclero.cli import main


def test_analyze_sim_json_and_video(tmp_path, capsys):
    out = tmp_path / "a.json"
    vid = tmp_path / "a.mp4"
    rc = main(["analyze", "sim:gsv_injection", "--max-frames", "6", "--json", str(out), "--video", str(vid)])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc["schema"] == "echosclero.analysis/1"
    assert doc["source"] == "sim:gsv_injection"
    assert doc["calibration"]["mm_per_px_x"] > 0
    assert len(doc["frames"]) == 6
    assert [f["index"] for f in doc["frames"]] == list(range(6))
    assert vid.stat().st_size > 1000


def test_analyze_missing_file_one_line(tmp_path, capsys):
    rc = main(["analyze", str(tmp_path / "nope.dcm")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "no such file" in err


def test_analyze_unknown_scenario(capsys):
    rc = main(["analyze", "sim:gsv_injektion"])
    err = capsys.readouterr().err
    assert rc == 2 and "gsv_injection" in err
