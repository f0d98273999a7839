"""What ``shark get``, ``put``, ``monitor`` and ``info`` share: EPICS base's CA tools'
flags and output formats (:mod:`~shark.catools.format`, :mod:`~shark.catools.flags`),
the client session with its addresses, timeouts and error messages
(:mod:`~shark.catools.session`), and the wire tap that shows and saves every message
exchanged (:mod:`~shark.catools.wire`).

The output follows caget, caput, camonitor and cainfo column for column, so that their
users' habits and scripts carry over; what only a wire-level tool can add (``--wire``,
``--write``, ``--stats``, ``-f jsonl``) comes on top, never in place of it.
"""
