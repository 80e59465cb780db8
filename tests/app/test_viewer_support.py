"""Shared helpers of the viewer tests (no tests here): small generated fastMRI files and a window
fixture that runs the real Engine with the registered vit-s and unet-s on tiny images."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine import Engine
from engine.samples.fastmri_writer import write_fastmri

SLICES, COILS, H, W = 3, 4, 64, 48


def phantom_kspace(slices=SLICES, coils=COILS, h=H, w=W, seed=0, peak=3e-4) -> tuple[np.ndarray, np.ndarray]:
    """complex64 k-space ``[slices, coils, h, w]`` of a few ellipses seen by smooth coils, and its RSS
    reference ``[slices, h, w]`` (fastMRI-like magnitudes, ~1e-4)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    y, x = (yy - h / 2) / (h / 2), (xx - w / 2) / (w / 2)
    imgs = []
    for s in range(slices):
        img = (x**2 / 0.7 + y**2 / 0.85 < 1).astype(np.float32) * 0.6
        img += (((x - 0.2) ** 2 / 0.05 + (y + 0.1 * s) ** 2 / 0.1) < 1) * 0.4
        img += (((x + 0.3) ** 2 / 0.02 + (y - 0.3) ** 2 / 0.03) < 1) * (0.8 + 0.1 * s)
        img += 0.02 * rng.standard_normal((h, w))
        imgs.append(img * np.exp(1j * 0.5 * x))
    imgs = np.stack(imgs)
    sens = np.stack([np.exp(-((x - np.cos(2 * np.pi * c / coils)) ** 2 + (y - np.sin(2 * np.pi * c / coils)) ** 2))
                     * np.exp(1j * c * 0.3) for c in range(coils)])
    sens /= np.sqrt((np.abs(sens) ** 2).sum(0, keepdims=True))
    coil_imgs = (imgs[:, None] * sens[None] * peak).astype(np.complex64)
    t = torch.from_numpy(coil_imgs)
    k = torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(t, dim=(-2, -1)), norm="ortho"), dim=(-2, -1))
    rss = np.sqrt((np.abs(coil_imgs) ** 2).sum(1)).astype(np.float32)
    return k.numpy(), rss


def write_scan(path: Path, *, undersampled: bool = False, **kw) -> Path:
    """A small multi-coil fastMRI file (fully sampled with ``reconstruction_rss``, or a test file with
    a stored mask and no reference)."""
    k, rss = phantom_kspace(**kw)
    if undersampled:
        w = k.shape[-1]
        mask = np.zeros(w, dtype=bool)
        mask[::4] = True
        mask[w // 2 - 3 : w // 2 + 3] = True
        return write_fastmri(path, k, mask=mask, acceleration=4, num_low_frequency=6)
    return write_fastmri(path, k, reference=rss)


def wait_until(qtbot, predicate, timeout: float = 60.0) -> None:
    qtbot.waitUntil(predicate, timeout=int(timeout * 1000))


def wait_complete(qtbot, window, timeout: float = 60.0) -> None:
    """Until the latest request of ``window`` is fully displayed."""
    c = window.controller
    qtbot.waitUntil(lambda: c.state == window.controls.state  # the throttled submit happened
                    and c.latest is not None and c.last_update is not None
                    and c.last_update.request is c.latest and c.last_update.complete and not c.busy,
                    timeout=int(timeout * 1000))


@pytest.fixture(scope="session")
def engine():
    """One Engine for the session (its model cache makes later tests fast); CPU."""
    torch.set_num_threads(1)
    return Engine(device="cpu")


@pytest.fixture
def scan_file(tmp_path) -> Path:
    return write_scan(tmp_path / "file_brain_small.h5")


@pytest.fixture
def window(qtbot, engine, tmp_path, monkeypatch):
    """The main window on the session Engine. Message boxes are recorded in ``window.dialogs``
    instead of blocking the test (a test may patch them again to look closer)."""
    from PySide6.QtWidgets import QMessageBox

    from app.gui import create_app
    from app.gui.main_window import MainWindow
    from app.gui.core.settings import ViewerSettings
    from app.gui.core.state import ViewState

    create_app()
    w = MainWindow(engine=engine, settings=ViewerSettings(tmp_path / "viewer.ini"),
                   state=ViewState(device="cpu"))
    w.dialogs = []
    for name in ("warning", "information", "critical"):
        monkeypatch.setattr(QMessageBox, name, lambda parent, title, text, *a, _n=name: w.dialogs.append((title, text)))
    monkeypatch.setattr(QMessageBox, "question", lambda *a: w.dialogs.append(a[1:3]) or QMessageBox.No)
    w.controller.prefetch_enabled = False  # tests compare exact requests; prefetch has its own test
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    yield w
    w.close()


def open_and_wait(qtbot, window, path) -> None:
    with qtbot.waitSignal(window.controller.scan_opened, timeout=30000):
        window.open_file(path)
    wait_complete(qtbot, window)
