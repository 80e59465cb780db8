"""Progress on rank 0: a tqdm bar in a terminal, a JSON-lines event stream, TensorBoard scalars.

Every event is one JSON object per line with ``event`` and ``time`` (Unix seconds) keys:

- ``start``: pid and host (of rank 0), task, total_steps, world_size, device, precision, out_dir, config
- ``step``: step, epoch, loss, lr, images_per_s, eta_s, elapsed_s
- ``validation``: step, epoch, ssim, metrics (per mask: ssim/psnr/nmse and zero-filled), best
- ``checkpoint``: step, path, kind (state, final, best)
- ``warning``: message (e.g. unusable files skipped)
- ``stopped``: step, signal, path (a signal saved a checkpoint and ended the run)
- ``end``: step, final, best, seconds

The viewer reads this stream (``--progress-json -`` writes it to stdout; everything else then goes
to stderr). Other ranks construct a ``Progress`` too, but it does nothing there.
"""
from __future__ import annotations

import json
import math
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm


def _finite(x: Any) -> Any:
    """JSON has no NaN/Inf: write them as strings so every line still parses."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


class Progress:
    def __init__(self, enabled: bool, json_path: str | None = None, tensorboard_dir: str | Path | None = None,
                 total: int | None = None, desc: str = "train", unit: str = "step"):
        self.enabled = enabled
        self._json: TextIO | None = None
        self._json_path: Path | None = None
        self._own_json = False
        self._tb = None
        self._bar = None
        self.total = total
        if not enabled:
            return
        if json_path == "-":
            self._json = sys.stdout
        elif json_path:
            self._json_path = Path(json_path)  # opened with the first event: a refused start leaves no folder
            self._own_json = True
        if tensorboard_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(tensorboard_dir))
        # disable=None: a bar only when stderr is a terminal (not in logs, pipes or the viewer)
        self._bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=None, dynamic_ncols=True)

    def set_total(self, total: int) -> None:
        self.total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def emit(self, event: str, **fields: Any) -> None:
        if self.enabled and self._json is None and self._json_path is not None:
            self._json_path.parent.mkdir(parents=True, exist_ok=True)
            self._json = open(self._json_path, "a", buffering=1)  # line-buffered: a reader sees whole lines
        if not self.enabled or self._json is None:
            return
        self._json.write(json.dumps(_finite({"event": event, "time": round(time.time(), 3), **fields}),
                                    default=str) + "\n")
        self._json.flush()

    def message(self, text: str) -> None:
        """A line for the person at the terminal (stderr, above the bar)."""
        if self.enabled:
            tqdm.write(text, file=sys.stderr)

    def warning(self, text: str) -> None:
        if self.enabled:
            self.message(f"warning: {text}")
            self.emit("warning", message=text)

    def start(self, **fields: Any) -> None:
        if self._bar is not None and fields.get("step"):
            self._bar.update(fields["step"] - self._bar.n)
        # which process runs it, so that a viewer can tell a run that still runs from one that died
        self.emit("start", pid=os.getpid(), host=socket.gethostname(), **fields)

    def step(self, step: int, epoch: int, loss: float, lr: float, images_per_s: float, eta_s: float,
             elapsed_s: float) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(step - self._bar.n)
            self._bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", img_s=f"{images_per_s:.1f}", refresh=False)
        self.emit("step", step=step, epoch=epoch, loss=loss, lr=lr, images_per_s=images_per_s,
                  eta_s=eta_s, elapsed_s=elapsed_s)
        if self._tb is not None:
            self._tb.add_scalar("train/loss", loss, step)
            self._tb.add_scalar("train/lr", lr, step)
            self._tb.add_scalar("train/images_per_s", images_per_s, step)

    def validation(self, step: int, epoch: int, report: dict[str, Any], best: bool) -> None:
        if not self.enabled:
            return
        metrics = report["masks"]
        self.emit("validation", step=step, epoch=epoch, ssim=report["ssim"], metrics=metrics,
                  num_volumes=report["num_volumes"], best=best)
        summary = ", ".join(f"{k}: SSIM {m['ssim']:.4f} PSNR {m['psnr']:.2f}" for k, m in metrics.items())
        self.message(f"validation at step {step}: {summary}" + (" (best so far)" if best else ""))
        if self._tb is not None:
            self._tb.add_scalar("val/ssim", report["ssim"], step)
            for label, m in metrics.items():
                for key in ("ssim", "psnr", "nmse"):
                    self._tb.add_scalar(f"val/{label}/{key}", m[key], step)

    def checkpoint(self, step: int, path: Path, kind: str) -> None:
        self.emit("checkpoint", step=step, path=str(path), kind=kind)

    def volume_done(self, done: int, total: int) -> None:
        """Evaluation progress (one event per volume this rank scored)."""
        self.emit("volume", done=done, total=total)
        if self._bar is not None:
            self._bar.total = total
            self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._own_json and self._json is not None:
            self._json.close()
        self._json, self._json_path = None, None
