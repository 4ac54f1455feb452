"""Garbage-collector settings for a long-lived process that holds many sockets.

Every open socket keeps dozens of container objects alive, and with CPython's default
thresholds a broadcast, which allocates a few objects per socket, sets off collections
that walk all of them. Collecting the young generation less often, and freezing what
startup created, more than halves the CPU per broadcast delivery (see bench/README.md).
Reference cycles are still collected, just in larger batches.
"""

import gc

YOUNG_THRESHOLD = 50_000
MIDDLE_THRESHOLD = 20
OLD_THRESHOLD = 100


def tune_for_many_sockets() -> None:
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
