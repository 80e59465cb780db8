"""The engine's ReconSession without Qt: stages in order, the latest request wins, caches, prefetch,
opening and superseded opens, failures, and close."""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from engine import Engine, Listener, MaskSpec, ModelRef, ReconRequest, ReconSession, Update, open_scan
from fastmri_files import write_train


class Recorder(Listener):
    def __init__(self):
        self.updates: list[Update] = []
        self.failures: list[str] = []
        self.opened: list = []
        self.open_failures: list[tuple[str, str]] = []
        self.busy: list[bool] = []

    def on_update(self, update):
        self.updates.append(update)

    def on_failed(self, message):
        self.failures.append(message)

    def on_opened(self, scan):
        self.opened.append(scan)

    def on_open_failed(self, what, message):
        self.open_failures.append((what, message))

    def on_busy(self, busy):
        self.busy.append(busy)


def pump(session: ReconSession, until, timeout: float = 60.0) -> None:
    """Run the session's answers on this (the owner's) thread until ``until()``."""
    end = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < end, "the session did not answer in time"
        session.inbox.run_pending(timeout=0.05)


@pytest.fixture
def session():
    rec = Recorder()
    s = ReconSession(Engine(device="cpu", precision="fp32"), rec)
    s.recorder = rec
    yield s
    assert s.close(30)


@pytest.fixture
def opened(session, tmp_path):
    path = write_train(tmp_path / "file_brain_session.h5", slices=4, coils=3)
    session.open(lambda: open_scan(path), str(path))
    pump(session, lambda: session.scan is not None)
    return session


def request(session, slice_index=0, models=(ModelRef("unet-s"),), seed=1, **kw) -> ReconRequest:
    return ReconRequest(session.scan, slice_index, MaskSpec("random", 4, seed=seed), tuple(models), "cpu", **kw)


def test_open_reports_the_scan_and_busy_goes_back_to_idle(opened):
    rec = opened.recorder
    assert rec.opened == [opened.scan] and opened.scan.num_slices == 4
    assert rec.busy == [True, False] and not opened.busy


def test_a_request_arrives_stage_by_stage_and_matches_one_engine_call(opened):
    req = request(opened, models=(ModelRef("unet-s"), ModelRef("vit-s")))
    opened.submit(req)
    assert opened.busy
    pump(opened, lambda: opened.last_update is not None and opened.last_update.complete)
    ups = opened.recorder.updates
    early = [u for u in ups if "metrics" in u.pending]  # images before the metrics' first import
    assert all(u.result.zero_filled_metrics is None for u in early) and len(early) <= 1
    assert [u.pending for u in ups if u not in early] == [("unet-s", "vit-s"), ("vit-s",), ()]
    whole = opened.engine.reconstruct(req)
    last = opened.last_update.result
    np.testing.assert_allclose(last.zero_filled, whole.zero_filled, rtol=1e-5)
    for mine, theirs in zip(last.outputs, whole.outputs):
        np.testing.assert_allclose(mine.image, theirs.image, rtol=1e-4, atol=1e-5)
    assert not opened.busy and opened.recorder.busy[-1] is False


def test_a_request_seen_before_comes_from_the_caches_at_once(opened):
    first = request(opened)
    opened.submit(first)
    pump(opened, lambda: opened.last_update is not None and opened.last_update.complete)
    again = request(opened)  # the same view under a new id
    runs = []
    run = opened.stages.run
    opened.stages.run = lambda *a: (runs.append(a), run(*a))
    opened.submit(again)  # answered on this thread, before any pump
    assert opened.last_update.request is again and opened.last_update.complete
    assert opened.last_update.cached == ("zero-filled", "unet-s") and runs == []


def test_the_latest_request_wins_and_superseded_updates_are_dropped(opened):
    gate = threading.Event()
    base = opened.engine.reconstruct_base

    def slow_base(req, metrics=True):
        gate.wait(10)
        return base(req, metrics)
    opened.engine.reconstruct_base = slow_base
    reqs = [request(opened, seed=s) for s in range(10, 20)]
    for r in reqs:
        opened.submit(r)
    gate.set()
    pump(opened, lambda: opened.last_update is not None and opened.last_update.complete)
    seen = {u.request.request_id for u in opened.recorder.updates}
    assert opened.last_update.request is reqs[-1]
    assert len(seen) <= 2 and reqs[-1].request_id in seen  # the one running, then the last one
    ids = [u.request.request_id for u in opened.recorder.updates]
    assert ids == sorted(ids)  # never an older request after a newer one


def test_scrolling_prefetches_the_next_slice_in_that_direction(opened):
    for index in (1, 2):
        opened.submit(request(opened, slice_index=index))
        pump(opened, lambda: opened.last_update is not None and opened.last_update.complete
             and opened.last_update.request.slice_index == index)
    ahead = request(opened, slice_index=3)
    pump(opened, lambda: (u := opened.cached_update(ahead)) is not None and u.complete)
    behind = request(opened, slice_index=0)
    assert opened.cached_update(behind) is None  # nothing computed against the direction


def test_prefetch_stays_off_when_disabled(opened):
    opened.prefetch_enabled = False
    for index in (1, 2):
        opened.submit(request(opened, slice_index=index))
        pump(opened, lambda: opened.last_update is not None and opened.last_update.complete
             and opened.last_update.request.slice_index == index)
    time.sleep(0.5)
    opened.inbox.run_pending()
    assert opened.cached_update(request(opened, slice_index=3)) is None


def test_no_prefetch_after_a_change_of_view(opened):
    """A new mask on the next slice is not scrolling: nothing is computed ahead."""
    opened.submit(request(opened, slice_index=1, seed=1))
    pump(opened, lambda: opened.last_update is not None and opened.last_update.complete)
    opened.submit(request(opened, slice_index=2, seed=2))
    pump(opened, lambda: opened.last_update is not None and opened.last_update.complete
         and opened.last_update.request.slice_index == 2)
    time.sleep(0.5)
    opened.inbox.run_pending()
    assert opened.cached_update(request(opened, slice_index=3, seed=2)) is None


def test_a_failing_network_is_reported_and_the_others_still_run(opened, tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a checkpoint")
    req = request(opened, models=(ModelRef("unet-s", str(broken)), ModelRef("vit-s")))
    opened.submit(req)
    pump(opened, lambda: opened.last_update is not None and opened.last_update.complete)
    u = opened.last_update
    [(label, message)] = u.errors.items()
    assert label == "unet-s (broken.safetensors)" and "broken.safetensors" in message
    assert [o.ref.name for o in u.result.outputs] == ["vit-s"]


def test_a_failing_request_reaches_the_owner_as_one_sentence(opened):
    bad = ReconRequest(opened.scan, 0, None, (), "cpu", coil=99)
    opened.submit(bad)
    pump(opened, lambda: opened.recorder.failures)
    assert "coil 99 does not exist" in opened.recorder.failures[0]
    assert opened.latest is None and not opened.busy


def test_only_the_last_of_two_opens_is_reported_and_the_other_is_closed(session, tmp_path):
    a = write_train(tmp_path / "file_brain_a.h5", slices=2, coils=2)
    b = write_train(tmp_path / "file_brain_b.h5", slices=3, coils=2)
    scans, closed = [], []

    def opener(path):
        def open_it():
            scan = open_scan(path)
            close = scan.close
            scan.close = lambda: (closed.append(scan), close())
            scans.append(scan)
            return scan
        return open_it
    session.open(opener(a), str(a))
    session.open(opener(b), str(b))
    pump(session, lambda: session.scan is not None)
    pump(session, lambda: closed == [scans[0]], timeout=10)
    assert session.scan is scans[1] and session.recorder.opened == [scans[1]]


def test_an_open_that_fails_names_what_was_being_opened(session, tmp_path):
    missing = tmp_path / "nowhere.h5"
    session.open(lambda: open_scan(missing), str(missing))
    pump(session, lambda: session.recorder.open_failures)
    what, message = session.recorder.open_failures[0]
    assert what == str(missing) and "nowhere.h5" in message
    assert session.scan is None and not session.busy


def test_close_stops_the_worker_and_closes_the_scan(tmp_path):
    s = ReconSession(Engine(device="cpu"))
    path = write_train(tmp_path / "file_brain_close.h5", slices=2, coils=2)
    s.open(lambda: open_scan(path), str(path))
    pump(s, lambda: s.scan is not None)
    scan, closed = s.scan, []
    close = scan.close
    scan.close = lambda: (closed.append(True), close())
    assert s.close(10)
    assert closed == [True] and s.scan is None and not s._thread.is_alive()


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="no per-thread priorities here")
def test_the_worker_runs_nicer_than_its_owner_by_worker_nice():
    s = ReconSession(Engine(device="cpu"), worker_nice=3)
    seen = []
    s.post_call(lambda: seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
    pump(s, lambda: seen, timeout=10)
    assert seen == [os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) + 3]
    assert s.close(10)


class CountingEngine(Engine):
    """Notes every zero-filled stage the session asks for: (slice, with metrics)."""

    def __init__(self):
        super().__init__(device="cpu", precision="fp32")
        self.bases: list[tuple[int, bool]] = []

    def reconstruct_base(self, request, metrics=True):
        self.bases.append((request.slice_index, metrics))
        return super().reconstruct_base(request, metrics=metrics)


def _first_view(seen):
    def first(scan):
        seen.append(scan)
        return ReconRequest(scan, scan.num_slices // 2, MaskSpec("random", 4, seed=1), (), "cpu")
    return first


@pytest.mark.parametrize("metrics_ready", [False, True], ids=["metrics-not-imported", "metrics-imported"])
def test_the_first_view_is_computed_while_the_owner_handles_the_open(tmp_path, monkeypatch, metrics_ready):
    """``open(..., first=)``: the worker computes the first view's zero-filled stage once the scan is
    read; the owner's request for it then computes nothing twice (the images, or the whole stage
    when the metrics are ready at once)."""
    monkeypatch.setattr("engine.stages.metrics_loaded", lambda: metrics_ready)
    eng, rec, seen = CountingEngine(), Recorder(), []
    s = ReconSession(eng, rec)
    path = write_train(tmp_path / "file_brain_first.h5", slices=4, coils=3)
    s.open(lambda: open_scan(path), str(path), first=_first_view(seen))
    pump(s, lambda: s.scan is not None)
    end = time.monotonic() + 30
    while not (len(s.stages.quick_cache) or len(s.stages.base_cache)):  # computed on the worker after the open
        assert time.monotonic() < end
        time.sleep(0.01)
    s.submit(ReconRequest(s.scan, 2, MaskSpec("random", 4, seed=1), (), "cpu"))
    assert len(rec.updates) == 1  # shown at once, from what was computed ahead (without metrics: pending)
    assert rec.updates[0].complete == metrics_ready and rec.updates[0].result.zero_filled is not None
    pump(s, lambda: s.last_update is not None and s.last_update.complete)
    assert seen == [s.scan]
    assert eng.bases == ([(2, True)] if metrics_ready else [(2, False), (2, True)])
    assert sum("metrics" in u.pending for u in rec.updates) == (0 if metrics_ready else 1)  # drawn once
    first = rec.updates[0]
    assert first.request.slice_index == 2 and first.cached == ()  # computed for this view, not a cache's
    assert "zero-filled" in s.last_update.result.timings  # its times are this view's
    np.testing.assert_array_equal(first.result.zero_filled, s.last_update.result.zero_filled)
    assert s.close(30)


def test_no_first_view_for_a_scan_another_open_supersedes(session, tmp_path):
    a = write_train(tmp_path / "file_brain_a.h5", slices=2, coils=2)
    b = write_train(tmp_path / "file_brain_b.h5", slices=3, coils=2)
    gate, seen_a, seen_b = threading.Event(), [], []
    session.post_call(lambda: gate.wait(10))  # both opens wait behind this
    session.open(lambda: open_scan(a), str(a), first=_first_view(seen_a))
    session.open(lambda: open_scan(b), str(b), first=_first_view(seen_b))
    gate.set()
    pump(session, lambda: session.scan is not None and seen_b)
    assert seen_a == [] and seen_b == [session.scan] and session.scan.num_slices == 3


def test_a_first_view_that_fails_is_left_to_the_request(session, tmp_path, capfd):
    path = write_train(tmp_path / "file_brain_bad_first.h5", slices=2, coils=2)

    def first(scan):
        raise ValueError("no such mask")
    session.open(lambda: open_scan(path), str(path), first=first)
    pump(session, lambda: session.scan is not None)
    session.submit(request(session, models=()))
    pump(session, lambda: session.last_update is not None and session.last_update.complete)
    assert session.recorder.failures == [] and "Traceback" not in capfd.readouterr().err


def test_two_checkpoints_named_alike_are_told_apart_in_updates(opened, tmp_path):
    """Two runs' ``x/best`` files side by side, one of them broken: the error, the pending network and
    the times each belong to their own checkpoint (they used to share one label)."""
    from engine.checkpoints import save_checkpoint
    from engine.models import create_model

    good = save_checkpoint(create_model("unet-s"), tmp_path / "exp1" / "x" / "best", "unet-s")
    broken = tmp_path / "exp2" / "x" / "best.safetensors"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a checkpoint")
    refs = (ModelRef("unet-s", str(good)), ModelRef("unet-s", str(broken)))
    assert refs[0].label == refs[1].label
    req = request(opened, models=refs)
    opened.submit(req)
    pump(opened, lambda: opened.last_update is not None and opened.last_update.complete)
    u = opened.last_update
    assert list(u.errors) == ["unet-s (exp2/x/best.safetensors)"] and u.pending == ()
    assert [o.ref for o in u.result.outputs] == [refs[0]]
    assert "unet-s (exp1/x/best.safetensors)" in u.result.timings
