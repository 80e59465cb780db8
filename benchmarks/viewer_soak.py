"""Viewer soak: many random control changes, slice changes and file opens, in quick succession, in
the real main window (offscreen) with the networks (vit-s, unet-s) running. Checks that nothing
crashes, that the last display equals the last request, how long the event loop ever stalled, and
the resident memory at the start and the end.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/viewer_soak.py [--changes 1000] [--seed 0]
        [--files A.h5 B.h5 ...] [--out FILE.json]

Without ``--files`` it opens the three small generated samples (multi-coil, single-coil, ISMRMRD).
Between actions it runs the event loop for a random 0-40 ms, as a user clicking fast would, and
closes any error dialog the window shows (listed in the report: an engine error such as a mask that
samples nothing is not a failure; its dialog would otherwise wait for a click for ever); every
100 actions it prints the progress, the longest stall so far and the resident memory. The exit status
is 1 when the final display is not the final request or shows no network. Engine errors shown to the
user on the way (a mask that samples nothing, say) are listed, not failures.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from viewer_harness import ViewerHarness, busy_cores  # noqa: E402

SEEDS = (None, 0, 1, 2, 3, 17, 1234)


def random_change(rng: random.Random, state, kinds, num_slices: int, num_coils: int):
    """A random edit of ``state`` as one control would make it (returns the new state)."""
    what = rng.choice(["slice", "slice", "slice", "seed", "acceleration", "kind", "center", "coil"])
    if what == "slice":
        step = rng.choice([-1, 1, 1, rng.randrange(-num_slices, num_slices)])
        return state.replace(slice_index=min(max(state.slice_index + step, 0), num_slices - 1))
    if what == "seed":
        return state.replace(seed=rng.choice(SEEDS))
    if what == "acceleration":
        return state.replace(acceleration=float(rng.choice([2, 3, 4, 6, 8, 12])))
    if what == "kind":
        return state.with_mask_kind(rng.choice(kinds))
    if what == "center":
        return state.replace(center_fraction=rng.choice([None, 0.04, 0.08, 0.16]))
    return state.replace(coil=rng.choice([None] + list(range(min(num_coils, 4)))) if num_coils > 1 else None)


class Soak(ViewerHarness):
    """The harness, with the window's error dialogs closed as a user would and its errors listed."""

    def __init__(self, device: str):
        from PySide6.QtCore import QTimer

        super().__init__(device, phase="start")
        self.errors: list[str] = []
        self.c.failed.connect(self.errors.append)
        self.c.open_failed.connect(lambda what, msg: self.errors.append(f"{what}: {msg}"))
        self.dialogs: list[str] = []  # the error dialogs the window showed (closed as a user would)
        self._closer = QTimer()
        self._closer.setInterval(50)
        self._closer.timeout.connect(self._close_dialog)
        self._closer.start()

    def _close_dialog(self) -> None:
        from PySide6.QtWidgets import QApplication

        dialog = QApplication.activeModalWidget()
        if dialog is not None:
            text = getattr(dialog, "text", lambda: dialog.windowTitle())()
            self.dialogs.append(f"{dialog.windowTitle()}: {text}")
            dialog.reject()


def rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def sample_files(folder: Path) -> list[Path]:
    from engine.samples import build_samples

    return list(build_samples(folder, size="small").values())


def final_display_matches(soak: Soak, wanted, path: Path) -> list[str]:
    """What differs between the last request and what the window shows (empty: nothing)."""
    c, grid = soak.c, soak.window.grid
    u = c.last_update
    if c.latest is None or u is None or u.request is not c.latest or not u.complete:
        return [f"the final request was not drawn ({soak.errors[-1] if soak.errors else 'no result'})"]
    problems = []
    if c.scan.info.path.resolve() != path.resolve():
        problems.append(f"open scan {c.scan.info.path}, asked for {path}")
    if soak.window.controls.state != wanted:
        problems.append(f"controls show {soak.window.controls.state}, asked for {wanted}")
    r = u.request
    if (r.slice_index, r.coil, r.mask) != (wanted.slice_index, wanted.coil, wanted.request(c.scan).mask):
        problems.append(f"the result is of slice {r.slice_index}, coil {r.coil}, mask {r.mask}")
    if grid.last_update is not u:
        problems.append("the panes show another update than the last result")
    image = u.coil.image if u.coil is not None else u.result.zero_filled
    if grid.panes["zero-filled"].data is not image:
        problems.append("the zero-filled pane shows another image")
    for o in u.result.outputs:
        if grid.panes[o.family].data is not o.image:
            problems.append(f"the {o.family} pane shows another image")
    return problems


def random_action(soak: Soak, rng: random.Random, files: list[Path], i: int, open_share: float,
                  counts: dict[str, int]) -> Path | None:
    """One random action: open a file (returned) or change a control as a user would."""
    from engine import MASK_KINDS

    window, c = soak.window, soak.c
    if rng.random() < open_share:
        path = rng.choice(files)
        soak.phase = f"{i}: open {path.name}"
        window.open_file(path)
        counts["opens"] += 1
        return path
    if c.scan is not None:
        info, state = c.scan.info, window.controls.state
        kinds = list(MASK_KINDS) if window.controls.retrospective else [state.mask_kind]
        new = random_change(rng, state, kinds, info.num_slices, info.num_coils)
        soak.phase = f"{i}: " + ", ".join(f"{k}={getattr(new, k)}" for k in ("slice_index", "mask_kind",
                                          "acceleration", "center_fraction", "seed", "coil")
                                          if getattr(new, k) != getattr(state, k))
        window.controls.apply(new)
        counts["changes"] += 1
    return None


def request_final(soak: Soak, rng: random.Random):
    """The final request, once the last open is done: a random slice with a mask that fits every sample
    (the last random one may sample nothing: an error, not a display); waits for it and returns it."""
    window, c = soak.window, soak.c
    soak.pump(lambda: not soak.opening() and c.scan is not None, 900.0)
    final = window.controls.state.replace(slice_index=rng.randrange(c.scan.info.num_slices))
    if window.controls.retrospective:
        final = final.replace(mask_kind="random", acceleration=4.0, center_fraction=None)
    window.controls.apply(final)
    wanted, failures = window.controls.state, len(soak.errors)
    soak.pump(lambda: soak.idle() or len(soak.errors) > failures, timeout=600)
    return wanted


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--changes", type=int, default=1000, help="random actions (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--files", nargs="*", help="scans to open (default: the small generated samples)")
    p.add_argument("--open-share", type=float, default=0.05, help="share of actions that open a file")
    p.add_argument("--device", default="auto")
    p.add_argument("--busy", type=int, default=0, help="processes keeping cores busy meanwhile (other jobs)")
    p.add_argument("--out", help="also write the figures as JSON here")
    args = p.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    rng = random.Random(args.seed)
    data = tempfile.TemporaryDirectory()
    files = [Path(f) for f in args.files] if args.files else sample_files(Path(data.name))
    soak = Soak(args.device)
    current = files[0]
    soak.window.open_file(current)
    soak.pump(lambda: soak.c.scan is not None and soak.idle(), 900.0)
    rss_start, t0 = rss_mib(), time.perf_counter()
    print(f"opened {current.name}; resident memory {rss_start:.0f} MiB; {args.changes} actions", flush=True)
    counts = {"opens": 0, "changes": 0}
    with busy_cores(args.busy):
        soak.run_for(1.0 if args.busy else 0.0)
        soak.start_heartbeat()
        for i in range(args.changes):
            current = random_action(soak, rng, files, i, args.open_share, counts) or current
            soak.run_for(rng.uniform(0.0, 0.04))
            if (i + 1) % 100 == 0:
                print(f"{i + 1} actions: longest stall {soak.max_gap * 1000:.0f} ms, resident {rss_mib():.0f} MiB",
                      flush=True)
        wanted = request_final(soak, rng)
    soak.heartbeat.stop()
    problems = final_display_matches(soak, wanted, current)
    report = {"actions": args.changes, **counts, "busy_processes": args.busy, "worker_nice": soak.c.session.worker_nice, "seconds": round(time.perf_counter() - t0, 1),
              "max_event_loop_stall_ms": round(soak.max_gap * 1000, 1),
              "stalls_over_100ms": [(round(gap * 1000), phase) for gap, phase in soak.stalls],
              "rss_start_mib": round(rss_start, 1), "rss_end_mib": round(rss_mib(), 1),
              "final_display_matches": not problems, "problems": problems,
              "errors_reported": {e: soak.errors.count(e) for e in dict.fromkeys(soak.errors)},
              "dialogs_closed": soak.dialogs,
              "networks_in_final_display": [o.family for o in soak.c.last_update.result.outputs] if not problems else [],
              "load_average": os.getloadavg(), "files": [f.name for f in files]}
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
    soak.close()
    data.cleanup()
    return 1 if problems or not report["networks_in_final_display"] else 0


if __name__ == "__main__":
    sys.exit(main())
