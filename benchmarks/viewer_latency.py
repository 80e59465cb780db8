"""Viewer latency: from a control change to every pane updated, in the real main window (offscreen),
with vit-s and unet-s on a 320x320 slice of the bundled multi-coil sample (12 coils, 640x320 k-space).

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/viewer_latency.py [--repeats 7] [--out FILE.json]

Scenarios, each timed from the change (as a widget would make it) until the GUI thread has drawn it:
- ``mask``: a new mask seed, nothing cached: the zero-filled stage, then both networks;
  ``first`` is when the zero-filled image, k-space and metrics are drawn, ``all`` every pane;
- ``slice``: the next slice while scrolling, after the viewer had time to prefetch it;
- ``revisit``: back to a mask seen before (the stage caches);
- ``gain``: an error-map gain change (display only).
A 10 ms heartbeat timer on the GUI thread records the longest stall of the event loop meanwhile.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--file", help="scan to use (default: the bundled multi-coil sample)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", help="also write the figures as JSON here")
    args = p.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, QTimer

    from app.gui import create_app
    from app.gui.main_window import MainWindow
    from app.gui.core.settings import ViewerSettings
    from app.gui.core.state import ViewState

    app = create_app()
    tmp = tempfile.TemporaryDirectory()
    window = MainWindow(settings=ViewerSettings(Path(tmp.name) / "viewer.ini"), state=ViewState(device=args.device))
    window.resize(1600, 1000)
    window.show()
    c = window.controller
    marks: dict[str, float] = {}

    def on_update(update):  # connected after the window's own handler: runs once the panes are drawn
        if c.latest is not None and update.request is c.latest:
            marks.setdefault("first", time.perf_counter())
            if update.complete:
                marks.setdefault("all", time.perf_counter())

    c.updated.connect(on_update)
    gaps = [0.0]
    last = [time.perf_counter()]

    phase = ["open"]
    stalls = []

    def beat():
        now = time.perf_counter()
        gaps.append(now - last[0])
        if now - last[0] > 0.1:
            stalls.append((round(now - last[0], 3), phase[0]))
        last[0] = now

    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(beat)

    def pump(until, timeout=600.0):
        deadline = time.monotonic() + timeout
        while not until():
            # Block until the next event, as the application's own event loop does: a loop that
            # polls would keep one of the two cores busy and slow the worker's torch threads.
            app.processEvents(QEventLoop.AllEvents | QEventLoop.WaitForMoreEvents)
            if time.monotonic() > deadline:
                raise TimeoutError("the viewer did not finish in time")

    def idle():
        return (c.last_update is not None and c.last_update.request is c.latest and c.last_update.complete
                and c.state == window.controls.state)

    window.open_file(args.file) if args.file else window.open_sample()
    pump(lambda: c.scan is not None and idle())
    info = c.scan.info
    print(f"scan {info.path.name}: {info.num_slices} slices x {info.num_coils} coils, k-space "
          f"{info.kspace_shape[0]}x{info.kspace_shape[1]}, images {info.crop_size[0]}x{info.crop_size[1]}; "
          f"device {c.last_update.result.device}", flush=True)

    def change(**kw):
        phase[0] = str(kw)
        marks.clear()
        t0 = time.perf_counter()
        window.controls.apply(window.controls.state.replace(**kw))
        pump(idle)
        return marks["first"] - t0, marks["all"] - t0

    last[0] = time.perf_counter()
    heartbeat.start()
    results: dict[str, list[float]] = {"mask_first": [], "mask_all": [], "slice_all": [], "revisit_all": [],
                                       "gain": []}
    for i in range(args.repeats):  # warm: models loaded by the first request above
        first, done = change(seed=1000 + i)
        results["mask_first"].append(first)
        results["mask_all"].append(done)
        worker = c.last_update.result.timings.get("total", 0.0)
        print(f"mask change {i + 1}: first panes {first * 1000:.0f} ms, all panes {done * 1000:.0f} ms "
              f"(worker {worker * 1000:.0f} ms)", flush=True)
    for i in range(args.repeats):
        results["revisit_all"].append(change(seed=1000 + i)[1])
    c.prefetch_enabled = True
    start = max(0, info.num_slices // 2 - args.repeats // 2 - 1)
    change(slice_index=start)
    change(slice_index=start + 1)  # scrolling forward: the viewer prefetches the slice after
    for i in range(args.repeats):
        nxt = window.controls.state.slice_index + 1
        if nxt >= info.num_slices:
            break
        ahead = window.controls.state.request(c.scan, slice_index=nxt)
        # a reader looks at a slice for a while; meanwhile the viewer computes the next one
        pump(lambda: (u := c.session.cached_update(ahead)) is not None and u.complete, 300)
        results["slice_all"].append(change(slice_index=nxt)[1])
    for g in (10, 2, 20, 5):
        t0 = time.perf_counter()
        window.display_panel.gain.setValue(g)
        app.processEvents()
        results["gain"].append(time.perf_counter() - t0)
    heartbeat.stop()
    summary = {k: {"median_s": statistics.median(v), "p95_s": pct(v, 0.95), "n": len(v)} for k, v in results.items()}
    summary["max_event_loop_stall_s"] = max(gaps)
    timings = c.last_update.result.timings
    report = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "load_average": os.getloadavg(), "note": "shared with other jobs while measured"},
        "scan": {"file": info.path.name, "coils": info.num_coils, "kspace": list(info.kspace_shape),
                 "image": list(info.crop_size)},
        "models": [r.name for r in c.latest.models], "device": c.last_update.result.device,
        "results": summary, "last_stage_timings_s": timings,
    }
    print(f"\n{'scenario':14s} {'median':>9s} {'p95':>9s}   n")
    for k, v in summary.items():
        if isinstance(v, dict):
            print(f"{k:14s} {v['median_s'] * 1000:8.0f}ms {v['p95_s'] * 1000:8.0f}ms  {v['n']}")
    print(f"longest event-loop stall: {max(gaps) * 1000:.0f} ms; load average {os.getloadavg()}")
    if stalls:
        print("stalls over 100 ms (s, during):", stalls)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
        print(f"wrote {args.out}")
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
