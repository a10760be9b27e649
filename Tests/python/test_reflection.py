"""gRPC server reflection (grpc.reflection.v1 and v1alpha) against the real gateway: a generic
client that has no .proto file and no generated stub lists the services, resolves StartTask's
messages from the reflected descriptors alone and makes real calls with them; the
bidirectional stream answers each request as it comes, several on one stream."""

from __future__ import annotations

import queue
from types import SimpleNamespace

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection_pb2 as rpb
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from helpers import CALL_TIMEOUT

METHODS = {
    "v1": "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "v1alpha": "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
}
SERVICES = {
    "genesys.cs.v1.ContextServices",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
}
NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]


def reflection_call(channel: grpc.Channel, version: str):
    """The bidirectional ServerReflectionInfo of `version`. grpcio-reflection ships v1alpha's
    messages only; v1's are the same messages with the same field numbers under a newer
    package name, so they serve both (the method name is what differs on the wire)."""
    return channel.stream_stream(METHODS[version],
                                 request_serializer=rpb.ServerReflectionRequest.SerializeToString,
                                 response_deserializer=rpb.ServerReflectionResponse.FromString)


def reflection_database(channel: grpc.Channel, version: str) -> ProtoReflectionDescriptorDatabase:
    """grpcio-reflection's descriptor database, talking `version`."""
    database = ProtoReflectionDescriptorDatabase(channel)
    database._stub = SimpleNamespace(ServerReflectionInfo=reflection_call(channel, version))
    return database


@pytest.fixture(scope="module")
def reflection_channel(gateway):
    channel = gateway.channel()
    grpc.channel_ready_future(channel).result(timeout=CALL_TIMEOUT)
    yield channel
    channel.close()


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_a_reflection_client_calls_start_task_from_reflected_descriptors_alone(reflection_channel, version):
    database = reflection_database(reflection_channel, version)
    assert set(database.get_services()) == SERVICES

    # Everything below comes from the server: no .proto, no generated module of ours.
    pool = descriptor_pool.DescriptorPool(database)
    service = pool.FindServiceByName("genesys.cs.v1.ContextServices")
    start_task = service.methods_by_name["StartTask"]
    assert start_task.input_type.full_name == "genesys.cs.v1.StartTaskRequest"
    assert {f.name for f in start_task.input_type.fields} >= {"service_id", "task_type", "extensions_json", "extensions"}
    # The import (google/protobuf/struct.proto) came along as a dependency.
    assert start_task.input_type.fields_by_name["extensions"].message_type.full_name == "google.protobuf.Struct"

    def unary(method):
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        call = reflection_channel.unary_unary(f"/{service.full_name}/{method.name}",
                                              request_serializer=request_class.SerializeToString,
                                              response_deserializer=response_class.FromString)
        return request_class, call

    StartServiceRequest, start_service_call = unary(service.methods_by_name["StartService"])
    service_id = start_service_call(StartServiceRequest(customer_id="c-reflected"), timeout=CALL_TIMEOUT).service_id
    assert service_id >= 1

    StartTaskRequest, start_task_call = unary(start_task)
    request = StartTaskRequest(service_id=service_id, extensions_json='{"question3":"will be better with cable tv"}')
    request.task_type.name = "customer info"
    answer = start_task_call(request, timeout=CALL_TIMEOUT)
    assert answer.task_id == 1
    assert answer.location == f"/genesys/1/cs/service/{service_id}/tasks/1"

    QueryTaskRequest, query_task_call = unary(service.methods_by_name["QueryTask"])
    task = query_task_call(QueryTaskRequest(service_id=service_id, task_id=1), timeout=CALL_TIMEOUT).task
    assert task.task_type.name == "customer info"
    assert task.extensions_json == '{"question3":"will be better with cable tv"}'


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_one_stream_answers_each_request_as_it_comes(reflection_channel, version):
    """As grpcurl uses it: the next request is sent only once the previous one is answered, on
    one stream; every kind of request; errors about one request do not end the stream."""
    requests: queue.Queue = queue.Queue()

    def outgoing():
        while (item := requests.get(timeout=CALL_TIMEOUT)) is not None:
            yield item

    call = reflection_call(reflection_channel, version)(outgoing(), timeout=CALL_TIMEOUT)

    def ask(**fields):
        request = rpb.ServerReflectionRequest(host="h", **fields)
        requests.put(request)
        response = next(call)
        assert response.valid_host == "h"
        assert response.original_request == request
        return response

    listed = ask(list_services="*").list_services_response
    assert {s.name for s in listed.service} == SERVICES

    def file_names(response):
        from google.protobuf.descriptor_pb2 import FileDescriptorProto
        assert response.WhichOneof("message_response") == "file_descriptor_response", response
        return [FileDescriptorProto.FromString(b).name for b in response.file_descriptor_response.file_descriptor_proto]

    for symbol in ["genesys.cs.v1.ContextServices", "genesys.cs.v1.ContextServices.StartTask",
                   "genesys.cs.v1.StartTaskRequest", "genesys.cs.v1.BusinessAttribute"]:
        assert file_names(ask(file_containing_symbol=symbol)) == [
            "genesys/cs/v1/context_services.proto", "google/protobuf/struct.proto"]
    assert file_names(ask(file_containing_symbol="grpc.health.v1.HealthCheckResponse.ServingStatus")) == [
        "grpc/health/v1/health.proto"]
    assert file_names(ask(file_by_filename="grpc/reflection/v1/reflection.proto")) == [
        "grpc/reflection/v1/reflection.proto"]

    for fields in [dict(file_containing_symbol="genesys.cs.v1.NoSuchThing"),
                   dict(file_by_filename="nope.proto"),
                   dict(file_containing_extension=rpb.ExtensionRequest(containing_type="genesys.cs.v1.StartTaskRequest",
                                                                       extension_number=100)),
                   dict(all_extension_numbers_of_type="genesys.cs.v1.StartTaskRequest")]:
        response = ask(**fields)
        assert response.WhichOneof("message_response") == "error_response", fields
        assert response.error_response.error_code == NOT_FOUND
        assert response.error_response.error_message

    # Half-close: the call ends OK after the answers.
    requests.put(None)
    assert list(call) == []
    assert call.code() == grpc.StatusCode.OK


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
def test_requests_sent_at_once_get_their_answers_in_order(reflection_channel, version):
    asked = [rpb.ServerReflectionRequest(list_services=""),
             rpb.ServerReflectionRequest(file_by_filename="grpc/health/v1/health.proto"),
             rpb.ServerReflectionRequest(file_containing_symbol="grpc.reflection.v1alpha.ServerReflection")]
    answers = list(reflection_call(reflection_channel, version)(iter(asked), timeout=CALL_TIMEOUT))
    assert [a.original_request for a in answers] == asked
    assert [a.WhichOneof("message_response") for a in answers] == [
        "list_services_response", "file_descriptor_response", "file_descriptor_response"]


def test_a_stream_without_requests_ends_ok(reflection_channel):
    call = reflection_call(reflection_channel, "v1")(iter([]), timeout=CALL_TIMEOUT)
    assert list(call) == []
    assert call.code() == grpc.StatusCode.OK


def test_a_request_without_a_question_ends_the_call(reflection_channel):
    call = reflection_call(reflection_channel, "v1")(
        iter([rpb.ServerReflectionRequest(list_services=""), rpb.ServerReflectionRequest(host="only")]),
        timeout=CALL_TIMEOUT)
    first = next(call)
    assert first.WhichOneof("message_response") == "list_services_response"
    with pytest.raises(grpc.RpcError) as failure:
        next(call)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_the_served_descriptors_are_protocs(reflection_channel, tmp_path):
    """The embedded set is what protoc makes of proto/ today (check-generated.sh checks the
    bytes; this checks what the client receives)."""
    from google.protobuf.descriptor_pb2 import FileDescriptorSet
    from grpc_tools import protoc
    import grpc_tools
    from helpers import PROTO_DIR
    from pathlib import Path

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    out = tmp_path / "set.pb"
    assert protoc.main(["protoc", f"-I{PROTO_DIR}", f"-I{well_known}", "--include_imports",
                        f"--descriptor_set_out={out}", "genesys/cs/v1/context_services.proto"]) == 0
    expected = {f.name: f for f in FileDescriptorSet.FromString(out.read_bytes()).file}
    response = next(reflection_call(reflection_channel, "v1alpha")(
        iter([rpb.ServerReflectionRequest(file_by_filename="genesys/cs/v1/context_services.proto")]),
        timeout=CALL_TIMEOUT))
    from google.protobuf.descriptor_pb2 import FileDescriptorProto
    served = [FileDescriptorProto.FromString(b) for b in response.file_descriptor_response.file_descriptor_proto]
    assert {f.name for f in served} == set(expected)
    for f in served:
        assert f == expected[f.name], f.name
