"""``info`` and ``analyze`` refuse DICOM headers that no image can have (issue 16): one readable line naming the
attribute, exit code 2, no traceback, never raw bytes."""

from __future__ import annotations

import pytest
from pydicom import dcmread

from echosclero.cli import main


def _region(path, **values):
    ds = dcmread(path)
    for k, v in values.items():
        setattr(ds.SequenceOfUltrasoundRegions[0], k, v)
    ds.save_as(path)
    return path


CASES = [
    ({"FrameTime": "0"}, "FrameTime 0 ms is impossible"),
    ({"FrameTime": "-40"}, "FrameTime -40 ms is impossible"),
    ({"BitsStored": 0}, "BitsStored 0 is impossible"),
    ({"BitsStored": 65535}, "BitsStored 65535 is impossible"),
    ({"HighBit": 40}, "HighBit 40 is impossible"),
    ({"PixelRepresentation": 7}, "PixelRepresentation 7 is unknown"),
]


@pytest.mark.parametrize("command", ["info", "analyze"])
@pytest.mark.parametrize("changes,needle", CASES, ids=[c[1].split(" is")[0] for c in CASES])
def test_impossible_header_is_one_line(write_us, capsys, tmp_path, command, changes, needle):
    path = write_us(n=2, **changes)
    args = [command, str(path)] + (["--out", str(tmp_path / "out")] if command == "analyze" else [])
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and needle in err and "Traceback" not in err, err
    assert err.isprintable() and len(err) < 500


@pytest.mark.parametrize(
    "location", [(50, 0, 10, 59), (0, 40, 79, 10)], ids=["x-inverted", "y-inverted"]  # negative width / height
)
def test_impossible_region_is_refused(write_us, capsys, location):
    path = _region(
        write_us(),
        RegionLocationMinX0=location[0],
        RegionLocationMinY0=location[1],
        RegionLocationMaxX1=location[2],
        RegionLocationMaxY1=location[3],
    )
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "impossible location" in err and err.count("\n") == 0


def test_raw_bytes_are_not_printed():
    """A header value quoted in an error is short and printable, whatever it holds."""
    from echosclero.errors import one_line
    from echosclero.sources.dicom import _shown

    assert _shown(b"\x00\xff\xfe" * 400) == "1200 bytes of raw data"
    line = one_line("NumberOfFrames " + "\x00\xff\n" * 400)
    assert line.isprintable() and len(line) == 400 and "\n" not in line


def test_valid_header_still_reads(write_us, capsys):
    assert main(["info", str(write_us(n=2, BitsStored=8, HighBit=7, PixelRepresentation=0))]) == 0
