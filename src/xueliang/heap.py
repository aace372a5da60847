"""The long-lived heap kept out of the cyclic garbage collector's full collections.

Start-up leaves a large heap that lives as long as the process (the app and its routes,
SQLAlchemy's metadata, the registrar's mirror of the registry), and so do libraries imported
later on first use (the reports' matplotlib, fpdf and openpyxl with their caches). Freezing
what survives a collection keeps the collector from re-scanning all of it in every full
collection; those pauses would otherwise land in the middle of signalling bursts (a
registration storm after a restart). Objects freed by reference counting are still freed.

What a burst itself leaves is long-lived too: ten thousand devices joining leave their sessions,
presence, catalogs and history behind. CPython runs a full collection after every ten of the
middle generation's once the objects waiting for one are a quarter of those already scanned, so a
heap growing that fast is scanned whole again and again: in a mass join of answering devices 13
full collections took a fifth of the CPU (docs/performance.md). :data:`FULL_EVERY` spaces them
out; cycles that reach the old generation wait longer to be freed.
"""

from __future__ import annotations

import gc

#: Collections of the middle generation between two full ones (CPython's default: 10).
FULL_EVERY = 100


def freeze() -> None:
    """Collect, then move everything that survived to the permanent generation."""
    gc.collect()
    gc.freeze()


def started() -> None:
    """What the server does once every component has started: freeze the start-up heap and
    space out the full collections (:data:`FULL_EVERY`)."""
    freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_EVERY)
