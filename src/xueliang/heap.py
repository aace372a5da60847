"""The long-lived heap kept out of the cyclic garbage collector's full collections.

Start-up leaves a large heap that lives as long as the process (the app and its routes,
SQLAlchemy's metadata, the registrar's mirror of the registry), and so do libraries imported
later on first use (the reports' matplotlib, fpdf and openpyxl with their caches). Freezing
what survives a collection keeps the collector from re-scanning all of it in every full
collection; those pauses would otherwise land in the middle of signalling bursts (a
registration storm after a restart). Objects freed by reference counting are still freed.
"""

from __future__ import annotations

import gc


def freeze() -> None:
    """Collect, then move everything that survived to the permanent generation."""
    gc.collect()
    gc.freeze()
