"""The success path of every RPC: what the call returns, and what the core stored (read back
through its REST API)."""

from __future__ import annotations

import grpc
import pytest

from helpers import CALL_TIMEOUT

BASE = "/genesys/1/cs"
T = CALL_TIMEOUT


def attr(pb, value):
    return pb.BusinessAttribute(id=value) if isinstance(value, int) else pb.BusinessAttribute(name=value)


def new_service(pb, stub, **kw) -> int:
    return stub.StartService(pb.StartServiceRequest(**kw), timeout=T).service_id


def full_event(pb, **kw):
    fields = dict(
        timestamp="2017-04-27T12:18:00.5+02:00",
        session_id="s" * 32,
        interaction_id="i-42",
        application_type=attr(pb, 5),
        application_id=7,
        resource_type=attr(pb, "agent"),
        resource_id=-9,
        media_type=attr(pb, "voice"),
    )
    fields.update(kw)
    return pb.EventFields(**fields)


FULL_EVENT_JSON = {
    "timestamp": "2017-04-27T10:18:00.500Z",
    "session_id": "s" * 32,
    "interaction_id": "i-42",
    "application_type": 5,
    "application_id": 7,
    "resource_type": "agent",
    "resource_id": -9,
    "media_type": "voice",
}


def check_full_event_proto(fields):
    assert fields.timestamp == "2017-04-27T10:18:00.500Z"
    assert fields.session_id == "s" * 32
    assert fields.interaction_id == "i-42"
    assert fields.application_type.id == 5
    assert fields.application_id == 7
    assert fields.resource_type.name == "agent"
    assert fields.resource_id == -9
    assert fields.media_type.name == "voice"


# MARK: services


def test_start_service(pb, stub, rest):
    answer = stub.StartService(pb.StartServiceRequest(
        service_type=attr(pb, "cable"), customer_id="c-1", est_duration=60, event=full_event(pb),
        extensions_json='{"question3":"will be better with cable tv","n":[1,2]}',
    ), timeout=T)
    assert answer.service_id >= 1
    assert answer.location == f"{BASE}/services/{answer.service_id}"

    stored = rest.get(f"/services/{answer.service_id}")
    assert stored.status == 200, stored
    assert stored.json() == {
        "service_id": answer.service_id,
        "service_type": "cable",
        "est_duration": 60,
        "customer_id": "c-1",
        "started": FULL_EVENT_JSON,
        "question3": "will be better with cable tv",
        "n": [1, 2],
    }
    # Extensions as sent, after the standard members.
    assert stored.text.endswith(',"question3":"will be better with cable tv","n":[1,2]}')


def test_start_service_contact_key_and_id_type(pb, stub, rest):
    answer = stub.StartService(pb.StartServiceRequest(service_type=attr(pb, 12), contact_key="ck-9"), timeout=T)
    stored = rest.get(f"/services/{answer.service_id}").json()
    assert stored["service_type"] == 12
    assert stored["contact_key"] == "ck-9"
    assert "customer_id" not in stored
    assert stored["started"]["timestamp"].endswith("Z")  # the server's time


def test_ids_are_issued_in_order(pb, stub):
    first = new_service(pb, stub)
    second = new_service(pb, stub)
    assert second == first + 1


def test_complete_service(pb, stub, rest):
    sid = new_service(pb, stub, customer_id="c-2")
    answer = stub.CompleteService(pb.CompleteServiceRequest(
        service_id=sid, event=pb.EventFields(timestamp="2020-01-02T03:04:05Z", interaction_id="end-1"),
        disposition=attr(pb, "resolved"), disposition_desc="all good",
        extensions_json='{"why":"finished"}',
    ), timeout=T)
    assert answer == pb.CompleteServiceResponse()

    stored = rest.get(f"/services/{sid}").json()
    assert stored["completed"] == {
        "timestamp": "2020-01-02T03:04:05.000Z",
        "interaction_id": "end-1",
        "disposition": "resolved",
        "disposition_desc": "all good",
        "why": "finished",
    }

    queried = stub.QueryService(pb.QueryServiceRequest(service_id=sid), timeout=T).service
    assert queried.HasField("completed")
    assert queried.completed.fields.timestamp == "2020-01-02T03:04:05.000Z"
    assert queried.completed.fields.interaction_id == "end-1"
    assert queried.completed.disposition.name == "resolved"
    assert queried.completed.disposition_desc == "all good"
    assert queried.completed.extensions_json == '{"why":"finished"}'


@pytest.fixture(scope="module")
def populated(pb, stub):
    """A service with an active and a completed state, and tasks: one active and one
    completed outside any state, one active and one completed in the active state."""
    sid = new_service(pb, stub, service_type=attr(pb, "journey"), customer_id="c-pop",
                      extensions_json='{"vip":true}')
    s_active = stub.StartState(pb.StartStateRequest(service_id=sid, state_type=attr(pb, "menu")), timeout=T).state_id
    s_done = stub.StartState(pb.StartStateRequest(service_id=sid, state_type=attr(pb, 77)), timeout=T).state_id
    stub.CompleteState(pb.CompleteStateRequest(service_id=sid, state_id=s_done), timeout=T)

    def task(task_type, state_id=0, complete=False):
        tid = stub.StartTask(pb.StartTaskRequest(service_id=sid, state_id=state_id, task_type=attr(pb, task_type)),
                             timeout=T).task_id
        if complete:
            stub.CompleteTask(pb.CompleteTaskRequest(service_id=sid, task_id=tid), timeout=T)
        return tid

    tasks = {
        "free_active": task("billing"),
        "free_done": task(5, complete=True),
        "state_active": task("billing", s_active),
        "state_done": task("5", s_active, complete=True),
    }
    return {"sid": sid, "s_active": s_active, "s_done": s_done, **tasks}


def ids(items, key):
    return sorted(getattr(i, key) for i in items)


def rest_ids(items, key):
    return sorted(i[key] for i in items)


SERVICE_FLAGS = ["active_states", "completed_states", "active_tasks", "completed_tasks"]


@pytest.mark.parametrize("flag", [None, *SERVICE_FLAGS])
def test_query_service_flags(pb, stub, rest, populated, flag):
    sid = populated["sid"]
    request = pb.QueryServiceRequest(service_id=sid, **({flag: True} if flag else {}))
    service = stub.QueryService(request, timeout=T).service
    stored = rest.get(f"/services/{sid}" + (f"?{flag}=true" if flag else "")).json()

    assert service.service_id == sid
    assert service.service_type.name == "journey"
    assert service.customer_id == "c-pop"
    assert service.extensions_json == '{"vip":true}'
    expected = {
        "active_states": [populated["s_active"]],
        "completed_states": [populated["s_done"]],
        # Tasks of the service, those inside its states included.
        "active_tasks": sorted([populated["free_active"], populated["state_active"]]),
        "completed_tasks": sorted([populated["free_done"], populated["state_done"]]),
    }
    for name in SERVICE_FLAGS:
        key = "state_id" if "states" in name else "task_id"
        got = ids(getattr(service, name), key)
        if name == flag:
            assert got == expected[name]
            assert rest_ids(stored[name], key) == got
        else:
            assert got == []
            assert name not in stored


def test_query_service_all_flags(pb, stub, rest, populated):
    sid = populated["sid"]
    service = stub.QueryService(pb.QueryServiceRequest(
        service_id=sid, active_states=True, completed_states=True, active_tasks=True, completed_tasks=True),
        timeout=T).service
    stored = rest.get(f"/services/{sid}?" + "&".join(f"{f}=true" for f in SERVICE_FLAGS)).json()
    for name in SERVICE_FLAGS:
        key = "state_id" if "states" in name else "task_id"
        assert ids(getattr(service, name), key) == rest_ids(stored[name], key)
    # Nested resources carry no service_id (§4).
    assert all(s.service_id == 0 for s in service.active_states)
    assert all("service_id" not in s for s in stored["active_states"])
    assert service.completed_states[0].HasField("completed")


def test_delete_service(pb, stub, rest):
    sid = new_service(pb, stub)
    stub.StartTask(pb.StartTaskRequest(service_id=sid, task_type=attr(pb, "x")), timeout=T)
    assert rest.get(f"/services/{sid}").status == 200
    answer = stub.DeleteService(pb.DeleteServiceRequest(service_id=sid), timeout=T)
    assert answer == pb.DeleteServiceResponse()
    assert rest.get(f"/services/{sid}").status == 404
    assert rest.get(f"/services/{sid}/tasks/1").status == 404
    with pytest.raises(grpc.RpcError) as caught:
        stub.QueryService(pb.QueryServiceRequest(service_id=sid), timeout=T)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    # Never issued again.
    assert new_service(pb, stub) > sid


# MARK: states


def test_start_state(pb, stub, rest):
    sid = new_service(pb, stub)
    answer = stub.StartState(pb.StartStateRequest(
        service_id=sid, state_type=attr(pb, "identification"), est_duration=30, event=full_event(pb),
        extensions_json='{"step":"pin"}'), timeout=T)
    assert answer.state_id == 1
    assert answer.location == f"{BASE}/services/{sid}/states/1"
    second = stub.StartState(pb.StartStateRequest(service_id=sid), timeout=T)
    assert second.state_id == 2
    assert second.location == f"{BASE}/services/{sid}/states/2"

    stored = rest.get(f"/services/{sid}/states/1")
    assert stored.status == 200
    assert stored.json() == {
        "service_id": sid,
        "state_id": 1,
        "state_type": "identification",
        "est_duration": 30,
        "started": FULL_EVENT_JSON,
        "step": "pin",
    }


def test_complete_state(pb, stub, rest):
    sid = new_service(pb, stub)
    st = stub.StartState(pb.StartStateRequest(service_id=sid, state_type=attr(pb, 3)), timeout=T).state_id
    answer = stub.CompleteState(pb.CompleteStateRequest(
        service_id=sid, state_id=st, disposition=attr(pb, 200), disposition_desc="ok",
        event=pb.EventFields(timestamp="2021-06-01T00:00:00.123456789Z", media_type=attr(pb, 2)),
        extensions_json='{"score":9.5}'), timeout=T)
    assert answer == pb.CompleteStateResponse()
    stored = rest.get(f"/services/{sid}/states/{st}").json()
    assert stored["completed"] == {
        "timestamp": "2021-06-01T00:00:00.123Z",
        "media_type": 2,
        "disposition": 200,
        "disposition_desc": "ok",
        "score": 9.5,
    }
    state = stub.QueryState(pb.QueryStateRequest(service_id=sid, state_id=st), timeout=T).state
    assert state.completed.disposition.id == 200
    assert state.completed.fields.media_type.id == 2
    assert state.completed.extensions_json == '{"score":9.5}'


@pytest.mark.parametrize("flag", [None, "active_tasks", "completed_tasks", "both"])
def test_query_state_flags(pb, stub, rest, populated, flag):
    sid, st = populated["sid"], populated["s_active"]
    flags = {"active_tasks": True, "completed_tasks": True} if flag == "both" else ({flag: True} if flag else {})
    state = stub.QueryState(pb.QueryStateRequest(service_id=sid, state_id=st, **flags), timeout=T).state
    query = "&".join(f"{k}=true" for k in flags)
    stored = rest.get(f"/services/{sid}/states/{st}" + (f"?{query}" if query else "")).json()

    assert state.service_id == sid
    assert state.state_id == st
    assert state.state_type.name == "menu"
    assert state.started.fields.timestamp == stored["started"]["timestamp"]
    expected = {"active_tasks": [populated["state_active"]], "completed_tasks": [populated["state_done"]]}
    for name in ("active_tasks", "completed_tasks"):
        got = ids(getattr(state, name), "task_id")
        if name in flags:
            assert got == expected[name]
            assert rest_ids(stored[name], "task_id") == got
            assert all(t.state_id == st for t in getattr(state, name))
        else:
            assert got == []
            assert name not in stored


# MARK: tasks


def test_start_task(pb, stub, rest):
    sid = new_service(pb, stub)
    st = stub.StartState(pb.StartStateRequest(service_id=sid), timeout=T).state_id
    answer = stub.StartTask(pb.StartTaskRequest(
        service_id=sid, state_id=st, task_type=attr(pb, "customer info"), est_duration=460,
        event=full_event(pb), extensions_json='{"question3":"will be better with cable tv and on-demand video"}'),
        timeout=T)
    assert answer.task_id == 1
    # The seed's singular `service` (§2).
    assert answer.location == f"{BASE}/service/{sid}/tasks/1"

    expected = {
        "service_id": sid,
        "task_id": 1,
        "task_type": "customer info",
        "state_id": st,
        "est_duration": 460,
        "started": FULL_EVENT_JSON,
        "question3": "will be better with cable tv and on-demand video",
    }
    # The Location resolves, and says the same as the plural form.
    by_location = rest.get(answer.location[len(BASE):])
    assert by_location.status == 200
    assert by_location.json() == expected
    assert rest.get(f"/services/{sid}/tasks/1").text == by_location.text

    second = stub.StartTask(pb.StartTaskRequest(service_id=sid, task_type=attr(pb, 9)), timeout=T)
    assert second.task_id == 2
    assert second.location == f"{BASE}/service/{sid}/tasks/2"
    stored = rest.get(f"/services/{sid}/tasks/2").json()
    assert stored["task_type"] == 9
    assert "state_id" not in stored


def test_complete_task(pb, stub, rest):
    sid = new_service(pb, stub)
    tid = stub.StartTask(pb.StartTaskRequest(service_id=sid, task_type=attr(pb, "t")), timeout=T).task_id
    answer = stub.CompleteTask(pb.CompleteTaskRequest(
        service_id=sid, task_id=tid, disposition=attr(pb, "sold"), disposition_desc="d" * 64,
        event=pb.EventFields(timestamp="2022-02-02T02:02:02.002Z", resource_id=1234567890123),
        extensions_json='{"basket":{"items":3}}'), timeout=T)
    assert answer == pb.CompleteTaskResponse()
    stored = rest.get(f"/services/{sid}/tasks/{tid}").json()
    assert stored["completed"] == {
        "timestamp": "2022-02-02T02:02:02.002Z",
        "resource_id": 1234567890123,
        "disposition": "sold",
        "disposition_desc": "d" * 64,
        "basket": {"items": 3},
    }


def test_query_task(pb, stub, rest):
    sid = new_service(pb, stub)
    st = stub.StartState(pb.StartStateRequest(service_id=sid), timeout=T).state_id
    tid = stub.StartTask(pb.StartTaskRequest(
        service_id=sid, state_id=st, task_type=attr(pb, 42), est_duration=0, event=full_event(pb),
        extensions_json='{"a":1,"b":"two"}'), timeout=T).task_id
    task = stub.QueryTask(pb.QueryTaskRequest(service_id=sid, task_id=tid), timeout=T).task
    assert task.service_id == sid
    assert task.task_id == tid
    assert task.task_type.id == 42
    assert task.state_id == st
    assert task.HasField("est_duration") and task.est_duration == 0
    check_full_event_proto(task.started.fields)
    assert not task.HasField("completed")
    assert task.extensions_json == '{"a":1,"b":"two"}'

    stub.CompleteTask(pb.CompleteTaskRequest(service_id=sid, task_id=tid, disposition=attr(pb, 1)), timeout=T)
    task = stub.QueryTask(pb.QueryTaskRequest(service_id=sid, task_id=tid), timeout=T).task
    stored = rest.get(f"/services/{sid}/tasks/{tid}").json()
    assert task.HasField("completed")
    assert task.completed.disposition.id == 1
    assert task.completed.fields.timestamp == stored["completed"]["timestamp"]
    assert task.completed.extensions_json == ""


STATUS_PATH = {"TASK_STATUS_UNSPECIFIED": "", "TASK_STATUS_ACTIVE": "/active", "TASK_STATUS_COMPLETED": "/completed"}


@pytest.mark.parametrize("status", list(STATUS_PATH))
def test_query_tasks_status(pb, stub, rest, populated, status):
    sid = populated["sid"]
    tasks = stub.QueryTasks(pb.QueryTasksRequest(service_id=sid, status=pb.TaskStatus.Value(status)), timeout=T).tasks
    stored = rest.get(f"/services/{sid}/tasks{STATUS_PATH[status]}").json()
    expected = {
        "TASK_STATUS_UNSPECIFIED": ["free_active", "free_done", "state_active", "state_done"],
        "TASK_STATUS_ACTIVE": ["free_active", "state_active"],
        "TASK_STATUS_COMPLETED": ["free_done", "state_done"],
    }[status]
    assert ids(tasks, "task_id") == sorted(populated[k] for k in expected)
    assert ids(tasks, "task_id") == rest_ids(stored, "task_id")
    # Each element of the list is top level: it names its service.
    assert all(t.service_id == sid for t in tasks)


@pytest.mark.parametrize("types,expected", [
    (["billing"], ["free_active", "state_active"]),
    (["5"], ["free_done", "state_done"]),  # 5 matches both the id 5 and the name "5"
    (["billing", "5"], ["free_active", "free_done", "state_active", "state_done"]),
    (["nothing"], []),
])
def test_query_tasks_task_types(pb, stub, rest, populated, types, expected):
    sid = populated["sid"]
    tasks = stub.QueryTasks(pb.QueryTasksRequest(service_id=sid, task_types=types), timeout=T).tasks
    stored = rest.get(f"/services/{sid}/tasks?task_types={','.join(types)}").json()
    assert ids(tasks, "task_id") == sorted(populated[k] for k in expected)
    assert ids(tasks, "task_id") == rest_ids(stored, "task_id")


def test_query_tasks_state_id(pb, stub, rest, populated):
    sid, st = populated["sid"], populated["s_active"]
    tasks = stub.QueryTasks(pb.QueryTasksRequest(service_id=sid, state_id=st), timeout=T).tasks
    stored = rest.get(f"/services/{sid}/tasks?state_id={st}").json()
    assert ids(tasks, "task_id") == sorted([populated["state_active"], populated["state_done"]])
    assert ids(tasks, "task_id") == rest_ids(stored, "task_id")

    combined = stub.QueryTasks(pb.QueryTasksRequest(
        service_id=sid, state_id=st, status=pb.TASK_STATUS_COMPLETED, task_types=["5"]), timeout=T).tasks
    assert ids(combined, "task_id") == [populated["state_done"]]
    stored = rest.get(f"/services/{sid}/tasks/completed?task_types=5&state_id={st}").json()
    assert rest_ids(stored, "task_id") == [populated["state_done"]]


@pytest.mark.parametrize("name", ["customer info", "a&b", "x=1", "50%", "café", "a+b", "a,b", "#h?", "/s"])
def test_query_tasks_type_names_need_escaping(pb, stub, name):
    sid = new_service(pb, stub)
    wanted = stub.StartTask(pb.StartTaskRequest(service_id=sid, task_type=attr(pb, name)), timeout=T).task_id
    stub.StartTask(pb.StartTaskRequest(service_id=sid, task_type=attr(pb, "other")), timeout=T)
    tasks = stub.QueryTasks(pb.QueryTasksRequest(service_id=sid, task_types=[name]), timeout=T).tasks
    assert [t.task_id for t in tasks] == [wanted]
    assert tasks[0].task_type.name == name
