"""End to end: the simulator's SFJ reflux cine, written as US DICOM, measured by `echosclero reflux`."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

CLI = [sys.executable, "-m", "echosclero"]


@pytest.mark.parametrize("seed", [31, 32])
def test_reflux_of_the_simulated_cine_matches_its_truth(tmp_path, seed):
    out = tmp_path / "sim"
    res = subprocess.run([*CLI, "simulate", "sfj_reflux", "--out", str(out), "--seed", str(seed),
                          "--frame-rate-hz", "4"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    truth = json.loads((out / "truth.json").read_text())["reflux"]
    res = subprocess.run([*CLI, "reflux", str(out / "sfj_reflux.dcm"), "--json", str(tmp_path / "r.json"),
                          "--segment", "SFJ"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    got = json.loads((tmp_path / "r.json").read_text())
    assert got["schema"] == "echosclero.reflux/1"
    # 60 ms: the image-path tolerance of the reflux benchmark's p95
    assert abs(got["reflux_ms"] - truth["reflux_ms"]) <= 60.0, (got["reflux_ms"], truth["reflux_ms"])
    assert np.isclose(got["peak_antegrade_velocity_cm_s"], truth["peak_antegrade_velocity_cm_s"], rtol=0.15)
