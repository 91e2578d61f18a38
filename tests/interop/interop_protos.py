"""Generates Python stubs for grpc.testing from tests/interop/protos at import time.

The stubs go to a fresh temporary directory (nothing is written into the source tree). The
proto package is grpc.testing, so the generated modules live under a "grpc" folder; that
folder is appended to the installed grpc package's search path so that
"from grpc.testing import test_pb2" resolves without shadowing grpcio itself.
"""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile

import grpc

_HERE = os.path.dirname(os.path.abspath(__file__))
_PROTO_ROOT = os.path.join(_HERE, "protos")
_FILES = ("empty.proto", "messages.proto", "test.proto")


def _generate():
    out = tempfile.mkdtemp(prefix="cp-interop-py-")
    atexit.register(shutil.rmtree, out, True)
    protos = [os.path.join(_PROTO_ROOT, "grpc", "testing", name) for name in _FILES]
    cmd = [sys.executable, "-m", "grpc_tools.protoc", "-I" + _PROTO_ROOT,
           "--python_out=" + out, "--grpc_python_out=" + out] + protos
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit("grpc_tools.protoc failed (install python3-grpc-tools): " + result.stderr)
    for pkg in (os.path.join(out, "grpc"), os.path.join(out, "grpc", "testing")):
        open(os.path.join(pkg, "__init__.py"), "w").close()
    grpc.__path__.append(os.path.join(out, "grpc"))


_generate()

from grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc  # noqa: E402

__all__ = ["empty_pb2", "messages_pb2", "test_pb2_grpc"]
