"""The words on each pane: title (method, model, checkpoint, badges), metrics line, messages. Pure
functions of an ``Update``, so they are easy to test and the PNG export shows the same text."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from engine import (Metrics, ModelRef, NetworkOutput, Update, WeightsStatus, checkpoint_label, get_entry,
                    weights_status)

from .. import theme
from .levels import in_units
from .panes import badge
from ..core.state import SLOT_TITLES, slice_number, slot_title

METHOD_TITLES = {"reference": "Reference", "zero-filled": "Zero-filled", **SLOT_TITLES}
# Weights that are not the user's own trained ones are marked with these words and colours in the
# pane titles, the metrics table, and so in the PNG and CSV exports (engine.weights_kind decides).
WEIGHTS_TAGS = {"untrained": ("untrained weights", theme.WARN), "demo": ("demo weights", theme.DEMO)}


def network_keys(models: tuple[ModelRef, ...]) -> list[str]:
    """The grid column (pane key) of each network of a request, in order: its family (``vit``) for the
    first of a family, ``vit-2``, ``vit-3`` for the next ones (two checkpoints side by side)."""
    seen: dict[str, int] = {}
    keys = []
    for ref in models:
        family = get_entry(ref.name).family
        seen[family] = seen.get(family, 0) + 1
        keys.append(family if seen[family] == 1 else f"{family}-{seen[family]}")
    return keys


def method_title(key: str) -> str:
    """A column's title: Reference, Zero-filled, ViT, ViT 2, U-Net ..."""
    return METHOD_TITLES.get(key) or slot_title(key)


@dataclass(frozen=True)
class PaneText:
    title: str = ""
    footer: str = ""
    message: str = ""
    status: str = ""
    pending: bool = False


def paused(text: PaneText) -> PaneText:
    """A network's pane while the cine plays: it runs on the slice the cine stops at, so the pane
    says so instead of showing another slice's image as "updating"."""
    return dataclasses.replace(text, message="the network runs when the cine stops", status="cine",
                               pending=False)


def metrics_text(m: Metrics | None, seconds: float | None = None, precision: str = "") -> str:
    """Two lines: SSIM and PSNR, then NMSE (and the network's time and ``precision``, e.g. bf16)."""
    if m is None:
        return ""
    b = f"<b style='color:{theme.TEXT}'>"
    time = f" &nbsp;·&nbsp; {seconds:.2f} s" if seconds is not None else ""
    if precision:
        time += f" <span style='font-size:7pt; color:{theme.MUTED}'>{precision}</span>"
    return (f"SSIM {b}{m.ssim:.4f}</b> &nbsp; PSNR {b}{m.psnr:.2f}</b> dB<br>"
            f"NMSE {b}{m.nmse:.4f}</b>{time}")


def precision_short(output: NetworkOutput) -> str:
    """``bf16`` or ``fp32``: what a network computed in, as the panes show it beside the time."""
    return "bf16" if output.precision == "bf16-autocast" else "fp32"


def precision_details(output: NetworkOutput) -> str:
    """The precision a network ran in and why (the metrics table's tooltip)."""
    text = "precision: " + ("bf16 autocast" if output.precision == "bf16-autocast" else "fp32")
    if output.guard is not None:
        text += f" ({output.guard.describe()})"
    return text


def two_lines(first: str, second: str = "") -> str:
    """A pane title: the method in bold on the first line, details in small muted type below."""
    return first + (f"<br><span style='font-size:8pt; color:{theme.MUTED}'>{second}</span>" if second else "")


def weights_name(ref: ModelRef, output: NetworkOutput | None) -> str:
    """The checkpoint a network runs with: the file the user chose, installed weights, or random."""
    if ref.checkpoint:
        return checkpoint_label(ref.checkpoint)
    if output is not None:
        if output.untrained:
            return "random weights"
        return output.weights_path.name if output.weights_path is not None else "installed weights"
    try:  # before the network first ran: the file it will load
        path = weights_status(ref.name).path
    except Exception:  # noqa: BLE001 - a label must never break drawing
        path = None
    return path.name if path is not None else ""


def weights_badge(status: WeightsStatus) -> str:
    """The title badge of demo or untrained weights ("" for installed ones); the demo badge is a link
    to the shipped model card when there is one."""
    tag = WEIGHTS_TAGS.get(status.kind)
    if tag is None:
        return ""
    html = badge(*tag)
    if status.model_card is not None:
        html = f"<a href='{status.model_card.resolve().as_uri()}' style='text-decoration:none'>{html}</a>"
    return html


def weights_line(ref: ModelRef, output: NetworkOutput | None) -> str:
    """A network title's second line: the weights file, after a badge for demo weights; untrained
    weights are the badge alone."""
    name = weights_name(ref, output)
    if output is None:
        return name
    status = output.weights
    tag = weights_badge(status)
    if not status.trained:
        return tag
    return f"{tag} {name}" if tag else name


def model_label(model: str, kind: str) -> str:
    """A model's name marked with its weights' tag (``vit-s (demo weights)``) where it has one."""
    tag = WEIGHTS_TAGS.get(kind)
    return f"{model} ({tag[0]})" if model and tag else model


def no_reference_reason(update: Update) -> str:
    if update.request.scan.acquired_undersampled:
        return "this scan was acquired undersampled, so no fully sampled image exists to compare with"
    return "this file holds no reference image and no fully sampled k-space"


def error_stats(err_abs: np.ndarray | None, exponent: int = 0) -> str:
    """Mean and maximum of an absolute error map, in display units (``levels.in_units``)."""
    if err_abs is None:
        return ""
    return (f"mean |e| {in_units(float(err_abs.mean()), exponent)}<br>"
            f"max |e| {in_units(float(err_abs.max()), exponent)}")


def pane_texts(update: Update, known: dict[ModelRef, NetworkOutput] | None = None,
               exponent: int = 0) -> dict[str, PaneText]:
    """Title, footer, message and status for every pane key of the grid. ``known``: earlier outputs of
    the same networks, so a title keeps its weights badge while a network is recomputed; ``exponent``:
    the display units' (``levels.unit_exponent``)."""
    r, req = update.result, update.request
    info = req.scan.info
    out: dict[str, PaneText] = {}
    no_ref = r.reference is None
    no_ref_badge = " " + badge("no reference", theme.INFO) if no_ref else ""
    cv = update.coil  # one coil in place of the RSS: reference, zero-filled and its error
    coil = f" · coil {req.coil + 1}/{info.num_coils}" if req.coil is not None else ""
    rss_badge = " " + badge("RSS", theme.INFO) if req.coil is not None else ""  # networks see all coils
    if no_ref:
        out["reference"] = PaneText(
            title=two_lines(f"<b>Reference</b>{no_ref_badge}", "none in this file"),
            message=f"No reference image:<br>{no_reference_reason(update)}.")
    else:
        source = "this coil's fully sampled k-space" if coil else info.reference_name or "fully sampled"
        out["reference"] = PaneText(title=two_lines(f"<b>Reference</b>{coil}", source),
                                    footer=f"slice {slice_number(r.slice_index)} of {info.num_slices}")
    mask = r.mask
    how = (f"{mask.spec.kind} {mask.spec.acceleration:g}×" if mask.spec is not None else "as acquired")
    zf_footer = metrics_text(cv.metrics if cv is not None else r.zero_filled_metrics)
    out["zero-filled"] = PaneText(
        title=two_lines(f"<b>Zero-filled</b>{coil}{no_ref_badge}",
                        f"{how} · effective {mask.effective_acceleration:.2f}×"),
        footer=zf_footer)
    if not no_ref:
        zf_error = cv.error_abs if cv is not None else r.zero_filled_error_abs
        out["error:zero-filled"] = PaneText(title=two_lines("<b>Error</b> · Zero-filled", how),
                                            footer=error_stats(zf_error, exponent))
    outputs = {o.ref: o for o in r.outputs}
    for key, ref in zip(network_keys(req.models), req.models):
        o = outputs.get(ref)
        label = method_title(key)
        seen = o if o is not None else (known or {}).get(ref)
        details = weights_line(ref, seen)
        if o is not None and o.metrics is None:  # no footer to show the precision beside the time
            details = " · ".join(filter(None, (details, precision_short(o))))
        title = two_lines(f"<b>{label}</b> · {ref.name}{no_ref_badge}{rss_badge}", details)
        error = update.errors.get(req.labels[ref])
        pending = req.labels[ref] in update.pending
        if error:
            text = PaneText(title=title, message=f"<span style='color:{theme.ERROR}'>{error}</span>",
                            status=f"<span style='color:{theme.ERROR}'>failed</span>")
        elif o is None:
            text = PaneText(title=title, message=f"running {ref.name}…", status="updating…", pending=True)
        else:
            text = PaneText(title=title, footer=metrics_text(o.metrics, o.seconds, precision_short(o)),
                            status="updating…" if pending else "")
        out[key] = text
        if not no_ref:
            out[f"error:{key}"] = PaneText(
                title=two_lines(f"<b>Error</b> · {label}{rss_badge}", req.labels[ref]),
                footer=error_stats(o.error_abs, exponent) if o is not None else "",
                message=text.message if o is None else "", status=text.status, pending=text.pending)
    return out
