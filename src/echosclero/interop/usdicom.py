"""Write calibrated ultrasound images as standard DICOM (US Image / US Multi-frame Image Storage).

The files carry a Sequence of Ultrasound Regions (PS3.3 C.8.5.5) so that any viewer — and
:class:`echosclero.sources.dicom.DicomSource` — reads back the same physical calibration:

* 2-D regions (tissue, colour flow): ``PhysicalDeltaX/Y`` in cm (units code 3), from our mm per pixel;
* spectral regions (PW, CW): ``PhysicalDeltaX`` in seconds per column (code 4), ``PhysicalDeltaY`` in cm/s
  per row (code 7), and the zero-velocity baseline as ``ReferencePixelY0``, relative to the region's
  top-left corner (as the standard defines reference pixels).

The written files validate with dicom3tools ``dciodvfy`` without errors and read with dcmtk ``dcmdump``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np

__all__ = [
    "US_IMAGE_STORAGE",
    "US_MULTIFRAME_IMAGE_STORAGE",
    "UltrasoundRegion",
    "write_us_dicom",
]

#: SOP Class UIDs (PS3.4 B.5).
US_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"
US_MULTIFRAME_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.3.1"

RegionDataKind = Literal["tissue", "color", "PW", "CW"]

# PS3.3 C.8.5.5.1.1 (RegionSpatialFormat), C.8.5.5.1.2 (RegionDataType), C.8.5.5.1.15 (units).
_SPATIAL_FORMAT = {"tissue": 1, "color": 1, "PW": 3, "CW": 3}
_DATA_TYPE = {"tissue": 1, "color": 2, "PW": 3, "CW": 4}
_UNITS_CM, _UNITS_SECONDS, _UNITS_CM_PER_S = 3, 4, 7
# PS3.3 C.8.5.6.1.1: Image Type value 4 is a bitmap of the modes shown.
_IMAGE_TYPE_BITS = {"tissue": 0x0001, "CW": 0x0004, "PW": 0x0008, "color": 0x0010}
_CM_PER_MM = 0.1


@dataclass(frozen=True, slots=True)
class UltrasoundRegion:
    """One item of the Sequence of Ultrasound Regions, in EchoSclero's units.

    Parameters
    ----------
    bbox_px
        ``(min_col, min_row, max_col, max_row)``, inclusive, in the image (``RegionLocationMin/Max``).
    data_type
        ``"tissue"`` or ``"color"`` (2-D regions), ``"PW"`` or ``"CW"`` (spectral Doppler).
    mm_per_px_x, mm_per_px_z
        Pixel pitch of a 2-D region in millimetres (written in cm, units code 3).
    s_per_px
        Sweep time per column of a spectral region in seconds (units code 4).
    cm_s_per_px
        Velocity step per row of a spectral region in cm/s (units code 7), sign as the display shows it
        (DICOM convention: the physical value grows with the row index when positive).
    baseline_row
        Zero-velocity row of a spectral region, relative to the region's top edge; written as the
        integer ``ReferencePixelY0`` (rounded).
    reference_px
        Optional ``(ReferencePixelX0, ReferencePixelY0)``, relative to the region's top-left corner, with
        physical value 0 (e.g. the transducer centre of a 2-D region). For a spectral region the default
        is ``(0, baseline_row)``.
    """

    bbox_px: tuple[int, int, int, int]
    data_type: RegionDataKind = "tissue"
    mm_per_px_x: float | None = None
    mm_per_px_z: float | None = None
    s_per_px: float | None = None
    cm_s_per_px: float | None = None
    baseline_row: float | None = None
    reference_px: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.data_type not in _DATA_TYPE:
            raise ValueError(
                f"UltrasoundRegion.data_type must be one of {sorted(_DATA_TYPE)}, got {self.data_type!r}"
            )
        if len(self.bbox_px) != 4:
            raise ValueError(f"bbox_px must be (min_col, min_row, max_col, max_row), got {self.bbox_px!r}")
        c0, r0, c1, r1 = (int(v) for v in self.bbox_px)
        if not (0 <= c0 < c1 and 0 <= r0 < r1):
            raise ValueError(f"bbox_px {self.bbox_px!r} is empty or negative (need min < max, both >= 0)")
        if self.data_type in ("tissue", "color"):
            for name in ("mm_per_px_x", "mm_per_px_z"):
                _require_positive(name, getattr(self, name), self.data_type)
        else:
            _require_positive("s_per_px", self.s_per_px, self.data_type)
            if self.cm_s_per_px is None or not math.isfinite(self.cm_s_per_px) or self.cm_s_per_px == 0:
                raise ValueError(
                    f"a {self.data_type} region needs a non-zero cm_s_per_px, got {self.cm_s_per_px!r}"
                )
            if self.baseline_row is None or not math.isfinite(self.baseline_row):
                raise ValueError(
                    f"a {self.data_type} region needs baseline_row (the zero-velocity row, relative to "
                    f"the region's top), got {self.baseline_row!r}"
                )


def _require_positive(name: str, value: float | None, kind: str) -> None:
    if value is None or not math.isfinite(value) or value <= 0:
        raise ValueError(f"a {kind} region needs a positive {name}, got {value!r}")


def _region_item(region: UltrasoundRegion):
    from pydicom import Dataset

    item = Dataset()
    c0, r0, c1, r1 = (int(v) for v in region.bbox_px)
    item.RegionSpatialFormat = _SPATIAL_FORMAT[region.data_type]
    item.RegionDataType = _DATA_TYPE[region.data_type]
    item.RegionFlags = 0  # high priority, scaling not protected, velocity scale, not scrolling
    item.RegionLocationMinX0 = c0
    item.RegionLocationMinY0 = r0
    item.RegionLocationMaxX1 = c1
    item.RegionLocationMaxY1 = r1
    reference = region.reference_px
    if region.data_type in ("tissue", "color"):
        item.PhysicalUnitsXDirection = _UNITS_CM
        item.PhysicalUnitsYDirection = _UNITS_CM
        item.PhysicalDeltaX = float(region.mm_per_px_x) * _CM_PER_MM
        item.PhysicalDeltaY = float(region.mm_per_px_z) * _CM_PER_MM
    else:
        item.PhysicalUnitsXDirection = _UNITS_SECONDS
        item.PhysicalUnitsYDirection = _UNITS_CM_PER_S
        item.PhysicalDeltaX = float(region.s_per_px)
        item.PhysicalDeltaY = float(region.cm_s_per_px)
        if reference is None:
            reference = (0, int(round(region.baseline_row)))
    if reference is not None:
        item.ReferencePixelX0 = int(reference[0])
        item.ReferencePixelY0 = int(reference[1])
        item.ReferencePixelPhysicalValueX = 0.0
        item.ReferencePixelPhysicalValueY = 0.0
    return item


def _check_frames(frames: np.ndarray) -> np.ndarray:
    if not isinstance(frames, np.ndarray):
        raise TypeError(f"frames must be a numpy array, got {type(frames).__name__}")
    if frames.dtype != np.uint8:
        raise ValueError(
            f"frames must be uint8 (the writer never rescales intensities), got {frames.dtype}; "
            "convert explicitly, e.g. np.clip(x * 255, 0, 255).astype(np.uint8)"
        )
    if not (frames.ndim == 3 or (frames.ndim == 4 and frames.shape[3] == 3)):
        raise ValueError(
            f"frames must be (n, rows, cols) grey or (n, rows, cols, 3) RGB, got shape {frames.shape}"
        )
    n, rows, cols = frames.shape[:3]
    if n < 1 or rows < 2 or cols < 2:
        raise ValueError(f"frames hold no usable image: shape {frames.shape}")
    if rows > 65535 or cols > 65535:
        raise ValueError(f"image size {rows} x {cols} exceeds DICOM's 65535 limit")
    return np.ascontiguousarray(frames)


def write_us_dicom(
    path: str | os.PathLike,
    frames: np.ndarray,
    *,
    regions: Sequence[UltrasoundRegion],
    frame_time_s: float | None,
    patient_name: str = "Simulated^Leg",
    patient_id: str = "SIM0001",
    laterality: str = "L",
    series_description: str = "",
    study_description: str = "",
    seed_uid: str | None = None,
    acquisition_datetime: datetime | None = None,
) -> Path:
    """Write frames as a DICOM US image (one frame) or US multi-frame cine, with ultrasound regions.

    Parameters
    ----------
    path
        Output file (its folder is created if needed).
    frames : (n, rows, cols) or (n, rows, cols, 3) uint8 ndarray
        Grey frames (written MONOCHROME2) or RGB frames (RGB, PlanarConfiguration 0).
    regions
        Ultrasound regions with their calibration (at least one is recommended; an image without
        regions is uncalibrated and EchoSclero will ask for ``--mm-per-px``).
    frame_time_s
        Time between frames in seconds (FrameTime, CineRate). Required when ``n > 1``.
    patient_name, patient_id
        Patient identification (DICOM PN / LO).
    laterality
        ``"L"`` or ``"R"``: the leg examined (General Series Laterality).
    series_description, study_description
        Free text.
    seed_uid
        When given, the Study/Series/SOP Instance UIDs are derived from it deterministically
        (reproducible output); otherwise they are random.
    acquisition_datetime
        Study/series/content date and time; defaults to now.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ValueError, TypeError
        Frames that are not uint8 with a supported shape, a region outside the image, a missing
        ``frame_time_s`` for a cine, or a laterality other than L/R.
    """
    from pydicom import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence as DicomSequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    from pydicom.valuerep import DSfloat

    from echosclero import __version__

    frames = _check_frames(frames)
    n, rows, cols = frames.shape[:3]
    rgb = frames.ndim == 4
    if laterality not in ("L", "R"):
        raise ValueError(f"laterality must be 'L' or 'R' (the leg examined), got {laterality!r}")
    regions = list(regions)
    for region in regions:
        if not isinstance(region, UltrasoundRegion):
            raise TypeError(f"regions must be UltrasoundRegion objects, got {type(region).__name__}")
        c0, r0, c1, r1 = region.bbox_px
        if c1 >= cols or r1 >= rows:
            raise ValueError(
                f"region {region.data_type} bbox_px {region.bbox_px} reaches outside the "
                f"{cols} x {rows} px image (max col {cols - 1}, max row {rows - 1})"
            )
    if n > 1:
        if frame_time_s is None or not math.isfinite(frame_time_s) or frame_time_s <= 0:
            raise ValueError(f"a cine of {n} frames needs a positive frame_time_s, got {frame_time_s!r}")
    elif frame_time_s is not None and (not math.isfinite(frame_time_s) or frame_time_s <= 0):
        raise ValueError(f"frame_time_s must be positive seconds, got {frame_time_s!r}")

    def uid(role: str) -> str:
        return generate_uid(entropy_srcs=[seed_uid, role]) if seed_uid is not None else generate_uid()

    when = acquisition_datetime or datetime.now()
    date, time = when.strftime("%Y%m%d"), when.strftime("%H%M%S.%f")
    sop_class = US_MULTIFRAME_IMAGE_STORAGE if n > 1 else US_IMAGE_STORAGE
    sop_instance = uid("instance")

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationVersionName = f"ECHOSCLERO_{__version__}"[:16]

    ds = Dataset()
    ds.file_meta = meta
    texts = (patient_name, patient_id, series_description, study_description)
    if not all(t.isascii() for t in texts):
        ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8
    # --- SOP Common, General Image, US Image (ImageType)
    modes = 0
    for region in regions:
        modes |= _IMAGE_TYPE_BITS[region.data_type]
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VASCULAR", f"{modes or 1:04X}"]
    ds.InstanceCreationDate = date
    ds.InstanceCreationTime = time
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance
    # --- General Study
    ds.StudyDate = date
    ds.SeriesDate = date
    ds.ContentDate = date
    ds.StudyTime = time
    ds.SeriesTime = time
    ds.ContentTime = time
    ds.AccessionNumber = ""
    ds.Modality = "US"
    # --- General Equipment
    ds.Manufacturer = "EchoSclero"
    ds.ReferringPhysicianName = ""
    if study_description:
        ds.StudyDescription = study_description
    if series_description:
        ds.SeriesDescription = series_description
    ds.ManufacturerModelName = "EchoSclero"
    # --- Patient
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.BodyPartExamined = "LEG"
    ds.SoftwareVersions = __version__
    ds.StudyInstanceUID = uid("study")
    ds.SeriesInstanceUID = uid("series")
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    ds.Laterality = laterality
    # --- Cine and Multi-frame
    if n > 1:
        frame_time_ms = float(frame_time_s) * 1000.0
        ds.FrameTime = DSfloat(frame_time_ms, auto_format=True)
        ds.CineRate = int(round(1.0 / float(frame_time_s)))
        ds.NumberOfFrames = n
        ds.FrameIncrementPointer = 0x00181063  # FrameTime
    # --- US Region Calibration
    if regions:
        ds.SequenceOfUltrasoundRegions = DicomSequence([_region_item(r) for r in regions])
    # --- Image Pixel / US Image
    ds.SamplesPerPixel = 3 if rgb else 1
    ds.PhotometricInterpretation = "RGB" if rgb else "MONOCHROME2"
    if rgb:
        ds.PlanarConfiguration = 0
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.LossyImageCompression = "00"
    ds.PixelData = frames.tobytes()
    ds["PixelData"].VR = "OB"

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(out, enforce_file_format=True)
    return out
