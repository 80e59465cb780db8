"""Options of the commands that open raw-data files (``info``, ``recon``): which ISMRMRD repetition,
contrast and set to read. fastMRI files hold one of each and ignore them."""
from __future__ import annotations

import argparse

# option, open_scan's keyword, what it selects
SELECTION = (("--repetition", "repetition", "repetition"),
             ("--contrast", "contrast", "contrast"),
             ("--set", "set_index", "set"))


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    for option, keyword, what in SELECTION:
        parser.add_argument(option, dest=keyword, type=int, default=0, metavar="N",
                            help=f"ISMRMRD: {what} to read (default 0)")


def selection(args: argparse.Namespace) -> dict[str, int]:
    """``open_scan``'s keywords for the selection the options ask for."""
    return {keyword: getattr(args, keyword) for _, keyword, _ in SELECTION}
