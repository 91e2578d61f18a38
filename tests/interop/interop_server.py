"""grpc.testing.TestService on Python grpcio, per grpc's doc/interop-test-descriptions.md.

Usage: /usr/bin/python3 interop_server.py --port=N [--use_tls=false]
Prints "listening on 127.0.0.1:PORT" once it accepts calls (--port=0 picks a free port).

grpcio does not tell a handler whether a request message arrived compressed, so this server
cannot implement the CompressedRequest feature (expect_compressed); like grpc's own Python
interop server it ignores that field.
"""
import argparse
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

from interop_protos import empty_pb2, messages_pb2, test_pb2_grpc

_ECHO_INITIAL = "x-grpc-test-echo-initial"
_ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"


def _echo_metadata(context):
    initial, trailing = [], []
    for key, value in context.invocation_metadata():
        if key == _ECHO_INITIAL:
            initial.append((key, value))
        elif key == _ECHO_TRAILING:
            trailing.append((key, value))
    if initial:
        context.send_initial_metadata(initial)
    if trailing:
        context.set_trailing_metadata(trailing)


def _maybe_abort_with_status(request, context):
    if request.HasField("response_status") and request.response_status.code != 0:
        code = next((c for c in grpc.StatusCode if c.value[0] == request.response_status.code), None)
        if code is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "response_status.code %d is not a gRPC status code" % request.response_status.code)
        context.abort(code, request.response_status.message)


def _payload(size):
    if size < 0:
        raise ValueError("size must be >= 0")
    return messages_pb2.Payload(type=messages_pb2.COMPRESSABLE, body=b"\x00" * size)


class TestService(test_pb2_grpc.TestServiceServicer):
    def EmptyCall(self, request, context):
        _echo_metadata(context)
        return empty_pb2.Empty()

    def UnaryCall(self, request, context):
        _echo_metadata(context)
        _maybe_abort_with_status(request, context)
        if request.response_compressed.value:
            context.set_compression(grpc.Compression.Gzip)
        else:
            context.set_compression(grpc.Compression.NoCompression)
        return messages_pb2.SimpleResponse(payload=_payload(request.response_size))

    def CacheableUnaryCall(self, request, context):
        context.set_trailing_metadata((("cache-control", "max-age=60, public"),))
        return messages_pb2.SimpleResponse(
            payload=messages_pb2.Payload(body=str(time.time_ns()).encode()))

    def StreamingOutputCall(self, request, context):
        _echo_metadata(context)
        if any(p.compressed.value for p in request.response_parameters):
            context.set_compression(grpc.Compression.Gzip)
        for params in request.response_parameters:
            if params.interval_us > 0:
                time.sleep(params.interval_us / 1e6)
            if not params.compressed.value:
                context.disable_next_message_compression()
            yield messages_pb2.StreamingOutputCallResponse(payload=_payload(params.size))
        _maybe_abort_with_status(request, context)

    def StreamingInputCall(self, request_iterator, context):
        _echo_metadata(context)
        total = 0
        for request in request_iterator:
            total += len(request.payload.body)
        return messages_pb2.StreamingInputCallResponse(aggregated_payload_size=total)

    def FullDuplexCall(self, request_iterator, context):
        _echo_metadata(context)
        for request in request_iterator:
            _maybe_abort_with_status(request, context)
            for params in request.response_parameters:
                if params.interval_us > 0:
                    time.sleep(params.interval_us / 1e6)
                yield messages_pb2.StreamingOutputCallResponse(payload=_payload(params.size))

    def HalfDuplexCall(self, request_iterator, context):
        _echo_metadata(context)
        requests = list(request_iterator)
        for request in requests:
            _maybe_abort_with_status(request, context)
            for params in request.response_parameters:
                if params.interval_us > 0:
                    time.sleep(params.interval_us / 1e6)
                yield messages_pb2.StreamingOutputCallResponse(payload=_payload(params.size))
    # UnimplementedCall is deliberately not overridden: the generated base answers UNIMPLEMENTED.


def main():
    parser = argparse.ArgumentParser(description="grpcio interop TestService server")
    parser.add_argument("--port", type=int, required=True, help="port to listen on; 0 picks a free one")
    parser.add_argument("--use_tls", default="false", help="only false is supported")
    args = parser.parse_args()
    if args.use_tls.lower() != "false":
        parser.error("--use_tls: only plaintext (false) is supported by this server")

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    test_pb2_grpc.add_TestServiceServicer_to_server(TestService(), server)
    port = server.add_insecure_port("127.0.0.1:%d" % args.port)
    if port == 0:
        sys.exit("could not bind 127.0.0.1:%d" % args.port)
    server.start()
    print("listening on 127.0.0.1:%d" % port, flush=True)

    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    server.stop(grace=1).wait()


if __name__ == "__main__":
    main()
