#!/usr/bin/python3
"""Echo service on grpcio, the reference gRPC implementation, for the RpcChannel tests.

Service cp.test.Echo, messages are google.protobuf wrappers so no generated code is needed.
Request metadata steers each call:
  x-echo-*          echoed back as response headers and as trailers
  x-fail-code       end the call with that status (after the responses, for streams), with the
                    detail from x-fail-message (ASCII) or x-fail-message-bin (UTF-8)
  x-count           number of responses of ServerStream
  x-response-size   Unary answers with a value of this many bytes instead of the echo
  x-compress        "gzip": the server compresses its responses
  x-call-id         Sleep sends headers, then waits and records the id once the client cancels
Prints "LISTENING <port>" once serving; exits when stdin closes.
"""
import sys
import threading
from concurrent import futures

import grpc
from google.protobuf import wrappers_pb2

SERVICE = "cp.test.Echo"

cancelled_ids = set()
cancelled_cond = threading.Condition()


def _echo_metadata(context):
    return tuple((k, v) for k, v in context.invocation_metadata() if k.startswith("x-echo-"))


def _prepare(context):
    md = dict(context.invocation_metadata())
    if md.get("x-compress") == "gzip":
        context.set_compression(grpc.Compression.Gzip)
    echoed = _echo_metadata(context)
    if echoed:
        context.send_initial_metadata(echoed)
        context.set_trailing_metadata(echoed)
    return md


def _maybe_fail(md, context):
    code = md.get("x-fail-code")
    if code is not None:
        status = next(s for s in grpc.StatusCode if s.value[0] == int(code))
        message = md.get("x-fail-message-bin")
        context.abort(status, message.decode("utf-8") if message is not None else md.get("x-fail-message", ""))


def unary(request, context):
    md = _prepare(context)
    _maybe_fail(md, context)
    size = md.get("x-response-size")
    if size is not None:
        return wrappers_pb2.BytesValue(value=b"x" * int(size))
    return request


def server_stream(request, context):
    md = _prepare(context)
    for i in range(int(md.get("x-count", "1"))):
        yield wrappers_pb2.BytesValue(value=request.value + str(i).encode())
    _maybe_fail(md, context)


def client_stream(request_iterator, context):
    md = _prepare(context)
    joined = b"".join(r.value for r in request_iterator)
    _maybe_fail(md, context)
    return wrappers_pb2.BytesValue(value=joined)


def duplex(request_iterator, context):
    md = _prepare(context)
    for r in request_iterator:
        yield r
    _maybe_fail(md, context)


def sleep(request, context):
    md = dict(context.invocation_metadata())
    context.send_initial_metadata((("x-sleeping", "1"),))
    done = threading.Event()
    context.add_callback(done.set)
    done.wait()
    with cancelled_cond:
        if not context.is_active():
            cancelled_ids.add(md.get("x-call-id", ""))
            cancelled_cond.notify_all()
    return request


def was_cancelled(request, context):
    with cancelled_cond:
        found = cancelled_cond.wait_for(lambda: request.value in cancelled_ids, timeout=10)
    return wrappers_pb2.BoolValue(value=found)


def _handlers():
    b = wrappers_pb2.BytesValue
    s = wrappers_pb2.StringValue
    return {
        "Unary": grpc.unary_unary_rpc_method_handler(
            unary, request_deserializer=b.FromString, response_serializer=b.SerializeToString),
        "ServerStream": grpc.unary_stream_rpc_method_handler(
            server_stream, request_deserializer=b.FromString, response_serializer=b.SerializeToString),
        "ClientStream": grpc.stream_unary_rpc_method_handler(
            client_stream, request_deserializer=b.FromString, response_serializer=b.SerializeToString),
        "Duplex": grpc.stream_stream_rpc_method_handler(
            duplex, request_deserializer=b.FromString, response_serializer=b.SerializeToString),
        "Sleep": grpc.unary_unary_rpc_method_handler(
            sleep, request_deserializer=b.FromString, response_serializer=b.SerializeToString),
        "WasCancelled": grpc.unary_unary_rpc_method_handler(
            was_cancelled, request_deserializer=s.FromString,
            response_serializer=wrappers_pb2.BoolValue.SerializeToString),
    }


def main():
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=32),
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024),
                 ("grpc.max_send_message_length", 64 * 1024 * 1024)])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, _handlers()),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"LISTENING {port}", flush=True)
    sys.stdin.read()
    server.stop(0)


if __name__ == "__main__":
    main()
