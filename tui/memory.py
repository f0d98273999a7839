"""How the TUI's process allocates memory: Arrow's pool, and large blocks.

A viewer holds a capture for as long as it is open, while its decoder makes and drops
Arrow buffers by the million as it loads the capture (the batches of the messages
table, spilled to disk as they come; a filter's masks; the panes' group-bys).
pyarrow's default pool (mimalloc) keeps the pages of the buffers it freed for reuse,
which a batch job (``shark export``) never notices but which stays in a viewer's
resident memory: on a 2 M-message capture, 30 to 40 MB more at the peak than with the
system allocator, for no measurable difference in loading time (the TUI's Arrow work
is a few large buffers per batch, not many small ones).

With the system allocator, glibc's malloc then decides. It hands large blocks out as
maps of their own, returned whole when freed, but only above a threshold that it
raises to the size of every such block freed (up to 32 MB): after the first few
batches, the decoder's buffers of some megabytes (a run of monitor updates joined,
its header fields) come from the heap instead, where freed space stays resident
among live data. A fixed threshold keeps them maps: at 512 kB some 10 MB less at the
peak of the same capture (310 against 298 MB), in the same time; at 256 kB some 4 MB
less again (299-300 against 302-304 MB, measured once the decoder had grown faster),
for a little more loading time, the smaller buffers mapped and unmapped again and
again (4.5-4.6 against 4.3-4.5 s: still less than the decoder took before).

The capture is loaded by a thread of its own, to which glibc gives a heap (an arena)
of its own as well: the space freed in one heap serves none of the others, so one
heap for every thread keeps some 2 MB less at the peak (298-299 against 300-301 MB),
in the same time (the interpreter lets one thread run Python at a time anyway).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

import pyarrow as pa

__all__ = ["ARENAS", "MAP_FROM", "use_system_pool"]

#: Bytes from which glibc's malloc gives a block a map of its own (``M_MMAP_THRESHOLD``).
MAP_FROM = 256 << 10
_M_MMAP_THRESHOLD = -3
#: Heaps (arenas) glibc's malloc keeps for the process's threads, at most.
ARENAS = 1
_M_ARENA_MAX = -8


def use_system_pool() -> None:
    """Make the system allocator pyarrow's default pool for what this process
    allocates from now on (buffers already made stay where they are)."""
    pa.set_memory_pool(pa.system_memory_pool())
    _large_blocks_mapped()


def _large_blocks_mapped() -> None:
    """Fix glibc's threshold for mapped blocks at :data:`MAP_FROM`, and its heaps at
    :data:`ARENAS` (elsewhere, or where the C library is another one, nothing is
    done)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # (musl has no mallopt)
        return
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt(_M_MMAP_THRESHOLD, MAP_FROM)
    mallopt(_M_ARENA_MAX, ARENAS)
