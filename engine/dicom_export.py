"""Reconstructions as DICOM: MR Image Storage, one series per method (zero-filled, each network, the
reference), one instance per slice, for PACS viewers (OHIF, Horos, 3D Slicer).

Layout: ``<out>/<input stem>/slice<NNN>.dcm`` (NNN from 1, as the viewer numbers slices).

- Pixels: 16-bit unsigned, scaled from the float magnitude per instance: ``value = stored * RescaleSlope
  + RescaleIntercept`` (intercept 0 unless the image has negative values), so values come back within
  half a slope (1/131070 of the slice's range); the window spans 0 to the data range the caller gives
  (the reference volume's maximum, else the series' maximum).
- Geometry: ``PixelSpacing`` from the header's recon field of view over its recon matrix
  (``ScanInfo.pixel_spacing_mm``), ``SliceThickness`` likewise along z; without them 1 mm, said in
  ImageComments. Raw data carry no patient geometry that the readers keep, so every series is axial
  (``ImageOrientationPatient`` 1\\0\\0\\0\\1\\0), centred on the origin, slices ``SliceThickness`` apart
  in order of their index.
- Identity: ``ImageType`` DERIVED\\SECONDARY; the method and mask in SeriesDescription, in full in
  ImageComments. UIDs are derived (``generate_uid`` with entropy sources) from the input file (name,
  size, its first MiB, the ISMRMRD selection), the method, the mask and the slice, so a re-export gives
  the same UIDs, and the current slice exported alone is the same instance as in the volume.
- Written atomically (every file of the series, or none, ``atomic_write_many``); an existing file is
  kept unless ``overwrite``.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from resources import vitrecon_version

from .atomic import atomic_write_many
from .scan import ScanInfo

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
ASSUMED_MM = 1.0  # pixel spacing and slice thickness when the header gives none
MAX_STORED = 65535
_IDENTITY_BYTES = 1 << 20  # the start of the input file that identifies it (with its name and size)


@dataclass(frozen=True)
class SeriesInfo:
    """What one series says of itself. ``method``: ``zero-filled``, ``reference`` or a network (with its
    checkpoint); ``description``: SeriesDescription (cut to 64 characters); ``comments``: ImageComments,
    the method, weights and mask in full; ``key``: what else sets this series apart from another of the
    same method and file (the mask), for its UID."""

    method: str
    description: str
    comments: str
    number: int
    key: str = ""


@dataclass(frozen=True)
class Geometry:
    """mm: the distance between rows and between columns, the slice thickness; ``assumed`` when the
    header gave no field of view (1 mm each)."""

    row_mm: float
    column_mm: float
    thickness_mm: float
    assumed: bool


def dicom_folder(input_path: str | Path, out_dir: str | Path) -> Path:
    """The folder of one input's series: ``<out_dir>/<input stem>``."""
    return Path(out_dir) / Path(input_path).stem


def slice_file(index: int) -> str:
    """The file of slice ``index`` (0-based) in a series folder: ``slice<NNN>.dcm``, numbered from 1."""
    return f"slice{index + 1:03d}.dcm"


def check_dicom_writable(folder: str | Path, overwrite: bool, indices: range | None = None) -> None:
    """Refuse (FileExistsError) to replace any of the slices ``indices`` in ``folder`` (None: any DICOM
    file there) unless ``overwrite``."""
    folder = Path(folder)
    if overwrite or not folder.is_dir():
        return
    taken = [folder / slice_file(i) for i in indices if (folder / slice_file(i)).exists()] if indices is not None \
        else sorted(folder.glob("*.dcm"))
    if taken:
        raise FileExistsError(f"{taken[0] if indices is not None else folder}: already holds DICOM files; "
                              "pass --overwrite to replace them")


def geometry(info: ScanInfo) -> Geometry:
    spacing, thickness = info.pixel_spacing_mm, info.slice_thickness_mm
    if spacing is None:
        return Geometry(ASSUMED_MM, ASSUMED_MM, thickness or ASSUMED_MM, True)
    return Geometry(spacing[0], spacing[1], thickness or ASSUMED_MM, thickness is None)


def scaled(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    """uint16 ``[h, w]`` and the (slope, intercept) that give ``image`` back: ``stored * slope +
    intercept``. Both are rounded to DICOM's 16-character decimal strings first, and the pixels
    quantized with the rounded values, so what a reader computes is within half a slope."""
    from pydicom.valuerep import format_number_as_ds

    lo, hi = min(float(image.min()), 0.0), float(image.max())
    intercept = float(format_number_as_ds(lo)) if lo < 0 else 0.0
    slope = float(format_number_as_ds((hi - intercept) / MAX_STORED)) if hi > intercept else 1.0
    stored = np.clip(np.rint((image.astype(np.float64) - intercept) / slope), 0, MAX_STORED)
    return stored.astype(np.uint16), slope, intercept


def study_key(info: ScanInfo) -> str:
    """What identifies the input: its name, size, a hash of its first MiB and the ISMRMRD selection."""
    path = Path(info.path)
    with open(path, "rb") as f:  # read-only, as every input
        digest = hashlib.sha256(f.read(_IDENTITY_BYTES)).hexdigest()
    selection = ",".join(f"{k}={v}" for k, v in sorted(info.selection.items()))
    return f"{path.name}|{path.stat().st_size}|{digest}|{selection}"


def _uid(*parts: str) -> str:
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=["vitrecon", *parts])


def write_dicom_series(folder: str | Path, volume: np.ndarray, info: ScanInfo, series: SeriesInfo, *,
                       first_slice: int = 0, data_range: float | None = None,
                       overwrite: bool = False) -> list[Path]:
    """Write ``volume`` float32 ``[slices, h, w]``, the slices ``first_slice``.. of ``info``'s scan, as
    one series of MR images in ``folder``; returns the files in slice order. ``data_range``: the top of
    the display window (None: the volume's maximum)."""
    folder = Path(folder)
    volume = np.asarray(volume, dtype=np.float32)
    if volume.ndim != 3:
        raise ValueError(f"{folder}: expected a [slices, h, w] volume to write as DICOM, got shape {volume.shape}")
    if not np.isfinite(volume).all():
        raise ValueError(f"{folder}: expected finite pixel values to write as DICOM, found NaN or infinity")
    indices = range(first_slice, first_slice + volume.shape[0])
    check_dicom_writable(folder, overwrite, indices)
    top = float(data_range) if data_range and math.isfinite(data_range) and data_range > 0 \
        else max(float(volume.max()), 1e-30)
    study = study_key(info)
    uids = {"study": _uid(study, "study"), "frame": _uid(study, "frame of reference"),
            "series": _uid(study, "series", series.method, series.key)}
    geo = geometry(info)
    folder.mkdir(parents=True, exist_ok=True)
    writers = {}
    for image, index in zip(volume, indices):
        ds = mr_image(info, series, geo, image, index, uids, top)
        writers[folder / slice_file(index)] = lambda tmp, ds=ds: ds.save_as(tmp, enforce_file_format=True)
    atomic_write_many(writers)
    return list(writers)


def mr_image(info: ScanInfo, series: SeriesInfo, geo: Geometry, image: np.ndarray, index: int,
             uids: dict[str, str], top: float):
    """One MR Image Storage instance: slice ``index`` of the scan, float32 ``[h, w]``."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: file names and protocols may hold any character
    ds.SOPClassUID = MR_IMAGE_STORAGE
    ds.SOPInstanceUID = _uid(uids["series"], "instance", str(index))
    _patient_and_study(ds, info, uids)
    _series(ds, info, series, uids)
    _plane(ds, info, geo, image.shape, index)
    _pixels(ds, image, top)
    ds.InstanceNumber = index + 1
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.DerivationDescription = f"reconstructed from raw k-space by vitrecon: {series.description}"[:1024]
    ds.ImageComments = series.comments + (f"; pixel spacing and slice thickness are not in the header: "
                                          f"{ASSUMED_MM:g} mm assumed" if geo.assumed else "")
    ds.BurnedInAnnotation = "NO"
    ds.file_meta = _file_meta(ds)
    return ds


def _patient_and_study(ds, info: ScanInfo, uids: dict[str, str]) -> None:
    """Patient and study modules; what raw data do not say stays empty (type 2)."""
    ds.PatientName = ""
    ds.PatientID = str(info.patient_id or "")[:64]
    ds.PatientBirthDate = ds.PatientSex = ""
    ds.StudyInstanceUID = uids["study"]
    ds.StudyDate = ds.StudyTime = ds.ReferringPhysicianName = ds.StudyID = ds.AccessionNumber = ""
    ds.StudyDescription = f"vitrecon: {Path(info.path).name}"[:64]
    ds.FrameOfReferenceUID = uids["frame"]
    ds.PositionReferenceIndicator = ""


def _series(ds, info: ScanInfo, series: SeriesInfo, uids: dict[str, str]) -> None:
    """Series, equipment and MR image modules: the method in SeriesDescription; the sequence is unknown
    to vitrecon (ScanningSequence RM: research mode)."""
    ds.Modality = "MR"
    ds.SeriesInstanceUID = uids["series"]
    ds.SeriesNumber = series.number
    ds.SeriesDescription = series.description[:64]
    ds.Manufacturer = "vitrecon"
    ds.SoftwareVersions = vitrecon_version()
    if info.protocol:
        ds.ProtocolName = str(info.protocol)[:64]
    ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = "RM", "NONE", ""
    ds.MRAcquisitionType = "3D" if info.header.get("dimensionality") == "3D" else "2D"
    ds.RepetitionTime = ds.EchoTime = ds.EchoTrainLength = ""
    if info.field_strength:
        ds.MagneticFieldStrength = float(info.field_strength)


def _plane(ds, info: ScanInfo, geo: Geometry, shape: tuple[int, int], index: int) -> None:
    """Image plane: axial, centred on the origin, slices ``thickness_mm`` apart (see the module)."""
    rows, cols = shape
    z = (index - (info.num_slices - 1) / 2) * geo.thickness_mm
    ds.PixelSpacing = [_ds(geo.row_mm), _ds(geo.column_mm)]
    ds.SliceThickness = ds.SpacingBetweenSlices = _ds(geo.thickness_mm)
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [_ds(-(cols - 1) / 2 * geo.column_mm), _ds(-(rows - 1) / 2 * geo.row_mm), _ds(z)]
    ds.SliceLocation = _ds(z)


def _pixels(ds, image: np.ndarray, top: float) -> None:
    stored, slope, intercept = scaled(image)
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = _ds(slope), _ds(intercept), "US"
    ds.WindowCenter, ds.WindowWidth = _ds(top / 2), _ds(top)
    ds.WindowCenterWidthExplanation = "0 to the data range"
    ds.PixelData = stored.tobytes()


def _ds(value: float) -> str:
    from pydicom.valuerep import format_number_as_ds

    return format_number_as_ds(float(value))


def _file_meta(ds):
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return meta


__all__ = ["ASSUMED_MM", "MR_IMAGE_STORAGE", "SeriesInfo", "check_dicom_writable", "dicom_folder", "geometry",
           "scaled", "slice_file", "write_dicom_series"]
