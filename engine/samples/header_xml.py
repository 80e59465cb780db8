"""Build ISMRMRD XML headers like the ones scanners and fastMRI write (for samples and test files)."""
from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape

NS = "http://www.ismrm.org/ISMRMRD"


@dataclass
class HeaderSpec:
    """What goes into the header. Matrix sizes are ISMRMRD's (x readout, y phase, z partitions)."""

    encoded: tuple[int, int, int] = (640, 320, 1)
    recon: tuple[int, int, int] = (320, 320, 1)
    encoded_fov: tuple[float, float, float] = (440.0, 220.0, 5.0)
    recon_fov: tuple[float, float, float] = (220.0, 220.0, 5.0)
    # kspace_encoding_step_1 limits (min, max, center); None: full (0, y-1, y//2)
    step1: tuple[int, int, int] | None = None
    step2: tuple[int, int, int] | None = None
    slices: int = 1
    repetitions: int = 1
    contrasts: int = 1
    sets: int = 1
    averages: int = 1
    trajectory: str = "cartesian"
    field_strength: float = 2.8936
    vendor: str = "SIEMENS"
    model: str = "Skyra"
    receiver_channels: int = 8
    protocol: str = "AXT1_PRE"
    patient_id: str | None = None
    acceleration_step1: int = 1
    calibration_mode: str | None = None  # e.g. "embedded", "separate"
    extra_user: dict[str, str] = field(default_factory=dict)


def _limit(name: str, lim: tuple[int, int, int]) -> str:
    mn, mx, ct = lim
    return f"<{name}><minimum>{mn}</minimum><maximum>{mx}</maximum><center>{ct}</center></{name}>"


def header_xml(spec: HeaderSpec) -> str:
    ex, ey, ez = spec.encoded
    step1 = spec.step1 or (0, ey - 1, ey // 2)
    step2 = spec.step2 or (0, max(ez - 1, 0), ez // 2)
    fx, fy, fz = spec.encoded_fov
    rx, ry, rz = spec.recon
    gx, gy, gz = spec.recon_fov
    limits = "".join([
        _limit("kspace_encoding_step_1", step1),
        _limit("kspace_encoding_step_2", step2),
        _limit("average", (0, spec.averages - 1, 0)),
        _limit("slice", (0, spec.slices - 1, 0)),
        _limit("contrast", (0, spec.contrasts - 1, 0)),
        _limit("phase", (0, 0, 0)),
        _limit("repetition", (0, spec.repetitions - 1, 0)),
        _limit("set", (0, spec.sets - 1, 0)),
        _limit("segment", (0, 0, 0)),
    ])
    subject = (f"<subjectInformation><patientID>{escape(spec.patient_id)}</patientID></subjectInformation>"
               if spec.patient_id else "")
    parallel = ""
    if spec.calibration_mode:
        parallel = ("<parallelImaging><accelerationFactor>"
                    f"<kspace_encoding_step_1>{spec.acceleration_step1}</kspace_encoding_step_1>"
                    "<kspace_encoding_step_2>1</kspace_encoding_step_2></accelerationFactor>"
                    f"<calibrationMode>{spec.calibration_mode}</calibrationMode></parallelImaging>")
    user = "".join(f"<userParameterString><name>{escape(k)}</name><value>{escape(v)}</value></userParameterString>"
                   for k, v in spec.extra_user.items())
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<ismrmrdHeader xmlns="{NS}">'
        f"{subject}"
        "<measurementInformation>"
        f"<patientPosition>HFS</patientPosition><protocolName>{escape(spec.protocol)}</protocolName>"
        "</measurementInformation>"
        "<acquisitionSystemInformation>"
        f"<systemVendor>{escape(spec.vendor)}</systemVendor><systemModel>{escape(spec.model)}</systemModel>"
        f"<systemFieldStrength_T>{spec.field_strength}</systemFieldStrength_T>"
        f"<receiverChannels>{spec.receiver_channels}</receiverChannels>"
        "</acquisitionSystemInformation>"
        "<experimentalConditions><H1resonanceFrequency_Hz>123251815</H1resonanceFrequency_Hz>"
        "</experimentalConditions>"
        "<encoding>"
        f"<encodedSpace><matrixSize><x>{ex}</x><y>{ey}</y><z>{ez}</z></matrixSize>"
        f"<fieldOfView_mm><x>{fx}</x><y>{fy}</y><z>{fz}</z></fieldOfView_mm></encodedSpace>"
        f"<reconSpace><matrixSize><x>{rx}</x><y>{ry}</y><z>{rz}</z></matrixSize>"
        f"<fieldOfView_mm><x>{gx}</x><y>{gy}</y><z>{gz}</z></fieldOfView_mm></reconSpace>"
        f"<trajectory>{escape(spec.trajectory)}</trajectory>"
        f"<encodingLimits>{limits}</encodingLimits>"
        f"{parallel}"
        "</encoding>"
        "<sequenceParameters><TR>2000</TR><TE>10</TE><TI>100</TI><flipAngle_deg>90</flipAngle_deg>"
        "</sequenceParameters>"
        f"{'<userParameters>' + user + '</userParameters>' if user else ''}"
        "</ismrmrdHeader>"
    )
