"""From TCP and UDP payloads to CA records: which traffic is CA, framing, resync.

One noun per concept, across shark (``docs/architecture.md``):

frame
    One captured packet as the capture file holds it (:class:`shark.capture.files.Frame`).
block
    Frames read from the file together (:class:`shark.capture.files.FrameBlock`). The
    file format's own blocks are always called *pcapng blocks*.
packet
    A frame decoded to a UDP datagram or a TCP segment (:class:`shark.network.packets.Packet`).
segment
    A TCP segment, nothing else (but for :class:`shark.extract.bulk.Segment`, a name kept
    for compatibility: a span of a run's packets that hold updates only).
connection, direction, circuit
    A TCP connection; one *direction* of it, the bytes one side sends
    (:class:`shark.network.reassembly.Direction`, once ``Half``); a *circuit* is a TCP
    connection that carries CA, numbered from 1.
event
    What TCP reassembly tells, of a :class:`shark.network.reassembly.TcpEventKind`.
record
    What the reader yields per CA message, gap, error, circuit opening or closing, of a
    :class:`shark.extract.record.RecordKind`.
stretch
    Consecutive packets of one direction taken as one: the next bytes, in order.
run
    The messages framed at once from a held stretch, as arrays (:class:`shark.extract.bulk.Run`).
batch
    An :class:`shark.extract.bulk.UpdateBatch`: stands where held packets were, for their
    updates. (:meth:`shark.extract.reader.CaReader.batches` yields lists of records and
    batches.)
chunk
    Records turned into table columns together (:class:`shark.tables.chunk.Chunk`).
"""
