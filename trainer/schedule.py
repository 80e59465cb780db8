"""When things happen in a training run: the learning rate over the run (OneCycle), when fine-tuning
validates, and the order of batches in an epoch, which a resumed run continues mid-epoch."""
from __future__ import annotations

import itertools
import math

from torch.utils.data import DistributedSampler, Sampler


class ResumableSampler(Sampler):
    """A ``DistributedSampler`` whose next epoch can start after its first ``skip`` indices, so a
    resumed run continues mid-epoch with the very batches it had not yet seen."""

    def __init__(self, base: DistributedSampler):
        self.base = base
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.base.set_epoch(epoch)
        self.skip = skip

    def __iter__(self):
        return itertools.islice(self.base, self.skip, None)

    def __len__(self) -> int:
        return len(self.base) - self.skip


def one_cycle(step: int, total: int, pct_start: float, div_factor: float, final_div_factor: float,
              anneal: str) -> float:
    """OneCycle learning-rate factor (times max_lr) at ``step`` of ``total``: from 1/div_factor up to
    1 over the first pct_start of the run, then down to 1/(div_factor x final_div_factor). Written
    out because ``OneCycleLR`` divides by zero or goes negative for runs of a few steps."""
    start = 1.0 / div_factor
    end = start / final_div_factor
    up = max(1, round(pct_start * total)) if pct_start > 0 else 0
    if step < up:
        return start + (1.0 - start) * step / up
    t = min(1.0, (step - up) / max(1, total - up))
    if anneal == "cos":
        return end + (1.0 - end) * (1 + math.cos(math.pi * t)) / 2
    return 1.0 + (end - 1.0) * t


def validation_due(cfg, step: int, epoch: int, batch_in_epoch: int) -> bool:
    """Fine-tuning validates every ``val_every_epochs`` epochs (the paper: 5) and, if set, every
    ``val_every_steps`` optimizer steps."""
    every_epochs = getattr(cfg, "val_every_epochs", None)
    every_steps = getattr(cfg, "val_every_steps", None)
    epoch_end = batch_in_epoch == 0 and bool(every_epochs) and epoch % every_epochs == 0
    return epoch_end or bool(every_steps and step % every_steps == 0)
