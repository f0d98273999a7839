"""PV attribution and request pairing, checked against what the clients really did.

Every capture of the shared corpus (``../shared/captures``) and of the project's own
``captures/`` has a manifest written from the clients' side: the libca calls a pyepics
client made (``libca_calls``), or its operations (``ops``), or the caproto command lines
that ran, with their results, and the updates each subscription's callback counted
(``monitor_updates_received``). This file checks ``shark.read`` against it:

* every TCP message that concerns a channel names its PV: the one a plain model of the
  circuit (CID from CREATE_CHAN, SID from its reply, IOID and subscription id from the
  request) gives, which is a PV the servers serve; the others name none;
* the requests on each client's circuits are the client's calls, in order: READ_NOTIFY
  ones are its gets (PV, DBR type, count), WRITE and WRITE_NOTIFY its puts, EVENT_ADD
  its subscriptions, CREATE_CHAN and CLEAR_CHANNEL its channels;
* every READ_NOTIFY and WRITE_NOTIFY response is paired with its request, and the
  reply statuses, the failed writes and the ERROR messages are the manifest's;
* the updates of each subscription are those the client counted;
* UDP searches and their replies name the PV looked up, as often as the manifest says.

Clients are told apart by the channels they create (pyepics) or by when they ran
(caproto command line tools, one process and one circuit per PV each).
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from builders import OWN_CAPTURES, corpus_params

import shark
from decoder import ECA, Role, dbr
from decoder import messages as m
from shark.output.jsonl import record_dict, record_json

#: Messages that name their channel by CID, by SID, by IOID, by subscription id.
BY_CID = (m.AccessRightsResponse, m.CreateChFailResponse, m.ServerDisconnResponse,
          m.ErrorResponse)
BY_SID = (m.ReadNotifyRequest, m.ReadRequest, m.WriteNotifyRequest, m.WriteRequest,
          m.EventAddRequest, m.EventCancelRequest, m.ClearChannelRequest,
          m.ClearChannelResponse)
BY_IOID = (m.ReadNotifyResponse, m.ReadResponse, m.WriteNotifyResponse)
BY_SUBSCRIPTION = (m.EventAddResponse, m.EventCancelResponse)
#: Requests that a response answers by IOID, and their response class.
NOTIFY = {m.ReadNotifyRequest: m.ReadNotifyResponse, m.WriteNotifyRequest: m.WriteNotifyResponse}


def all_captures() -> list:
    own = sorted(OWN_CAPTURES.glob("*.pcap"))
    return corpus_params() + [pytest.param(p, id=f"own-{p.stem}") for p in own]


@functools.cache
def records_of(path: Path) -> tuple[shark.Record, ...]:
    records = tuple(shark.read(path))
    # The checks below are exact because these captures lost nothing.
    assert all(r.kind == shark.MESSAGE for r in records)
    return records


@functools.cache
def manifest_of(path: Path) -> dict:
    return json.loads(path.with_suffix(".json").read_text())


def tcp(records: Iterable[shark.Record], circuits: Iterable[int] | None = None,
        kind: type | tuple[type, ...] = m.Message) -> list[shark.Record]:
    wanted = None if circuits is None else set(circuits)
    return [r for r in records if r.circuit is not None and isinstance(r.message, kind)
            and (wanted is None or r.circuit in wanted)]


def served_pvs(manifest: dict) -> set[str]:
    return {pv["pv"] for pv in manifest["pvs"]}


# -- the client's side, from the three kinds of manifest -----------------------------------


@dataclass
class Updates:
    """What one subscription's callback counted. ``dbr`` None: the manifest does not say
    the type. ``values``: the first values the client saw, where it did not count from
    the subscription's first update: the count starts at the update carrying the first
    of them. ``slack``: updates the wire may carry after the last one counted, where the
    client stopped counting before the subscription ended."""

    key: str
    pv: str
    dbr: str | None
    count: int
    values: list | None = None
    slack: int = 0


@dataclass
class Client:
    """One client's calls. A request field given as None is not checked."""

    name: str
    t0: float
    created: set[str] = field(default_factory=set)
    gets: list[tuple] = field(default_factory=list)  # (pv, dbr_type, count)
    writes: list[tuple] = field(default_factory=list)  # (pv, dbr_type, count)
    write_notifies: list[tuple] = field(default_factory=list)
    subscribes: list[tuple] = field(default_factory=list)  # (pv, dbr_type)
    clears: list[str] = field(default_factory=list)
    failed_writes: list[tuple[str, int]] = field(default_factory=list)  # (pv, ECA status)
    put_exceptions: list[tuple[str, int, int]] = field(default_factory=list)
    updates: list[Updates] = field(default_factory=list)
    #: For command line tools: when the process ran; its circuits opened in between.
    window: tuple[float, float] | None = None
    circuits: list[int] = field(default_factory=list)


def clients_of(manifest: dict) -> list[Client]:
    clients: list[Client] = []
    for spec in manifest["clients"]:
        if "libca_calls" in spec:
            clients.append(_libca_client(manifest, spec))
        elif "commands" in spec:
            clients.extend(_command_clients(manifest, spec))
        else:
            clients.append(_ops_client(manifest, spec))
    return clients


def _libca_client(manifest: dict, spec: dict) -> Client:
    """The shared corpus's pyepics clients: every libca call is logged, those pyepics
    makes on its own too (a PV object's hidden subscription, for caget/caput/camonitor),
    so requests compare exactly. Calls that failed locally (status other than ECA_NORMAL,
    e.g. a put refused for lack of write access) send nothing."""
    client = Client(spec["id"], spec["t0_unix"])
    for call in spec["libca_calls"]:
        if call["status"] != ECA.ECA_NORMAL:
            continue
        name, pv = call["call"], call["pv"]
        if name == "ca_array_get_callback":
            client.gets.append((pv, call["dbr_type"], call["count"]))
        elif name == "ca_array_put":
            client.writes.append((pv, call["dbr_type"], call["count"]))
        elif name == "ca_array_put_callback":
            client.write_notifies.append((pv, call["dbr_type"], call["count"]))
        elif name == "ca_create_subscription":
            client.subscribes.append((pv, call["dbr_type"]))
        elif name == "ca_clear_channel" and call["was_connected"]:
            client.clears.append(pv)
    client.created = {e["pv"] for e in spec["connection_events"] if e["connected"]}
    for op in spec["ops"]:
        result = op.get("result")
        if op["op"] == "put" and op.get("notify") and result.get("callback_status", 1) != 1:
            client.failed_writes.append((op["pv"], result["callback_status"]))
    client.put_exceptions = [(e["pv"], e["stat"], e["dbr_type"]) for e in spec["ca_exceptions"]
                             if e["op"] == "CA_OP_PUT"]
    camonitors = {op["pv"]: op for op in spec["ops"] if op["op"] == "camonitor"}
    counted = manifest["monitor_updates_received"]["per_client"].get(spec["id"], {})
    for key, sub in counted.items():
        updates = Updates(key, sub["pv"], sub["dbr"], sub["updates_received"])
        if key.startswith("camonitor:"):
            # pyepics' camonitor counts the callbacks of a hidden subscription (its type
            # not logged) from when its callback is attached, which is after the first
            # update came: the values it saw tell where it started.
            updates.dbr = None
            updates.values = camonitors[sub["pv"]]["first_values"]
        client.updates.append(updates)
    return client


def _ops_client(manifest: dict, spec: dict) -> Client:
    """The project's own captures: pyepics' ``epics.ca`` used directly, so the ops are
    every call; puts do not log their DBR type, so it is not checked."""
    client = Client(spec["id"], spec["t0_unix"])
    subscriptions = spec["subscriptions"]
    for op in spec["ops"]:
        kind = op["op"]
        if kind == "connect":
            client.created = {pv for pv, r in op["result"].items() if r["connected"]}
        elif kind == "get" and op["ok"]:
            client.gets.append((op["pv"], op["dbr_type"], op["request_count"]))
        elif kind == "put":
            target = client.write_notifies if op["request"] == "WRITE_NOTIFY" else client.writes
            target.append((op["pv"], None, None))
            if op["request"] == "WRITE_NOTIFY" and op["status"] != ECA.ECA_NORMAL:
                client.failed_writes.append((op["pv"], op["status"]))
        elif kind == "subscribe":
            client.subscribes.append((op["pv"], subscriptions[op["subscription"]]["dbr_type"]))
        elif kind == "disconnect":
            client.clears.extend(op["pvs"])
    counted = manifest["monitor_updates_received"]["per_client"].get(spec["id"], {})
    for key, count in counted.items():
        sub = subscriptions[key]
        client.updates.append(Updates(key, sub["pv"], sub["dbr"], count))
    return client


def _command_clients(manifest: dict, spec: dict) -> Iterator[Client]:
    """caproto's command line tools, one client per process. What each did is told by its
    command line and output: caproto-get reads each PV once, in the DBR type it prints;
    caproto-put reads, writes (WRITE_NOTIFY with --notify) and reads again;
    caproto-monitor subscribes. The monitor's count cannot be exact: it stops counting
    when --duration expires, and an update can reach the wire before its channel is
    cleared; the values it printed are checked instead."""
    counted = manifest["monitor_updates_received"]["per_client"].get(spec["id"], {})
    for command in spec["commands"]:
        tool = command["equivalent_command"][0]
        parsed = command["parsed"]
        pvs = list(dict.fromkeys(p["pv"] for p in parsed))
        client = Client(f"{spec['id']}:{' '.join(command['equivalent_command'])}",
                        command["t_start_unix"],
                        window=(command["t_start_unix"], command["t_end_unix"]))
        client.created = set(pvs)
        client.clears = list(pvs)
        if tool == "caproto-get":
            client.gets = [(p["pv"], int(re.search(r": (\d+)>", p["data_type"]).group(1)),
                            None) for p in parsed]
        elif tool == "caproto-put":
            (pv,) = pvs
            client.gets = [(pv, None, None)] * 2
            if "--notify" in command["argv"]:
                client.write_notifies = [(pv, None, None)]
            else:
                client.writes = [(pv, None, None)]
        elif tool == "caproto-monitor":
            (pv,) = pvs
            client.subscribes = [(pv, None)]
            key = f"caproto-monitor:{pv}"
            values = [int(re.search(r"\[(-?\d+)\]", p["data"]).group(1)) for p in parsed]
            client.updates = [Updates(key, pv, None, counted[key]["updates_received"],
                                      values=values, slack=1)]
        yield client


def assign_circuits(records: tuple[shark.Record, ...], clients: list[Client]) -> None:
    """Give each circuit to its client: the one that ran when it opened (command line
    tools), or the one that created every channel it carries and had started by then."""
    first: dict[int, float] = {}
    names: dict[int, set[str]] = {}
    for r in tcp(records):
        first.setdefault(r.circuit, r.time)
        if type(r.message) is m.CreateChanRequest:
            names.setdefault(r.circuit, set()).add(r.message.name)
    for circuit, start in first.items():
        owners = [
            c for c in clients
            if (c.window[0] <= start <= c.window[1] if c.window is not None
                else c.t0 <= start and names.get(circuit, set()) <= c.created)
        ]
        assert len(owners) == 1, (circuit, [c.name for c in owners])
        owners[0].circuits.append(circuit)


@functools.cache
def clients_in(path: Path) -> list[Client]:
    clients = clients_of(manifest_of(path))
    assign_circuits(records_of(path), clients)
    return clients


def matches(observed: list[tuple], expected: list[tuple]) -> bool:
    """Equal, item by item, where an expected field of None matches anything."""
    return len(observed) == len(expected) and all(
        all(e is None or o == e for o, e in zip(obs, exp, strict=True))
        for obs, exp in zip(observed, expected, strict=False)
    )


# -- every message names the right PV -------------------------------------------------------


def expected_pvs(records: Iterable[shark.Record]) -> Iterator[tuple[shark.Record, str | None]]:
    """(record, the PV it concerns) for every TCP message that concerns a channel, by a
    model of the circuit as plain as can be: names by CID from CREATE_CHAN requests, SIDs
    from their replies, IOIDs and subscription ids from the requests that chose them."""
    circuits: dict[int, dict[str, dict[int, str]]] = {}
    for r in tcp(records):
        ids = circuits.setdefault(r.circuit, {"cid": {}, "sid": {}, "ioid": {}, "sub": {}})
        msg = r.message
        kind = type(msg)
        if kind is m.CreateChanRequest:
            ids["cid"][msg.cid] = pv = msg.name
        elif kind is m.CreateChanResponse:
            ids["sid"][msg.sid] = pv = ids["cid"][msg.cid]
        elif kind in BY_CID:
            pv = ids["cid"].get(msg.cid)
        elif kind in BY_SID:
            pv = ids["sid"][msg.sid]
            if kind in (m.ReadNotifyRequest, m.ReadRequest, m.WriteNotifyRequest):
                ids["ioid"][msg.ioid] = pv
            elif kind is m.EventAddRequest:
                ids["sub"][msg.subscriptionid] = pv
        elif kind in BY_IOID:
            pv = ids["ioid"][msg.ioid]
        elif kind in BY_SUBSCRIPTION:
            pv = ids["sub"][msg.subscriptionid]
        else:
            continue
        yield r, pv


@pytest.mark.parametrize("path", all_captures())
def test_every_channel_message_names_its_pv(path: Path) -> None:
    records = records_of(path)
    served = served_pvs(manifest_of(path))
    concerned = set()
    for record, pv in expected_pvs(records):
        concerned.add(id(record))
        assert pv in served, (record, pv)
        assert record.pv == pv, record
        assert record.channel is not None and record.channel.name == pv
    # VERSION, CLIENT_NAME, HOST_NAME, ECHO ... concern no channel
    assert all(r.pv is None for r in tcp(records) if id(r) not in concerned)
    assert concerned


@pytest.mark.parametrize("path", all_captures())
def test_requests_are_the_clients_calls(path: Path) -> None:
    """Per client, in capture order: the requests are its calls. EVENT_ADD and
    CREATE_CHAN that libca re-sends by itself on a new circuit to a server whose previous
    circuit died (the subscriptions then active) are not calls and are set aside."""
    records = records_of(path)
    for client in clients_in(path):
        mine = tcp(records, client.circuits)
        assert mine, client.name

        def requests(kind: type, mine: list[shark.Record] = mine) -> list[tuple]:
            return [(r.pv, r.message.data_type, r.message.data_count)
                    for r in mine if type(r.message) is kind]

        assert {r.pv for r in mine if type(r.message) is m.CreateChanRequest} == client.created
        assert matches(requests(m.ReadNotifyRequest), client.gets), client.name
        assert matches(requests(m.WriteRequest), client.writes), client.name
        assert matches(requests(m.WriteNotifyRequest), client.write_notifies), client.name
        assert matches(subscriptions_called(mine), client.subscribes), client.name
        assert Counter(r.pv for r in mine if type(r.message) is m.ClearChannelRequest) == (
            Counter(client.clears)), client.name


def subscriptions_called(records: list[shark.Record]) -> list[tuple[str, int]]:
    """(pv, DBR type) of the EVENT_ADD requests a client's calls made, re-sends left out."""
    server_of: dict[int, str] = {}
    active: dict[int, list[tuple[str, int]]] = {}  # per circuit, EVENT_ADD minus cancels
    resend: dict[int, list[tuple[str, int]]] = {}
    latest: dict[str, int] = {}  # server endpoint -> its latest circuit
    by_id: dict[tuple[int, int], tuple[str, int]] = {}
    called = []
    for r in records:
        if r.circuit not in server_of:
            server = r.dst if r.sender == Role.CLIENT else r.src
            server_of[r.circuit] = server
            previous = latest.get(server)
            resend[r.circuit] = list(active.get(previous, [])) if previous else []
            latest[server] = r.circuit
        msg = r.message
        if type(msg) is m.EventAddRequest:
            sub = (r.pv, msg.data_type)
            by_id[r.circuit, msg.subscriptionid] = sub
            active.setdefault(r.circuit, []).append(sub)
            if sub in resend[r.circuit]:
                resend[r.circuit].remove(sub)
            else:
                called.append(sub)
        elif type(msg) is m.EventCancelRequest:
            active[r.circuit].remove(by_id[r.circuit, msg.subscriptionid])
    return called


# -- responses paired with their requests ---------------------------------------------------


@pytest.mark.parametrize("path", all_captures())
def test_notify_responses_are_paired_with_their_requests(path: Path) -> None:
    records = records_of(path)
    analysis = manifest_of(path)["capture_analysis"]
    for request_kind, response_kind in NOTIFY.items():
        requests = tcp(records, kind=request_kind)
        responses = tcp(records, kind=response_kind)
        answered = []
        for response in responses:
            request = response.request
            assert request is not None, response
            assert type(request.message) is request_kind
            assert request.circuit == response.circuit
            assert request.message.ioid == response.message.ioid
            assert request.pv == response.pv is not None
            assert request.frame <= response.frame
            assert response.latency == response.time - request.time >= 0
            answered.append(id(request))
        # every request answered once (the manifests count every one answered)
        assert sorted(answered) == sorted(id(r) for r in requests)
        key = ("read" if request_kind is m.ReadNotifyRequest else "write") + "_notify_reply_status"
        statuses = Counter(str(r.message.status) for r in responses)
        assert dict(statuses) == analysis[key]


@pytest.mark.parametrize("path", all_captures())
def test_failed_writes_and_errors_match_the_manifest(path: Path) -> None:
    records = records_of(path)
    manifest = manifest_of(path)
    for client in clients_in(path):
        failed = [(r.pv, r.message.status) for r in tcp(records, client.circuits,
                                                         m.WriteNotifyResponse)
                  if r.message.status != ECA.ECA_NORMAL]
        assert failed == client.failed_writes, client.name
        errors = [(r.pv, r.message.status, r.message.original_request.data_type)
                  for r in tcp(records, client.circuits, m.ErrorResponse)
                  if type(r.message.original_request) is m.WriteRequest]
        assert errors == client.put_exceptions, client.name
    expected = [
        (e["message"], e["eca_status"], e["cid"], e["original_command"], e["original_data_type"])
        for e in manifest["capture_analysis"].get("tcp_error_messages", [])
    ]
    errors = []
    for r in tcp(records, kind=m.ErrorResponse):
        original = r.message.original_request
        # the request it answers: the failed WRITE itself, not just a copy of its header
        request = r.request
        assert request is not None and request.message.command == original.command
        assert request.message.to_bytes()[:16] == original.header_bytes(
            r.message.original_payload_size)[:16]
        assert request.pv == r.pv and request.frame < r.frame and r.latency >= 0
        assert r.channel is not None and r.channel.cid == r.message.cid
        # rsrv explains a failure with the channel's name
        assert r.message.error_message == r.pv
        errors.append((r.pv, r.message.status, r.message.cid, original.command,
                       original.data_type))
    assert errors == expected


# -- subscriptions ----------------------------------------------------------------------------


def subscription_updates(records: list[shark.Record]) -> dict[tuple[int, int], list]:
    """Per (circuit, subscription id): [pv, DBR type, update records]."""
    subs: dict[tuple[int, int], list] = {}
    for r in records:
        msg = r.message
        if type(msg) is m.EventAddRequest:
            subs[r.circuit, msg.subscriptionid] = [r.pv, msg.data_type, []]
        elif type(msg) is m.EventAddResponse:
            entry = subs[r.circuit, msg.subscriptionid]
            assert r.subscription is not None
            assert r.subscription.subscriptionid == msg.subscriptionid
            assert r.pv == entry[0]
            entry[2].append(r)
    return subs


@pytest.mark.parametrize("path", all_captures())
def test_updates_per_subscription_equal_the_clients_count(path: Path) -> None:
    """A subscription the client counted may span several circuits (libca subscribes
    again after a reconnection): its updates on all of them add up to the count. Hidden
    subscriptions (pyepics caget/caput PV objects) have no count to compare with."""
    records = records_of(path)
    checked = 0
    for client in clients_in(path):
        subs = list(subscription_updates(tcp(records, client.circuits)).values())
        typed = {(u.pv, u.dbr) for u in client.updates if u.dbr is not None}
        for expected in client.updates:
            mine = [s for s in subs if s[0] == expected.pv and (
                dbr.dbr_name(s[1]) == expected.dbr if expected.dbr is not None
                else (s[0], dbr.dbr_name(s[1])) not in typed)]
            assert mine, expected
            updates = [u for s in mine for u in s[2]]
            if expected.values is not None:
                values = [u.message.data.value for u in updates]
                start = values.index(expected.values[0])
                updates = updates[start:]
                assert values[start : start + len(expected.values)] == expected.values
            assert expected.count <= len(updates) <= expected.count + expected.slack, expected
            checked += 1
    assert checked == sum(len(c.updates) for c in clients_in(path))


# -- UDP ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", all_captures())
def test_searches_and_replies_name_their_pv(path: Path) -> None:
    records = records_of(path)
    manifest = manifest_of(path)
    searches = [r for r in records if r.transport == "udp" and type(r.message) is m.SearchRequest]
    assert all(r.pv == r.message.name for r in searches)
    per_pv = Counter(r.pv for r in searches)
    expected = manifest["capture_analysis"]["udp_search_requests_per_pv"]
    if "distinct_names" in expected:  # a summary, for many names
        assert len(per_pv) == expected["distinct_names"]
        assert sum(per_pv.values()) == expected["total"]
        assert {pv: n for pv, n in per_pv.items() if n > 1} == (
            expected["names_searched_more_than_once"])
    else:
        assert dict(per_pv) == expected
    for absent in manifest["nonexistent_pvs_searched"]:
        count = absent.get("udp_search_requests_in_capture", absent.get("udp_search_requests"))
        assert sum(r.pv == absent["pv"] for r in searches) == count
    names = {(r.src, r.message.cid): r.message.name for r in searches}
    replies = [r for r in records if r.transport == "udp" and type(r.message) is m.SearchResponse]
    assert replies
    for reply in replies:
        assert reply.pv == names[reply.dst, reply.message.cid]
        assert reply.request is not None and reply.request.pv == reply.pv
        assert reply.request.src == reply.dst and reply.latency >= 0
    assert {r.pv for r in replies} <= served_pvs(manifest)


@pytest.mark.parametrize("path", all_captures())
def test_json_lines_carry_the_records(path: Path) -> None:
    """``shark read --format jsonl`` writes messages by a fast path of its own: the
    text must be exactly the encoding of :func:`shark.output.jsonl.record_dict`."""
    for record in records_of(path):
        expected = json.dumps(record_dict(record), separators=(",", ":"), ensure_ascii=False)
        assert record_json(record) == expected
