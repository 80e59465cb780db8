"""The scan's facts (format, acquisition, matrix, coils, slices, field strength, patient id) and the
per-slice metrics table (the table the CSV export writes)."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QFormLayout, QHeaderView, QLabel, QSplitter, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from engine import ScanInfo, Update

from ..grid.levels import in_units
from ..grid.roi import RoiReport
from ..grid.labels import WEIGHTS_TAGS, method_title, model_label, network_keys, precision_details, weights_name
from ..core.state import SLOT_TITLES

FORMAT_NAMES = {"fastmri-multicoil": "fastMRI multi-coil", "fastmri-singlecoil": "fastMRI single-coil",
                "ismrmrd": "ISMRMRD raw data"}


def scan_facts(info: ScanInfo) -> list[tuple[str, str]]:
    """(label, value) rows for the metadata panel, in reading order; absent facts are left out."""
    h, w = info.kspace_shape
    rows = [
        ("File", info.path.name),
        ("Format", FORMAT_NAMES.get(info.format, info.format)),
        ("Acquisition", info.acquisition or info.protocol or ""),
        ("K-space matrix", f"{h} × {w} (readout × phase)"),
        ("Image matrix", f"{info.crop_size[0]} × {info.crop_size[1]}"),
        ("Field of view", fov_text(info)),
        ("Coils", str(info.num_coils)),
        ("Slices", str(info.num_slices)),
        ("Field strength", f"{info.field_strength:.2f} T" if info.field_strength else ""),
        ("System", info.system or ""),
        ("Patient ID", info.patient_id or ""),
        ("Sampling", "fully sampled" if info.fully_sampled else "acquired undersampled"),
        ("Reference", info.reference_name or "none"),
    ]
    if info.encoded_size and tuple(info.encoded_size) not in ((h, w), (h, w, 1)):  # else it says nothing new
        rows.insert(5, ("Encoded matrix", " × ".join(str(v) for v in info.encoded_size)))
    lo, hi = info.acquired_columns
    if (lo, hi) != (0, w):
        rows.append(("Acquired lines", f"{lo}–{hi - 1} of {w}"))
    for key, count in info.available.items():
        if count > 1:
            rows.append((key.capitalize(), f"{info.selection.get(key, 0) + 1} of {count}"))
    rows += [("Note", n) for n in info.notes]
    return [(k, v) for k, v in rows if v]


def fov_text(info: ScanInfo) -> str:
    """The recon field of view and pixel size (the ruler's mm), or why distances are in pixels."""
    if info.pixel_spacing_mm is None:
        return "not in the header: distances in pixels"
    (fh, fw), (ph, pw) = info.recon_fov_mm, info.pixel_spacing_mm
    pixel = f"{ph:.2f}" if abs(ph - pw) < 0.005 else f"{ph:.2f} × {pw:.2f}"
    return f"{fh:g} × {fw:g} mm, pixel {pixel} mm"


def elide(value: str, limit: int = 30) -> str:
    """Long unbreakable values (hashed patient ids, file names) shortened in the middle, so the panel
    never forces its dock wider; the full value is in the tooltip."""
    if len(value) <= limit or " " in value:
        return value
    keep = (limit - 1) // 2
    return value[:keep] + "…" + value[-keep:]


class MetadataPanel(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.form = QFormLayout(self)
        self.form.setContentsMargins(8, 6, 8, 6)
        self.form.setLabelAlignment(Qt.AlignRight)
        self.form.setVerticalSpacing(1)  # compact: every row fits the dock's default height
        self.rows: list[tuple[str, str]] = []
        self.set_info(None)

    def set_info(self, info: ScanInfo | None) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.rows = scan_facts(info) if info is not None else [("", "No scan open")]
        for key, value in self.rows:
            label = QLabel(key)
            label.setObjectName("hint")
            text = QLabel(elide(value))
            text.setWordWrap(True)
            text.setTextInteractionFlags(Qt.TextSelectableByMouse)
            full = str(info.path) if info is not None and key == "File" else value
            text.setToolTip(full if full != text.text() else "")
            self.form.addRow(label, text)


METRIC_COLUMNS = ("Method", "Model", "Weights", "SSIM", "PSNR (dB)", "NMSE", "Time (s)")
# the numbers before the model's name, so that a narrow dock still shows them (weights: in tooltips)
TABLE_COLUMNS = ("Method", "SSIM", "PSNR (dB)", "NMSE", "Time (s)", "Model")


def metrics_rows(update: Update) -> list[dict[str, object]]:
    """One row per method of the update: what the table shows and the CSV holds. ``weights_kind``:
    demo, installed or untrained ("" for zero-filled); ``model_card``: the demo weights' card. In a
    coil view the zero-filled row is that coil's, and the networks' rows say they are RSS."""
    r, cv = update.result, update.coil
    rows = []

    def row(method, model, weights, m, seconds, status=None, precision=""):
        rows.append({"Method": method, "Model": model, "Weights": weights,
                     "SSIM": m.ssim if m else None, "PSNR (dB)": m.psnr if m else None,
                     "NMSE": m.nmse if m else None, "Time (s)": seconds,
                     "untrained": status is not None and not status.trained,
                     "weights_kind": status.kind if status else "",
                     "model_card": str(status.model_card) if status and status.model_card else None,
                     "precision": precision})

    if cv is None:
        row("Zero-filled", "", "", r.zero_filled_metrics, r.timings.get("zero-filled"))
    else:
        row(f"Zero-filled (coil {cv.coil + 1})", "", "", cv.metrics, r.timings.get("zero-filled"))
    titles: dict = {}  # the grid's column titles (ViT, ViT 2 ...): two slots of a family read apart
    for key, ref in zip(network_keys(update.request.models), update.request.models):
        titles.setdefault(ref, method_title(key))
    for o in r.outputs:
        title = titles.get(o.ref, SLOT_TITLES.get(o.family, o.family))
        row(title + (" (RSS)" if cv is not None else ""), o.ref.name,
            weights_name(o.ref, o), o.metrics, o.seconds, o.weights, precision_details(o))
    return rows


def row_tooltip(row: dict[str, object]) -> str:
    """What a table row's weights are, where the demo weights' model card is, and the precision."""
    if not row["Weights"]:
        return ""
    tag = WEIGHTS_TAGS.get(row["weights_kind"])
    card = f"\nmodel card: {row['model_card']}" if row["model_card"] else ""
    precision = f"\n{row['precision']}" if row.get("precision") else ""
    return f"weights: {row['Weights']}" + (f" ({tag[0]})" if tag else "") + card + precision


def compact_rows(table: QTableWidget) -> None:
    """One line of text a row, tightly: the dock under the images shows three methods above and four
    inside an ROI without scrolling."""
    table.verticalHeader().setMinimumSectionSize(16)
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 4)


class MetricsTable(QTableWidget):
    def __init__(self, parent=None):
        super().__init__(0, len(TABLE_COLUMNS), parent)
        self.setHorizontalHeaderLabels(TABLE_COLUMNS)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.setAlternatingRowColors(True)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(TABLE_COLUMNS.index("Model"), QHeaderView.Interactive)
        header.setStretchLastSection(True)  # the model's name fills what is left, never more
        self.setWordWrap(False)
        self.setTextElideMode(Qt.ElideMiddle)
        compact_rows(self)
        self.rows: list[dict[str, object]] = []

    def set_update(self, update: Update | None) -> None:
        self.rows = metrics_rows(update) if update is not None else []
        self.setRowCount(len(self.rows))
        for i, row in enumerate(self.rows):
            tag = WEIGHTS_TAGS.get(row["weights_kind"])
            for j, col in enumerate(TABLE_COLUMNS):
                v = row[col]
                if isinstance(v, float):
                    v = f"{v:.2f}" if col in ("PSNR (dB)", "Time (s)") else f"{v:.4f}"
                elif col == "Model":
                    v = model_label(v, row["weights_kind"])
                item = QTableWidgetItem("—" if v is None else str(v))
                if isinstance(row[col], float):
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                if col == "Model" and tag is not None:
                    item.setForeground(QColor(tag[1]))
                item.setToolTip(row_tooltip(row))
                self.setItem(i, j, item)


ROI_COLUMNS = ("Method", "SSIM", "PSNR", "NMSE", "Mean", "Std")  # units on the line above the table


class RoiMetricsTable(QWidget):
    """The ROI's line (its kind, size and the values' unit) over a table of each method inside it:
    SSIM, PSNR (dB) and NMSE against the reference and the mean and standard deviation of its values
    in display units. For an ellipse SSIM is over its bounding box (the column says so). Hidden while
    there is no ROI."""

    report_changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 2, 0, 0)
        lay.setSpacing(1)
        self.title = QLabel("")
        self.title.setObjectName("hint")
        self.table = QTableWidget(0, len(ROI_COLUMNS))
        self.table.setHorizontalHeaderLabels(ROI_COLUMNS)
        self.table.verticalHeader().setVisible(False)
        compact_rows(self.table)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setTextElideMode(Qt.ElideRight)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.Stretch)  # long method names are elided, no scroll bar
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        lay.addWidget(self.title)
        lay.addWidget(self.table, 1)
        self.report: RoiReport | None = None
        self.setVisible(False)

    def set_report(self, report: RoiReport | None, exponent: int = 0) -> None:
        """``report`` with means and deviations in units of ``10**exponent`` (as the pixel readout)."""
        self.report = report
        self.setVisible(report is not None)
        self.report_changed.emit()
        if report is None:
            return
        unit = f" · values ×1e{exponent}" if exponent else ""
        self.title.setText(f"<b>ROI</b>: {report.description}{unit}")
        self.title.setToolTip("PSNR in dB; mean and std in the units of the colour bar and the pixel readout; "
                              "for an ellipse PSNR and NMSE over its pixels, SSIM over its bounding box")
        ellipse = report.description.startswith("ellipse")
        self.table.horizontalHeaderItem(1).setText("SSIM (box)" if ellipse else "SSIM")
        self.table.setRowCount(len(report.rows))
        for i, row in enumerate(report.rows):
            values = (row.ssim, row.psnr, row.nmse, row.mean, row.std)
            texts = [row.method] + ["—" if v is None else f"{v:.4f}" if j in (0, 2) else f"{v:.2f}" if j == 1
                                    else in_units(v, exponent) for j, v in enumerate(values)]
            for j, text in enumerate(texts):
                item = QTableWidgetItem(text)
                if j:
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                else:
                    item.setToolTip(text)
                self.table.setItem(i, j, item)


class MetricsColumn(QSplitter):
    """The metrics dock's content: the slice's table over the ROI's (shown while there is an ROI),
    the slice's table as high as its rows and the ROI's taking the rest."""

    def __init__(self, table: MetricsTable, roi: RoiMetricsTable):
        super().__init__(Qt.Vertical)
        self.table, self.roi = table, roi
        self.addWidget(table)
        self.addWidget(roi)
        self.setChildrenCollapsible(False)
        for signal in (table.model().rowsInserted, table.model().rowsRemoved, roi.report_changed):
            signal.connect(lambda *_: QTimer.singleShot(0, self.share))  # once the rows have their height

    def share(self) -> None:
        if self.roi.isHidden() or not self.table.rowCount():
            return
        t = self.table
        need = (t.horizontalHeader().height() + 2 * t.frameWidth() + 2
                + sum(t.rowHeight(i) for i in range(t.rowCount())))
        total = sum(self.sizes())
        if total > need:
            self.setSizes([need, total - need])
