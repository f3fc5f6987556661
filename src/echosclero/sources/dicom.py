"""DICOM ultrasound source: single- and multi-frame US images, calibrated by their ultrasound regions.

What it reads
-------------
* US Image Storage, US Multi-frame Image Storage (and their retired forms), and secondary captures that
  carry a Sequence of Ultrasound Regions (or for which the user gives ``--mm-per-px``).
* Photometric interpretations MONOCHROME1/2, RGB, YBR_FULL, YBR_FULL_422, YBR_RCT/ICT (converted to
  RGB) and PALETTE COLOR (rendered to 8-bit RGB through the file's lookup table).
* Native and compressed pixel data (JPEG baseline, JPEG 2000, RLE, ...) through pydicom's decoders and
  the pylibjpeg plugins. Frames are decoded one at a time, when asked for.

Calibration (DICOM PS3.3 C.8.5.5, Sequence of Ultrasound Regions)
-----------------------------------------------------------------
* The imaging region is the largest 2-D tissue region (``RegionDataType`` 1) with physical units in cm
  (``PhysicalUnitsX/YDirection`` code 3) — the first one on a tie (e.g. ALOKA dual view). Without one,
  the largest calibrated 2-D colour-flow region is used. Its ``PhysicalDeltaX/Y`` (cm) become
  millimetres per pixel and the frames are cropped to it.
* A spectral region (``RegionDataType`` 3 PW or 4 CW) with X in seconds (code 4) and Y in cm/s (code 7)
  becomes a :class:`~echosclero.frames.SpectralCalibration`: ``s_per_px = PhysicalDeltaX``,
  ``cm_s_per_px = PhysicalDeltaY`` (vendor sign kept), ``baseline_row = ReferencePixelY0`` (relative to
  the region's top-left corner).
* A file without usable calibration is read only with a user pitch (``mm_per_px``); otherwise
  :meth:`DicomSource.frames` raises :class:`~echosclero.errors.CalibrationMissingError` — while
  :meth:`DicomSource.info` still reports the file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from echosclero.errors import CalibrationMissingError, InputError, one_line
from echosclero.frames import Calibration, Frame, SpectralCalibration
from echosclero.sources.base import RegionInfo, Source, SourceInfo, check_mm_per_px

__all__ = [
    "DicomSource",
    "NotDicomError",
    "has_dicom_preamble",
    "parse_us_regions",
]

#: SOP classes of ultrasound images (PS3.4 B.5), including the retired ones old scanners still write.
US_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.6.1": "US Image Storage",
    "1.2.840.10008.5.1.4.1.1.3.1": "US Multi-frame Image Storage",
    "1.2.840.10008.5.1.4.1.1.6": "US Image Storage (retired)",
    "1.2.840.10008.5.1.4.1.1.3": "US Multi-frame Image Storage (retired)",
}
#: Prefix of the secondary capture SOP classes (single- and multi-frame, PS3.4 B.5).
SC_SOP_PREFIX = "1.2.840.10008.5.1.4.1.1.7"

#: RegionDataType (0018,6014), PS3.3 C.8.5.5.1.2.
REGION_DATA_TYPES = {
    0x0: "none",
    0x1: "tissue",
    0x2: "color flow",
    0x3: "PW spectral Doppler",
    0x4: "CW spectral Doppler",
    0x5: "Doppler mean trace",
    0x6: "Doppler mode trace",
    0x7: "Doppler max trace",
    0x8: "volume trace",
    0x9: "reserved",
    0xA: "ECG trace",
    0xB: "pulse trace",
    0xC: "phonocardiogram trace",
    0xD: "gray bar",
    0xE: "color bar",
    0xF: "integrated backscatter",
    0x10: "area trace",
    0x11: "d(area)/dt",
    0x12: "other physiological input",
}
_KIND_OF_DATA_TYPE = {0x1: "tissue", 0x2: "color", 0x3: "PW", 0x4: "CW"}

#: RegionSpatialFormat (0018,6012), PS3.3 C.8.5.5.1.1.
SPATIAL_FORMAT_2D = 1
#: PhysicalUnitsX/YDirection (0018,6024/6026), PS3.3 C.8.5.5.1.15.
UNITS_CM = 3
UNITS_SECONDS = 4
UNITS_CM_PER_S = 7
MM_PER_CM = 10.0

_SUPPORTED_PHOTOMETRIC = {
    "MONOCHROME1": 1,
    "MONOCHROME2": 1,
    "PALETTE COLOR": 1,
    "RGB": 3,
    "YBR_FULL": 3,
    "YBR_FULL_422": 3,
    "YBR_RCT": 3,
    "YBR_ICT": 3,
    "YBR_PARTIAL_420": 3,
}

UNCALIBRATED_NOTE = "uncalibrated (no ultrasound regions; pass --mm-per-px to analyse)"


def has_dicom_preamble(path: str | os.PathLike) -> bool:
    """``True`` when the file has the 128-byte preamble followed by ``DICM`` (PS3.10 7.1)."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return one_line(text[0], limit=200) if text else type(exc).__name__


def _shown(value) -> str:
    """A header value as a short printable text (never raw bytes)."""
    if isinstance(value, bytes):
        return f"{len(value)} bytes of raw data"
    return one_line(repr(value), limit=60)


class NotDicomError(InputError):
    """A file that is not DICOM at all (as opposed to a damaged or unsuitable DICOM file)."""


def _read_dataset(path: Path):
    """Read a DICOM file, refusing with one clear line what is not (complete) DICOM."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    if not path.exists():
        raise InputError(f"no such file: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a DICOM file")
    if path.stat().st_size == 0:
        raise NotDicomError(f"{path}: empty file, not DICOM")
    preamble = has_dicom_preamble(path)
    with _quiet_pydicom() as caught:
        try:
            # Without a preamble (old files start with the dataset itself) accept the file only if it
            # really parses into an image dataset (checked below).
            ds = dcmread(path, force=not preamble)
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
        except Exception as exc:  # noqa: BLE001 - pydicom raises many types on garbage input
            if not preamble:
                raise NotDicomError(f"{path}: not a DICOM file (no 'DICM' marker)") from exc
            if isinstance(exc, (EOFError, InvalidDicomError)):
                raise InputError(f"{path}: truncated or corrupt DICOM file ({_one_line(exc)})") from exc
            raise InputError(f"{path}: corrupt DICOM file ({type(exc).__name__}: {_one_line(exc)})") from exc
        try:
            n_elements = len(ds)
            looks_like_image = "PixelData" in ds and "Rows" in ds and "Columns" in ds
        except Exception:  # noqa: BLE001 - lazily parsed garbage can fail on access
            n_elements, looks_like_image = 0, False
    if not preamble and not looks_like_image:
        raise NotDicomError(f"{path}: not a DICOM file (no 'DICM' marker and it does not parse as a DICOM image)")
    if any("end of file" in str(w.message).lower() for w in caught):
        raise InputError(f"{path}: truncated DICOM file (the file ends before its data set does)")
    if n_elements == 0:
        raise InputError(f"{path}: truncated or empty DICOM file (no data set after the file meta header)")
    return ds


@contextlib.contextmanager
def _quiet_pydicom():
    """Silence pydicom's warnings and log records (recorded, not printed) so that stderr stays clean."""
    logger = logging.getLogger("pydicom")
    old_level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield caught
    finally:
        logger.setLevel(old_level)


def _get(item, keyword: str, default=None):
    value = getattr(item, keyword, None)
    return default if value is None or value == "" else value


def parse_us_regions(ds) -> tuple[RegionInfo, ...]:
    """Every item of the Sequence of Ultrasound Regions (0018,6011), in file order.

    Physical deltas are converted to our units: cm -> mm for 2-D regions; seconds and cm/s are kept.

    Parameters
    ----------
    ds : pydicom.Dataset
        The image dataset.

    Returns
    -------
    tuple of RegionInfo
        Empty when the file has no ultrasound regions.
    """
    out = []
    for index, item in enumerate(getattr(ds, "SequenceOfUltrasoundRegions", None) or ()):
        try:
            bbox = tuple(
                int(_get(item, k))
                for k in (
                    "RegionLocationMinX0",
                    "RegionLocationMinY0",
                    "RegionLocationMaxX1",
                    "RegionLocationMaxY1",
                )
            )
        except (TypeError, ValueError):
            continue  # a region without a location cannot be used or shown
        x0, y0, x1, y1 = bbox
        if min(bbox) < 0 or x1 < x0 or y1 < y0:
            raise InputError(
                f"ultrasound region {index} has an impossible location ({x0}, {y0}) .. ({x1}, {y1}) px "
                "(negative, or its end before its start); the file's header is corrupt"
            )
        data_type = _get(item, "RegionDataType")
        data_type = int(data_type) if data_type is not None else None
        spatial = _get(item, "RegionSpatialFormat")
        spatial = int(spatial) if spatial is not None else None
        units_x = _get(item, "PhysicalUnitsXDirection")
        units_y = _get(item, "PhysicalUnitsYDirection")
        units_x = int(units_x) if units_x is not None else None
        units_y = int(units_y) if units_y is not None else None
        delta_x = _get(item, "PhysicalDeltaX")
        delta_y = _get(item, "PhysicalDeltaY")
        delta_x = float(delta_x) if delta_x is not None else None
        delta_y = float(delta_y) if delta_y is not None else None
        ref_x = _get(item, "ReferencePixelX0")
        ref_y = _get(item, "ReferencePixelY0")
        reference = (int(ref_x), int(ref_y)) if ref_x is not None and ref_y is not None else None
        kind = _KIND_OF_DATA_TYPE.get(data_type, "other")
        label = REGION_DATA_TYPES.get(data_type, f"data type {data_type}") if data_type is not None else "unknown"

        fields: dict = {}
        if (
            kind in ("tissue", "color")
            and spatial in (None, SPATIAL_FORMAT_2D)
            and units_x == UNITS_CM
            and units_y == UNITS_CM
            and delta_x is not None
            and delta_y is not None
            and delta_x > 0
            and delta_y > 0
        ):
            fields = {"mm_per_px_x": delta_x * MM_PER_CM, "mm_per_px_z": delta_y * MM_PER_CM}
        elif kind in ("PW", "CW") and units_x == UNITS_SECONDS and units_y == UNITS_CM_PER_S:
            if delta_x is not None and delta_x > 0 and delta_y and ref_y is not None:
                fields = {"s_per_px": delta_x, "cm_s_per_px": delta_y, "baseline_row": float(ref_y)}
        elif units_x == UNITS_SECONDS and delta_x is not None and delta_x > 0:
            fields = {"s_per_px": delta_x}  # a time axis (ECG or Doppler trace): shown, not used
        out.append(
            RegionInfo(
                index=index,
                kind=kind,
                bbox_px=bbox,  # type: ignore[arg-type]
                data_type_code=data_type,
                spatial_format_code=spatial,
                units_x_code=units_x,
                units_y_code=units_y,
                reference_px=reference,
                label=label,
                **fields,
            )
        )
    return tuple(out)


def _choose_imaging(regions: tuple[RegionInfo, ...]) -> RegionInfo | None:
    for kind in ("tissue", "color"):
        usable = [r for r in regions if r.kind == kind and r.mm_per_px_x is not None and r.area_px > 0]
        if usable:
            # max() keeps the first of equal areas (ALOKA dual view: the left image).
            return max(usable, key=lambda r: r.area_px)
    return None


def _choose_spectral(regions: tuple[RegionInfo, ...]) -> RegionInfo | None:
    usable = [r for r in regions if r.kind in ("PW", "CW") and r.cm_s_per_px is not None and r.area_px > 0]
    return max(usable, key=lambda r: r.area_px) if usable else None


def _clamped_slices(bbox: tuple[int, int, int, int], rows: int, cols: int) -> tuple[slice, slice] | None:
    """Row and column slices of an inclusive bbox, clamped to the image (vendors overrun by a pixel)."""
    c0, r0, c1, r1 = bbox
    c0, r0 = max(c0, 0), max(r0, 0)
    c1, r1 = min(c1, cols - 1), min(r1, rows - 1)
    if c1 - c0 < 1 or r1 - r0 < 1:
        return None
    return slice(r0, r1 + 1), slice(c0, c1 + 1)


class DicomSource(Source):
    """Frames of a DICOM ultrasound file (single image or cine), calibrated by its ultrasound regions.

    Parameters
    ----------
    path
        The DICOM file.
    mm_per_px
        Isotropic pixel pitch in millimetres, used **only** when the file carries no usable spatial
        calibration (``--mm-per-px``). The scanner's calibration always wins; a user value given for a
        calibrated file is ignored and noted in :meth:`info` (``details["mm_per_px_ignored"]``).

    Raises
    ------
    InputError
        Missing file, not DICOM, truncated, not ultrasound (the message names the Modality), pixel data
        that does not match its header, or a transfer syntax without an installed decoder.

    Notes
    -----
    The file's header is read at construction; frames are decoded one by one as :meth:`frames` (or
    :meth:`frame`) asks for them, so :meth:`info` on a long cine decodes nothing.
    """

    live = False

    def __init__(self, path: str | os.PathLike, *, mm_per_px: float | None = None) -> None:
        self.path = Path(path)
        self.source_id = str(path)
        self.user_mm_per_px = check_mm_per_px(mm_per_px)
        self._ds = _read_dataset(self.path)
        with _quiet_pydicom():
            self._setup()

    def _setup(self) -> None:
        ds = self._ds
        try:
            self.regions = parse_us_regions(ds)
        except InputError as exc:
            raise InputError(f"{self.path}: {exc}") from None
        self._check_modality()
        self._check_pixel_module()
        self.rows = int(ds.Rows)
        self.cols = int(ds.Columns)
        self.n_frames = self._number_of_frames()
        self._check_pixel_data()
        self.photometric = str(ds.PhotometricInterpretation).strip()
        self.frame_time_s, self._times_s = self._frame_times()
        self._palette_rgb8: np.ndarray | None = None
        self._palette_first = 0

        imaging = _choose_imaging(self.regions)
        spectral = _choose_spectral(self.regions)
        self.calibration: Calibration | None = None
        self.spectral: SpectralCalibration | None = None
        self._imaging_slices: tuple[slice, slice] | None = None
        self._spectral_slices: tuple[slice, slice] | None = None
        self.mm_per_px_ignored = False

        if imaging is not None:
            self._imaging_slices = _clamped_slices(imaging.bbox_px, self.rows, self.cols)
            if self._imaging_slices is None:
                imaging = None
        if spectral is not None:
            self._spectral_slices = _clamped_slices(spectral.bbox_px, self.rows, self.cols)
            if self._spectral_slices is not None:
                self.spectral = SpectralCalibration(
                    s_per_px=float(spectral.s_per_px),
                    cm_s_per_px=float(spectral.cm_s_per_px),
                    baseline_row=float(spectral.baseline_row),
                    source="dicom",
                    region_px=spectral.bbox_px,
                    doppler_kind="CW" if spectral.kind == "CW" else "PW",
                )
            else:
                spectral = None

        if imaging is not None:
            self.calibration = Calibration(
                mm_per_px_x=float(imaging.mm_per_px_x),
                mm_per_px_z=float(imaging.mm_per_px_z),
                source="dicom",
                region_px=imaging.bbox_px,
            )
            self.mm_per_px_ignored = self.user_mm_per_px is not None
        elif self.user_mm_per_px is not None:
            # The user's pitch applies to an uncalibrated 2-D region if the file has one, else to the
            # whole image — unless the file is a purely spectral display (nothing spatial to calibrate).
            region = next((r for r in self.regions if r.kind in ("tissue", "color") and r.area_px > 0), None)
            slices = _clamped_slices(region.bbox_px, self.rows, self.cols) if region is not None else None
            if slices is None and self.spectral is not None:
                self.mm_per_px_ignored = True
            else:
                if slices is not None:
                    self._imaging_slices = slices
                    imaging = region
                self.calibration = Calibration(
                    mm_per_px_x=self.user_mm_per_px,
                    mm_per_px_z=self.user_mm_per_px,
                    source="user",
                    region_px=region.bbox_px if slices is not None else None,
                )

        roles = {}
        if imaging is not None and self.calibration is not None:
            roles[imaging.index] = "imaging"
        if spectral is not None and self.spectral is not None:
            roles[spectral.index] = "spectral"
        self.regions = tuple(dataclasses.replace(r, role=roles.get(r.index)) for r in self.regions)

    # ------------------------------------------------------------------ checks
    def _check_modality(self) -> None:
        ds = self._ds
        modality = str(getattr(ds, "Modality", "") or "").strip()
        sop = str(getattr(ds, "SOPClassUID", "") or "")
        if not sop:
            sop = str(getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", "") or "")
        if modality == "US" or sop in US_SOP_CLASSES:
            return
        if sop.startswith(SC_SOP_PREFIX):
            if self.regions or self.user_mm_per_px is not None:
                return
            raise InputError(
                f"{self.path}: a secondary capture (Modality {modality or 'missing'}) without ultrasound "
                "regions; if it is an ultrasound screen capture, pass --mm-per-px"
            )
        sop_name = _uid_name(sop)
        raise InputError(
            f"{self.path}: Modality is {modality or 'missing'} ({sop_name}), not ultrasound (US); "
            "EchoSclero reads US images and secondary captures with ultrasound regions"
        )

    def _check_pixel_module(self) -> None:
        ds = self._ds
        if "PixelData" not in ds:
            raise InputError(f"{self.path}: has no pixel data (7FE0,0010); the file is truncated or is not an image")
        missing = [
            k
            for k in ("Rows", "Columns", "SamplesPerPixel", "BitsAllocated", "PhotometricInterpretation")
            if _get(ds, k) is None
        ]
        if missing:
            raise InputError(f"{self.path}: the image pixel module lacks {', '.join(missing)}")
        rows, cols = int(ds.Rows), int(ds.Columns)
        if rows < 2 or cols < 2:
            raise InputError(f"{self.path}: image size {rows} x {cols} px is too small to be an image")
        photometric = str(ds.PhotometricInterpretation).strip()
        samples = int(ds.SamplesPerPixel)
        if photometric not in _SUPPORTED_PHOTOMETRIC:
            raise InputError(
                f"{self.path}: PhotometricInterpretation {photometric!r} is not supported "
                f"(supported: {', '.join(sorted(_SUPPORTED_PHOTOMETRIC))})"
            )
        if samples != _SUPPORTED_PHOTOMETRIC[photometric]:
            raise InputError(
                f"{self.path}: SamplesPerPixel {samples} does not match PhotometricInterpretation "
                f"{photometric} (which needs {_SUPPORTED_PHOTOMETRIC[photometric]})"
            )
        bits = int(ds.BitsAllocated)
        if bits not in (8, 16):
            raise InputError(f"{self.path}: BitsAllocated {bits} is not supported for ultrasound (8 or 16)")
        self._check_structure(bits)

    def _check_structure(self, bits_allocated: int) -> None:
        """Headers that no image can have (PS3.3 C.7.6.3.1): refused, as one line naming the attribute."""
        ds = self._ds

        def number(keyword):
            raw = _get(ds, keyword)
            if raw is None:
                return None
            try:
                v = float(raw)
            except (TypeError, ValueError):
                raise InputError(
                    f"{self.path}: {keyword} {_shown(raw)} is not a number; the header is corrupt"
                ) from None
            return v

        stored = number("BitsStored")
        if stored is not None and not 1 <= stored <= bits_allocated:
            raise InputError(
                f"{self.path}: BitsStored {stored:g} is impossible with BitsAllocated {bits_allocated} (it must be "
                f"1..{bits_allocated}); the header is corrupt"
            )
        high = number("HighBit")
        if high is not None and not 0 <= high < bits_allocated:
            raise InputError(
                f"{self.path}: HighBit {high:g} is impossible with BitsAllocated {bits_allocated}; "
                "the header is corrupt"
            )
        representation = number("PixelRepresentation")
        if representation is not None and representation not in (0, 1):
            raise InputError(
                f"{self.path}: PixelRepresentation {representation:g} is unknown (0 unsigned, 1 signed); "
                "the header is corrupt"
            )
        frame_time_ms = number("FrameTime")
        if frame_time_ms is not None and not (math.isfinite(frame_time_ms) and frame_time_ms > 0):
            raise InputError(
                f"{self.path}: FrameTime {frame_time_ms:g} ms is impossible (the time between frames is positive); "
                "the header is corrupt"
            )

    def _number_of_frames(self) -> int:
        raw = _get(self._ds, "NumberOfFrames", 1)
        try:
            n = int(raw)
        except (TypeError, ValueError):
            raise InputError(f"{self.path}: NumberOfFrames {_shown(raw)} is not a number") from None
        if n < 1:
            raise InputError(f"{self.path}: NumberOfFrames is {n}; the file holds no image")
        return n

    @property
    def transfer_syntax(self):
        meta = getattr(self._ds, "file_meta", None)
        uid = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
        if uid is None:
            from pydicom.uid import ImplicitVRLittleEndian

            uid = ImplicitVRLittleEndian
        return uid

    def _check_pixel_data(self) -> None:
        from pydicom.pixels import get_decoder
        from pydicom.pixels.utils import get_expected_length

        ds = self._ds
        tsyntax = self.transfer_syntax
        try:
            decoder = get_decoder(tsyntax)
        except NotImplementedError:
            raise InputError(
                f"{self.path}: transfer syntax {tsyntax.name} ({tsyntax}) cannot be decoded by pydicom"
            ) from None
        if not decoder.is_available:
            raise InputError(
                f"{self.path}: no decoder installed for {tsyntax.name}; install pylibjpeg with its "
                "openjpeg/libjpeg/rle plugins (they are EchoSclero dependencies)"
            )
        data = ds.PixelData
        if not tsyntax.is_encapsulated:
            expected = get_expected_length(ds)
            if len(data) < expected:
                raise InputError(
                    f"{self.path}: pixel data is shorter than its header says ({len(data)} bytes, but "
                    f"Rows {self.rows} x Columns {self.cols} x SamplesPerPixel {int(ds.SamplesPerPixel)} x "
                    f"{self.n_frames} frame(s) x {int(ds.BitsAllocated) // 8} byte(s) = {expected}); "
                    "the file is truncated or its header is wrong"
                )
            return
        from pydicom.encaps import generate_frames

        try:
            count = sum(1 for _ in generate_frames(data, number_of_frames=self.n_frames))
        except Exception as exc:  # noqa: BLE001 - malformed encapsulation raises various errors
            raise InputError(f"{self.path}: compressed pixel data is corrupt ({_one_line(exc)})") from exc
        if count < self.n_frames:
            raise InputError(
                f"{self.path}: compressed pixel data holds {count} frame(s) but NumberOfFrames says "
                f"{self.n_frames}; the file is truncated or its header is wrong"
            )

    # ------------------------------------------------------------------ timing
    def _frame_times(self) -> tuple[float | None, np.ndarray]:
        """Frame interval and per-frame times, from FrameTime(Vector), CineRate or the display rate."""
        from pydicom.datadict import keyword_for_tag

        ds, n = self._ds, self.n_frames
        pointer_keywords = set()
        for tag in _as_list(_get(ds, "FrameIncrementPointer")):
            try:
                pointer_keywords.add(keyword_for_tag(tag))
            except Exception:  # noqa: BLE001 - a garbage pointer only means "no hint"
                pass
        vector = _get(ds, "FrameTimeVector")
        frame_time_ms = _get(ds, "FrameTime")

        def from_vector():
            values = [float(v) for v in _as_list(vector)]
            if len(values) != n or not all(math.isfinite(v) and v >= 0 for v in values):
                return None
            times = np.cumsum(values) / 1000.0  # FrameTimeVector: ms since the previous frame
            times -= times[0]
            mean_s = float(np.mean(values[1:])) / 1000.0 if n > 1 else 0.0
            return (mean_s if mean_s > 0 else None), times

        candidates = []
        if "FrameTimeVector" in pointer_keywords and vector is not None:
            candidates.append(from_vector)
        if frame_time_ms is not None:
            candidates.append(lambda: _uniform(float(frame_time_ms) / 1000.0, n))
        if vector is not None:
            candidates.append(from_vector)
        for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
            rate = _get(ds, keyword)
            if rate is not None:
                candidates.append(lambda rate=rate: _uniform(1.0 / float(rate) if float(rate) > 0 else -1.0, n))
        for candidate in candidates:
            try:
                result = candidate()
            except (TypeError, ValueError, ZeroDivisionError):
                continue
            if result is not None:
                return result
        return None, np.zeros(n)

    # ------------------------------------------------------------------ decoding
    def _palette_table(self) -> None:
        """Build the palette as an 8-bit RGB table once (PS3.3 C.7.6.3.1.5)."""
        from pydicom.pixels import apply_color_lut

        ds = self._ds
        desc = ds.RedPaletteColorLookupTableDescriptor
        n_entries = int(desc[0]) or 65536
        first = int(desc[1])
        index_dtype = np.uint16 if int(ds.BitsAllocated) > 8 or first + n_entries > 256 else np.uint8
        indices = np.arange(first, first + n_entries, dtype=np.int64).astype(index_dtype)
        try:
            with _quiet_pydicom():
                table = apply_color_lut(indices, ds)
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"{self.path}: the palette colour lookup table is unusable ({_one_line(exc)})") from exc
        table = np.asarray(table)[..., :3]
        if table.dtype != np.uint8:
            # Entries are 16-bit; some scanners store 8-bit values in 16 bits (noted in C.7.6.3.1.5).
            table = table.astype(np.uint8) if int(table.max()) <= 255 else (table >> 8).astype(np.uint8)
        self._palette_rgb8 = table
        self._palette_first = first

    def image(self, index: int) -> np.ndarray:
        """Decode frame ``index`` as the whole, uncropped image.

        Returns
        -------
        (rows, cols) or (rows, cols, 3) ndarray
            Grey (MONOCHROME, original dtype; MONOCHROME1 inverted to MONOCHROME2) or RGB (uint8 for
            palette colour; colour spaces converted to RGB).

        Raises
        ------
        IndexError
            ``index`` outside ``0 .. n_frames - 1``.
        InputError
            The frame cannot be decoded.
        """
        from pydicom.pixels import pixel_array

        if not 0 <= index < self.n_frames:
            raise IndexError(f"frame index {index} out of range 0..{self.n_frames - 1}")
        with _quiet_pydicom():
            try:
                arr = pixel_array(self._ds, index=index)
            except Exception as exc:  # noqa: BLE001 - decoder plugins raise many types
                raise InputError(
                    f"{self.path}: cannot decode frame {index} ({self.transfer_syntax.name}): {_one_line(exc)}"
                ) from exc
        if arr.ndim == 3 and self.n_frames > 1 and arr.shape[0] == self.n_frames and arr.shape[-1] != 3:
            arr = arr[index]  # defensive: a decoder that ignored ``index``
        if self.photometric == "PALETTE COLOR":
            if self._palette_rgb8 is None:
                self._palette_table()
            lut = self._palette_rgb8
            idx = np.clip(arr.astype(np.int64) - self._palette_first, 0, len(lut) - 1)
            arr = lut[idx]
        elif self.photometric == "MONOCHROME1":
            arr = np.iinfo(arr.dtype).max - arr if np.issubdtype(arr.dtype, np.unsignedinteger) else arr.max() - arr
        if arr.shape[:2] != (self.rows, self.cols):
            raise InputError(
                f"{self.path}: frame {index} decodes to {arr.shape[:2]} px but the header says "
                f"{self.rows} x {self.cols}"
            )
        return arr

    def frame(self, index: int) -> Frame:
        """Decode, crop and calibrate frame ``index``.

        Raises
        ------
        CalibrationMissingError
            The file has no usable calibration and no ``mm_per_px`` was given.
        """
        self._require_calibration()
        image = self.image(index)
        spectral_pixels = None
        if self.spectral is not None and self._spectral_slices is not None:
            spectral_pixels = np.ascontiguousarray(image[self._spectral_slices])
        if self.calibration is None:
            pixels = spectral_pixels  # a purely spectral display: the frame *is* that display
        elif self._imaging_slices is not None:
            pixels = np.ascontiguousarray(image[self._imaging_slices])
        else:
            pixels = image
        return Frame(
            pixels=pixels,
            calibration=self.calibration,
            t_s=float(self._times_s[index]),
            index=index,
            spectral=self.spectral,
            spectral_pixels=spectral_pixels,
            source_id=self.source_id,
        )

    def _require_calibration(self) -> None:
        if self.calibration is None and self.spectral is None:
            raise CalibrationMissingError(
                f"{self.path}: no spatial calibration (the file has no usable ultrasound regions); "
                "pass --mm-per-px with the pixel pitch in millimetres (e.g. from the depth scale on screen)"
            )

    def frames(self) -> Iterator[Frame]:
        """All frames in order, decoded one at a time.

        Raises
        ------
        CalibrationMissingError
            Immediately (not at the first ``next``) when the file is uncalibrated and no ``mm_per_px``
            was given.
        """
        self._require_calibration()
        return (self.frame(i) for i in range(self.n_frames))

    def __len__(self) -> int:
        return self.n_frames

    # ------------------------------------------------------------------ info
    def info(self) -> SourceInfo:
        ds = self._ds
        details = {
            "modality": str(getattr(ds, "Modality", "") or ""),
            "sop_class": _uid_name(str(getattr(ds, "SOPClassUID", "") or "")),
            "transfer_syntax": self.transfer_syntax.name,
            "photometric_interpretation": self.photometric,
            "bits_allocated": int(ds.BitsAllocated),
            "samples_per_pixel": int(ds.SamplesPerPixel),
            "manufacturer": str(getattr(ds, "Manufacturer", "") or ""),
            "model": str(getattr(ds, "ManufacturerModelName", "") or ""),
            "calibration": self.calibration.to_json() if self.calibration is not None else None,
            "spectral": self.spectral.to_json() if self.spectral is not None else None,
        }
        if self.calibration is None and self.spectral is None:
            details["calibration_note"] = (
                UNCALIBRATED_NOTE
                if not self.regions
                else "uncalibrated (no 2-D region in cm; pass --mm-per-px to analyse)"
            )
        if self.mm_per_px_ignored:
            details["mm_per_px_ignored"] = (
                f"--mm-per-px {self.user_mm_per_px:g} ignored: the file is calibrated by its "
                "ultrasound regions" + ("" if self.calibration is not None else " (spectral display only)")
            )
        if self._imaging_slices is not None and self.calibration is not None:
            rs, cs = self._imaging_slices
            details["frame_shape"] = [rs.stop - rs.start, cs.stop - cs.start]
        elif self.calibration is not None:
            details["frame_shape"] = [self.rows, self.cols]
        return SourceInfo(
            kind="dicom",
            source_id=self.source_id,
            n_frames=self.n_frames,
            rows=self.rows,
            cols=self.cols,
            frame_time_s=self.frame_time_s,
            calibrated=self.calibration is not None or self.spectral is not None,
            regions=self.regions,
            details=details,
        )


def _uniform(frame_time_s: float, n: int) -> tuple[float, np.ndarray] | None:
    if not (math.isfinite(frame_time_s) and frame_time_s > 0):
        return None
    return frame_time_s, np.arange(n) * frame_time_s


def _as_list(value) -> list:
    """A DICOM value as a list (single values, MultiValue and ``None`` alike)."""
    if value is None:
        return []
    if isinstance(value, (str, bytes, int, float)):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]


def _uid_name(uid: str) -> str:
    if not uid:
        return "no SOP class"
    from pydicom.uid import UID

    name = UID(uid).name
    return name if name and name != uid else uid
