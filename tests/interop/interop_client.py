"""Interop test client on Python grpcio, per grpc's doc/interop-test-descriptions.md.

Usage: /usr/bin/python3 interop_client.py --server_host=127.0.0.1 --server_port=N --test_case=NAME
Exits 0 when the case passes; otherwise prints what differed and exits 1.
"""
import argparse
import queue
import sys

import grpc

from interop_protos import empty_pb2, messages_pb2, test_pb2_grpc

_INITIAL_KEY = "x-grpc-test-echo-initial"
_INITIAL_VALUE = "test_initial_metadata_value"
_TRAILING_KEY = "x-grpc-test-echo-trailing-bin"
_TRAILING_VALUE = b"\xab\xab\xab"
_SPECIAL_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"
_CALL_TIMEOUT = 30


class InteropFailure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise InteropFailure(message)


def zeros(size):
    return messages_pb2.Payload(body=b"\x00" * size)


def check_payload(payload, size, what):
    check(len(payload.body) == size, "%s: payload body is %d bytes, expected %d" % (what, len(payload.body), size))
    check(payload.body == b"\x00" * size, "%s: payload body is not all zeros" % what)


def expect_rpc_error(call, code, what):
    try:
        call()
    except grpc.RpcError as error:
        check(error.code() == code, "%s: status %s (%r), expected %s" % (what, error.code(), error.details(), code))
        return error
    raise InteropFailure("%s: call succeeded, expected %s" % (what, code))


class Pipe:
    """A request iterator the test feeds one message at a time (for ping-pong)."""

    _END = object()

    def __init__(self):
        self._queue = queue.Queue()

    def __iter__(self):
        return self

    def __next__(self):
        item = self._queue.get()
        if item is Pipe._END:
            raise StopIteration()
        return item

    def add(self, message):
        self._queue.put(message)

    def close(self):
        self._queue.put(Pipe._END)


def large_unary_request(**extra):
    return messages_pb2.SimpleRequest(response_size=314159, payload=zeros(271828), **extra)


def empty_unary(stub, _channel):
    response = stub.EmptyCall(empty_pb2.Empty(), timeout=_CALL_TIMEOUT)
    check(isinstance(response, empty_pb2.Empty), "EmptyCall returned %r, expected grpc.testing.Empty" % (response,))


def large_unary(stub, _channel):
    response = stub.UnaryCall(large_unary_request(), timeout=_CALL_TIMEOUT)
    check_payload(response.payload, 314159, "UnaryCall response")


def client_streaming(stub, _channel):
    sizes = (27182, 8, 1828, 45904)
    requests = (messages_pb2.StreamingInputCallRequest(payload=zeros(size)) for size in sizes)
    response = stub.StreamingInputCall(requests, timeout=_CALL_TIMEOUT)
    check(response.aggregated_payload_size == 74922,
          "aggregated_payload_size is %d, expected 74922" % response.aggregated_payload_size)


def server_streaming(stub, _channel):
    sizes = (31415, 9, 2653, 58979)
    request = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=size) for size in sizes])
    responses = list(stub.StreamingOutputCall(request, timeout=_CALL_TIMEOUT))
    check(len(responses) == 4, "got %d responses, expected exactly 4" % len(responses))
    for index, (response, size) in enumerate(zip(responses, sizes)):
        check_payload(response.payload, size, "response %d" % index)


def ping_pong(stub, _channel):
    request_sizes = (27182, 8, 1828, 45904)
    response_sizes = (31415, 9, 2653, 58979)
    pipe = Pipe()
    responses = stub.FullDuplexCall(pipe, timeout=_CALL_TIMEOUT)
    try:
        for index, (request_size, response_size) in enumerate(zip(request_sizes, response_sizes)):
            pipe.add(messages_pb2.StreamingOutputCallRequest(
                response_parameters=[messages_pb2.ResponseParameters(size=response_size)],
                payload=zeros(request_size)))
            response = next(responses)
            check_payload(response.payload, response_size, "response %d" % index)
    finally:
        pipe.close()
    rest = list(responses)
    check(not rest, "got %d responses after the fourth, expected exactly 4" % len(rest))
    check(responses.code() == grpc.StatusCode.OK, "call ended with %s, expected OK" % responses.code())


def empty_stream(stub, _channel):
    responses = list(stub.FullDuplexCall(iter(()), timeout=_CALL_TIMEOUT))
    check(not responses, "got %d responses, expected zero" % len(responses))


def cancel_after_begin(stub, _channel):
    pipe = Pipe()
    future = stub.StreamingInputCall.future(pipe, timeout=_CALL_TIMEOUT)
    future.cancel()
    check(future.cancelled(), "call was not cancelled")
    check(future.code() == grpc.StatusCode.CANCELLED, "call ended with %s, expected CANCELLED" % future.code())
    pipe.close()


def cancel_after_first_response(stub, _channel):
    pipe = Pipe()
    responses = stub.FullDuplexCall(pipe, timeout=_CALL_TIMEOUT)
    pipe.add(messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=31415)], payload=zeros(27182)))
    first = next(responses)
    check_payload(first.payload, 31415, "first response")
    responses.cancel()
    expect_rpc_error(lambda: next(responses), grpc.StatusCode.CANCELLED, "reading after cancel")
    check(responses.code() == grpc.StatusCode.CANCELLED, "call ended with %s, expected CANCELLED" % responses.code())
    pipe.close()


def timeout_on_sleeping_server(stub, _channel):
    pipe = Pipe()
    responses = stub.FullDuplexCall(pipe, timeout=0.001)
    pipe.add(messages_pb2.StreamingOutputCallRequest(payload=zeros(27182)))
    expect_rpc_error(lambda: next(responses), grpc.StatusCode.DEADLINE_EXCEEDED, "FullDuplexCall with 1 ms timeout")
    pipe.close()


def _find(metadata, key):
    return [value for k, value in (metadata or ()) if k == key]


def custom_metadata(stub, _channel):
    metadata = ((_INITIAL_KEY, _INITIAL_VALUE), (_TRAILING_KEY, _TRAILING_VALUE))

    response, call = stub.UnaryCall.with_call(large_unary_request(), metadata=metadata, timeout=_CALL_TIMEOUT)
    check_payload(response.payload, 314159, "UnaryCall response")
    check(_find(call.initial_metadata(), _INITIAL_KEY) == [_INITIAL_VALUE],
          "UnaryCall initial metadata %r lacks %s=%s" % (call.initial_metadata(), _INITIAL_KEY, _INITIAL_VALUE))
    check(_find(call.trailing_metadata(), _TRAILING_KEY) == [_TRAILING_VALUE],
          "UnaryCall trailing metadata %r lacks %s=0xababab" % (call.trailing_metadata(), _TRAILING_KEY))

    request = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=314159)], payload=zeros(271828))
    responses = stub.FullDuplexCall(iter((request,)), metadata=metadata, timeout=_CALL_TIMEOUT)
    received = list(responses)
    check(len(received) == 1, "FullDuplexCall got %d responses, expected 1" % len(received))
    check_payload(received[0].payload, 314159, "FullDuplexCall response")
    check(_find(responses.initial_metadata(), _INITIAL_KEY) == [_INITIAL_VALUE],
          "FullDuplexCall initial metadata %r lacks %s" % (responses.initial_metadata(), _INITIAL_KEY))
    check(_find(responses.trailing_metadata(), _TRAILING_KEY) == [_TRAILING_VALUE],
          "FullDuplexCall trailing metadata %r lacks %s=0xababab" % (responses.trailing_metadata(), _TRAILING_KEY))


def _status_case(stub, message, with_duplex):
    status = messages_pb2.EchoStatus(code=2, message=message)
    error = expect_rpc_error(
        lambda: stub.UnaryCall(messages_pb2.SimpleRequest(response_status=status), timeout=_CALL_TIMEOUT),
        grpc.StatusCode.UNKNOWN, "UnaryCall with response_status")
    check(error.details() == message, "UnaryCall status message %r, expected %r" % (error.details(), message))
    if with_duplex:
        request = messages_pb2.StreamingOutputCallRequest(response_status=status)
        error = expect_rpc_error(
            lambda: list(stub.FullDuplexCall(iter((request,)), timeout=_CALL_TIMEOUT)),
            grpc.StatusCode.UNKNOWN, "FullDuplexCall with response_status")
        check(error.details() == message, "FullDuplexCall status message %r, expected %r" % (error.details(), message))


def status_code_and_message(stub, _channel):
    _status_case(stub, "test status message", with_duplex=True)


def special_status_message(stub, _channel):
    _status_case(stub, _SPECIAL_MESSAGE, with_duplex=False)


def unimplemented_method(stub, _channel):
    expect_rpc_error(lambda: stub.UnimplementedCall(empty_pb2.Empty(), timeout=_CALL_TIMEOUT),
                     grpc.StatusCode.UNIMPLEMENTED, "TestService/UnimplementedCall")


def unimplemented_service(_stub, channel):
    stub = test_pb2_grpc.UnimplementedServiceStub(channel)
    expect_rpc_error(lambda: stub.UnimplementedCall(empty_pb2.Empty(), timeout=_CALL_TIMEOUT),
                     grpc.StatusCode.UNIMPLEMENTED, "UnimplementedService/UnimplementedCall")


def client_compressed_unary(stub, _channel):
    expect_true = messages_pb2.BoolValue(value=True)
    expect_false = messages_pb2.BoolValue(value=False)
    expect_rpc_error(
        lambda: stub.UnaryCall(large_unary_request(expect_compressed=expect_true),
                               compression=grpc.Compression.NoCompression, timeout=_CALL_TIMEOUT),
        grpc.StatusCode.INVALID_ARGUMENT, "feature probe (uncompressed request, expect_compressed=true)")
    response = stub.UnaryCall(large_unary_request(expect_compressed=expect_true),
                              compression=grpc.Compression.Gzip, timeout=_CALL_TIMEOUT)
    check_payload(response.payload, 314159, "compressed request's response")
    response = stub.UnaryCall(large_unary_request(expect_compressed=expect_false),
                              compression=grpc.Compression.NoCompression, timeout=_CALL_TIMEOUT)
    check_payload(response.payload, 314159, "uncompressed request's response")


def server_compressed_unary(stub, _channel):
    # grpcio does not expose a received message's compressed flag, so this checks success,
    # sizes and contents (the doc allows it: "some languages may not have access").
    for compressed in (True, False):
        response = stub.UnaryCall(
            large_unary_request(response_compressed=messages_pb2.BoolValue(value=compressed)),
            timeout=_CALL_TIMEOUT)
        check_payload(response.payload, 314159, "response_compressed=%s response" % compressed)


CASES = {f.__name__: f for f in (
    empty_unary, large_unary, client_streaming, server_streaming, ping_pong, empty_stream,
    cancel_after_begin, cancel_after_first_response, timeout_on_sleeping_server, custom_metadata,
    status_code_and_message, special_status_message, unimplemented_method, unimplemented_service,
    client_compressed_unary, server_compressed_unary)}


def main():
    parser = argparse.ArgumentParser(description="grpcio interop client")
    parser.add_argument("--server_host", default="127.0.0.1")
    parser.add_argument("--server_host_override", default=None)
    parser.add_argument("--server_port", type=int, required=True)
    parser.add_argument("--test_case", required=True, help="one of: " + ", ".join(CASES))
    parser.add_argument("--use_tls", default="false", help="only false is supported")
    parser.add_argument("--use_test_ca", default="false")
    args = parser.parse_args()
    if args.use_tls.lower() != "false":
        parser.error("--use_tls: only plaintext (false) is supported by this client")
    case = CASES.get(args.test_case)
    if case is None:
        parser.error("--test_case: unknown case %r; expected one of %s" % (args.test_case, ", ".join(CASES)))

    options = []
    if args.server_host_override:
        options.append(("grpc.default_authority", args.server_host_override))
    with grpc.insecure_channel("%s:%d" % (args.server_host, args.server_port), options=options) as channel:
        stub = test_pb2_grpc.TestServiceStub(channel)
        try:
            case(stub, channel)
        except InteropFailure as failure:
            print("FAIL %s: %s" % (args.test_case, failure), flush=True)
            sys.exit(1)
        except grpc.RpcError as error:
            print("FAIL %s: unexpected RPC error %s: %r" % (args.test_case, error.code(), error.details()), flush=True)
            sys.exit(1)
    print("PASS %s" % args.test_case, flush=True)


if __name__ == "__main__":
    main()
