"""A weights file's model card as the Models dialog shows it (HTML): what it is, where it lies, its
sha256, the data and recipe it was trained with, its validation (and held-out evaluation) metrics.
The facts come from the engine (``card_facts``, ``card_details``); this module only lays them out."""
from __future__ import annotations

from html import escape

from engine import WeightsFile, card_details, card_facts

from .. import theme

ORIGIN_WORDS = {"shipped": "shipped with vitrecon", "user": "your weights", "other": "a training run's checkpoint"}


def _row(label: str, value) -> str:
    if value in (None, "", {}):
        return ""
    return (f"<tr><td style='color:{theme.MUTED}; padding-right:10px; white-space:nowrap' valign='top'>{label}</td>"
            f"<td>{value}</td></tr>")


def _num(x, fmt: str) -> str:
    return format(x, fmt) if isinstance(x, (int, float)) else "—"


def metrics_table(validation: dict) -> str:
    """Validation metrics per mask, the zero-filled SSIM beside the network's."""
    if not validation:
        return ""
    head = "".join(f"<th align='right' style='padding:0 6px'>{h}</th>"
                   for h in ("SSIM", "PSNR", "NMSE", "zero-filled SSIM"))
    rows = "".join(f"<tr><td style='padding-right:8px'>{escape(label)}</td>"
                   f"<td align='right'><b>{_num(m['ssim'], '.4f')}</b></td>"
                   f"<td align='right'>{_num(m['psnr'], '.2f')}</td><td align='right'>{_num(m['nmse'], '.4f')}</td>"
                   f"<td align='right' style='color:{theme.MUTED}'>{_num(m['zero_filled_ssim'], '.4f')}</td></tr>"
                   for label, m in validation.items())
    return f"<table cellspacing='0' cellpadding='1'><tr><th></th>{head}</tr>{rows}</table>"


def checksum_text(f: WeightsFile) -> str:
    text = f"<code>{f.sha256}</code>"
    expected = f.expected_sha256
    if expected is not None:
        ok = expected == f.sha256
        text += (f" <span style='color:{theme.DEMO if ok else theme.ERROR}'>"
                 f"{'as listed in SHA256SUMS' if ok else 'differs from SHA256SUMS: ' + expected}</span>")
    return text


def card_html(f: WeightsFile, run: str | None = None) -> str:
    """The card of ``f`` (``run``: the name of the training run it belongs to, if any)."""
    card = f.card or {}
    facts, details = card_facts(card), card_details(card)
    title = escape(f.model or "no model card")
    badge = f" <span style='color:{theme.ACCENT}'>default for {escape(f.model)}</span>" if f.default else ""
    where = ORIGIN_WORDS.get(f.origin, f.origin) + (f" ({escape(run)})" if run else "")
    params = card.get("parameters")
    rows = "".join([
        _row("file", escape(str(f.path))),
        _row("kind", where),
        _row("sha256", checksum_text(f)),
        _row("parameters", f"{params:,}" if isinstance(params, int) else None),
        _row("steps", f"{facts['steps']:,}" if isinstance(facts["steps"], int) else None),
        _row("data", escape(facts["training_data"]) if facts["training_data"] else None),
        _row("recipe", escape(details["recipe"]) if details["recipe"] else None),
        _row("selection", escape(str(details["selection"])) if details["selection"] else None),
        _row("date", escape(str(details["date"])) if details["date"] else None),
        _row("validation SSIM", _num(facts["val_ssim"], ".4f") if facts["val_ssim"] is not None else None),
    ])
    missing = "" if f.card else (f"<p style='color:{theme.WARN}'>This file has no model card: vitrecon cannot say "
                                 "what it holds or how it was trained.</p>")
    sections = [("Validation", details["validation"]),
                *((f"Evaluation: {name}", masks) for name, masks in details["evaluation"].items())]
    tables = "".join(f"<p style='margin:8px 0 2px 0'><b>{escape(head)}</b></p>{metrics_table(masks)}"
                     for head, masks in sections if masks)
    return (f"<h3 style='margin:0'>{title}{badge}</h3>{missing}<table cellspacing='0' cellpadding='2'>{rows}</table>"
            + tables)
