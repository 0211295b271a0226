"""Keep Python's garbage collector from stalling the long-lived event loops.

A full (oldest-generation) collection walks every object the process tracks: with Django,
the API schemas and the runner loaded, that is long enough to stall the loop, which then
relays no progress event and starts no job. What exists once a process has started lives as long as the process, so it
is moved out of the collector's sight; what is created afterwards is collected as usual.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Collect what is garbage now, then exempt every surviving object from later collections."""
    gc.collect()
    gc.freeze()
