"""Training from the viewer: a Train menu whose dialogs are built from the trainer's config fields,
runs started as separate processes (``supervise`` around ``python -m trainer``), a Runs dock with live
curves from each run's JSON-lines events, and loading a run's checkpoint into a network slot.

The app never imports the trainer (DESIGN.md): what it needs to know (the config fields, whether a
data folder is usable) it asks ``python -m trainer.describe`` in a child process (``query``).
This package's ``__init__`` and ``supervise`` import no Qt, so that ``supervise`` starts quickly.
"""
