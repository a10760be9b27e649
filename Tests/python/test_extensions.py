"""Extensions (§7): `extensions_json` is exact, byte for byte; a Struct arrives in the
canonical form of its doubles."""

from __future__ import annotations

import math

import grpc
import pytest

from helpers import CALL_TIMEOUT

T = CALL_TIMEOUT
EXACT = r'{"big":12345678901234567890,"neg":-9007199254740993,"e":1.0e+2,"s":"caf\u00e9"}'
EXACT_MEMBERS = EXACT[1:-1]


@pytest.fixture(scope="module")
def sid(pb, stub):
    return stub.StartService(pb.StartServiceRequest(), timeout=T).service_id


def test_big_integers_survive_byte_for_byte(pb, stub, rest, sid):
    tid = stub.StartTask(pb.StartTaskRequest(service_id=sid, task_type=pb.BusinessAttribute(name="x"),
                                             extensions_json=EXACT), timeout=T).task_id
    raw = rest.get(f"/services/{sid}/tasks/{tid}").text
    # The raw answer of the core, not a parse of it: extensions come last, as sent.
    assert raw.endswith("," + EXACT_MEMBERS + "}"), raw
    task = stub.QueryTask(pb.QueryTaskRequest(service_id=sid, task_id=tid), timeout=T).task
    assert task.extensions_json == EXACT


def test_exact_extensions_of_end_events(pb, stub, rest, sid):
    tid = stub.StartTask(pb.StartTaskRequest(service_id=sid), timeout=T).task_id
    stub.CompleteTask(pb.CompleteTaskRequest(service_id=sid, task_id=tid, extensions_json=EXACT), timeout=T)
    raw = rest.get(f"/services/{sid}/tasks/{tid}").text
    assert ("," + EXACT_MEMBERS + "}") in raw
    task = stub.QueryTask(pb.QueryTaskRequest(service_id=sid, task_id=tid), timeout=T).task
    assert task.completed.extensions_json == EXACT
    assert task.extensions_json == ""


def test_whitespace_between_members_is_dropped(pb, stub, rest, sid):
    sent = '{ "a" : [1, 2 ,3] ,\n\t"b":{"c" : -0} }'
    tid = stub.StartTask(pb.StartTaskRequest(service_id=sid, extensions_json=sent), timeout=T).task_id
    task = stub.QueryTask(pb.QueryTaskRequest(service_id=sid, task_id=tid), timeout=T).task
    # Inside a value the bytes are kept; between members they are not part of any value.
    assert task.extensions_json == '{"a":[1, 2 ,3],"b":{"c" : -0}}'
    assert rest.get(f"/services/{sid}/tasks/{tid}").text.endswith(',"a":[1, 2 ,3],"b":{"c" : -0}}')


def raw_start_task(pb, channel):
    """StartTask taking the request's bytes as they are: the test decides the wire order of
    the Struct's map entries (a client's own order is its map's, which need not be stable)."""
    return channel.unary_unary("/genesys.cs.v1.ContextServices/StartTask",
                               response_deserializer=pb.StartTaskResponse.FromString)


def struct_request(pb, sid, *entries) -> bytes:
    """A StartTaskRequest whose Struct map entries are on the wire in the order given:
    concatenated messages merge, and map entries append."""
    wire = pb.StartTaskRequest(service_id=sid).SerializeToString()
    for key, value in entries:
        part = pb.StartTaskRequest()
        part.extensions.update({key: value})
        wire += part.SerializeToString()
    return wire


def test_struct_extensions(pb, stub, channel, rest, sid):
    start_task = raw_start_task(pb, channel)
    tid = start_task(struct_request(pb, sid, ("price", 25000), ("ratio", 0.5)), timeout=T).task_id
    raw = rest.get(f"/services/{sid}/tasks/{tid}").text
    assert raw.endswith(',"price":25000,"ratio":0.5}'), raw
    task = stub.QueryTask(pb.QueryTaskRequest(service_id=sid, task_id=tid), timeout=T).task
    assert task.extensions_json == '{"price":25000,"ratio":0.5}'

    # The map's wire order is kept.
    tid = start_task(struct_request(pb, sid, ("ratio", 0.5), ("price", 25000)), timeout=T).task_id
    assert rest.get(f"/services/{sid}/tasks/{tid}").text.endswith(',"ratio":0.5,"price":25000}')

    # Through the generated stub, in whatever order this client's map has.
    request = pb.StartTaskRequest(service_id=sid)
    request.extensions.update({"price": 25000, "ratio": 0.5})
    tid = stub.StartTask(request, timeout=T).task_id
    raw = rest.get(f"/services/{sid}/tasks/{tid}").text
    assert raw.endswith(',"price":25000,"ratio":0.5}') or raw.endswith(',"ratio":0.5,"price":25000}'), raw


def test_struct_value_kinds(pb, stub, channel, rest, sid):
    entries = [
        ("a", [1, "two", True, None, {"n": -3}]),
        ("big", 2.0 ** 53),
        ("huge", 1e21),
        ("small", 1.5e-7),
        ("frac", 123.456),
        ("s", "caf\u00e9 \"q\""),
    ]
    tid = raw_start_task(pb, channel)(struct_request(pb, sid, *entries), timeout=T).task_id
    task = stub.QueryTask(pb.QueryTaskRequest(service_id=sid, task_id=tid), timeout=T).task
    assert task.extensions_json == (
        '{"a":[1,"two",true,null,{"n":-3}],"big":9007199254740992,"huge":1e+21,"small":1.5e-7,'
        '"frac":123.456,"s":"caf\u00e9 \\"q\\""}'
    )
    assert rest.get(f"/services/{sid}/tasks/{tid}").text.endswith("," + task.extensions_json[1:])


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_struct_refuses_non_finite_numbers(pb, stub, sid, value):
    request = pb.StartTaskRequest(service_id=sid)
    request.extensions.update({"x": value})
    with pytest.raises(grpc.RpcError) as caught:
        stub.StartTask(request, timeout=T)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
