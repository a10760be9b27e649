"""Many calls at once on one HTTP/2 connection."""

from __future__ import annotations

import json

from helpers import CALL_TIMEOUT

N = 500


def test_500_concurrent_start_tasks_on_one_channel(pb, stub, rest):
    sid = stub.StartService(pb.StartServiceRequest(), timeout=CALL_TIMEOUT).service_id
    futures = [
        stub.StartTask.future(pb.StartTaskRequest(
            service_id=sid, task_type=pb.BusinessAttribute(name=f"t{k % 7}"),
            extensions_json=json.dumps({"client": k})), timeout=30)
        for k in range(N)
    ]
    answers = [f.result(timeout=30) for f in futures]
    ids = [a.task_id for a in answers]
    assert sorted(ids) == list(range(1, N + 1))
    for a in answers:
        assert a.location == f"/genesys/1/cs/service/{sid}/tasks/{a.task_id}"

    # Each client's id is its own request's task: what the core stored under that id is what
    # that client sent.
    stored = rest.get(f"/services/{sid}/tasks").json()
    by_id = {t["task_id"]: t for t in stored}
    assert len(by_id) == N
    for k, task_id in enumerate(ids):
        assert by_id[task_id]["client"] == k
        assert by_id[task_id]["task_type"] == f"t{k % 7}"

    # And through the gateway as well.
    tasks = stub.QueryTasks(pb.QueryTasksRequest(service_id=sid), timeout=CALL_TIMEOUT).tasks
    got = {t.task_id: t.extensions_json for t in tasks}
    assert all(got[task_id] == f'{{"client":{k}}}' for k, task_id in enumerate(ids))
