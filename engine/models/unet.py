"""The U-Net baseline: fastmri's ``Unet`` (four pooling layers) inside the paper's wrapper."""
from __future__ import annotations

from fastmri.models import Unet

__all__ = ["Unet"]
