"""Tenancy (§6): the `contactcenterid` metadata names the tenant, as the `ContactCenterId`
header does for REST clients, and one tenant's data is invisible to every other."""

from __future__ import annotations

import uuid

import grpc
import pytest

from helpers import CALL_TIMEOUT, trailing

T = CALL_TIMEOUT


def tenant(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def md(name: str | None):
    return None if name is None else [("contactcenterid", name)]


def not_found(call, request, metadata):
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=T, metadata=metadata)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND, metadata
    assert trailing(caught.value)["cs-exception"] == "NotFoundException"


def test_a_service_of_tenant_a_is_not_found_elsewhere(pb, stub, rest):
    a, b = tenant("A"), tenant("B")
    sid = stub.StartService(pb.StartServiceRequest(customer_id="of-a"), timeout=T, metadata=md(a)).service_id
    tid = stub.StartTask(pb.StartTaskRequest(service_id=sid), timeout=T, metadata=md(a)).task_id

    # Tenant A sees it, through both doors.
    assert stub.QueryService(pb.QueryServiceRequest(service_id=sid), timeout=T, metadata=md(a)).service.customer_id == "of-a"
    assert rest.get(f"/services/{sid}", tenant=a).json()["customer_id"] == "of-a"

    # Tenant B and the default tenant do not.
    for other in (b, None):
        not_found(stub.QueryService, pb.QueryServiceRequest(service_id=sid), md(other))
        not_found(stub.QueryTask, pb.QueryTaskRequest(service_id=sid, task_id=tid), md(other))
        not_found(stub.StartTask, pb.StartTaskRequest(service_id=sid), md(other))
        not_found(stub.CompleteService, pb.CompleteServiceRequest(service_id=sid), md(other))
        not_found(stub.DeleteService, pb.DeleteServiceRequest(service_id=sid), md(other))
        response = rest.get(f"/services/{sid}", tenant=other)
        assert response.status == 404, response
        assert response.json() == {"message": f"There are no service found for : {sid}", "exception": "NotFoundException"}

    # None of that changed anything for A.
    tasks = stub.QueryTasks(pb.QueryTasksRequest(service_id=sid), timeout=T, metadata=md(a)).tasks
    assert [t.task_id for t in tasks] == [tid]
    assert rest.get(f"/services/{sid}", tenant=a).json().get("completed") is None


def test_rest_writes_are_seen_by_grpc_of_the_same_tenant(pb, stub, rest):
    c = tenant("C")
    created = rest.post("/services/start", {"customer_id": "via-rest"}, tenant=c)
    assert created.status == 201, created
    sid = created.json()["service_id"]
    assert stub.QueryService(pb.QueryServiceRequest(service_id=sid), timeout=T, metadata=md(c)).service.customer_id == "via-rest"
    not_found(stub.QueryService, pb.QueryServiceRequest(service_id=sid), md(None))


def test_default_tenant(pb, stub, rest):
    # No metadata, and an empty value, both name the default tenant (README: Tenants).
    sid = stub.StartService(pb.StartServiceRequest(customer_id="default"), timeout=T).service_id
    assert rest.get(f"/services/{sid}").json()["customer_id"] == "default"
    assert stub.QueryService(pb.QueryServiceRequest(service_id=sid), timeout=T, metadata=md("")).service.customer_id == "default"
    not_found(stub.QueryService, pb.QueryServiceRequest(service_id=sid), md(tenant("D")))


def test_tenant_name_too_long(pb, stub):
    with pytest.raises(grpc.RpcError) as caught:
        stub.StartService(pb.StartServiceRequest(), timeout=T, metadata=md("x" * 257))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert trailing(caught.value)["cs-exception"] == "ValidationException"
    # 256 is fine.
    assert stub.StartService(pb.StartServiceRequest(), timeout=T, metadata=md("x" * 256)).service_id >= 1
