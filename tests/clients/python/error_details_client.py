#!/usr/bin/python3
"""Reads the rich error details of ControlPlane's gRPC API with grpcio, as any client language can.

A failed call carries a google.rpc.Status in the `grpc-status-details-bin` trailer: INVALID_ARGUMENT lists
every field violation (google.rpc.BadRequest), NOT_FOUND says why (google.rpc.ErrorInfo). Debian has no
grpcio-status, so the google/rpc protos are compiled here like ours (from the Google.Api.CommonProtos package).

    /usr/bin/python3 tests/clients/python/error_details_client.py --scheduler 127.0.0.1:7070 --google-protos DIR
"""
import argparse, pathlib, re, subprocess, sys, tempfile
import grpc

PROTOS = pathlib.Path(__file__).resolve().parents[3] / "protos"
DETAILS_KEY = "grpc-status-details-bin"


def load_stubs(google_protos):
    out = tempfile.mkdtemp(prefix="cp-stubs-")
    # Debian's grpc_tools (1.14) predates proto3 `optional`, which error_details.proto uses on one field; a copy without
    # the label has the same wire format.
    rpc = pathlib.Path(out, "protos", "google", "rpc")
    rpc.mkdir(parents=True)
    for name in ("status.proto", "error_details.proto"):
        text = pathlib.Path(google_protos, "google", "rpc", name).read_text()
        rpc.joinpath(name).write_text(re.sub(r"^(\s*)optional ", r"\1", text, flags=re.MULTILINE))
    # The services' HTTP routes import google/api/annotations.proto, compiled from the same package.
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}", f"-I{rpc.parents[1]}", f"-I{google_protos}",
                    f"--python_out={out}", f"--grpc_python_out={out}", "controlplane/v1/run.proto",
                    "controlplane/v1/run_service.proto", "controlplane/v1/errors.proto", "google/rpc/status.proto",
                    "google/rpc/error_details.proto", "google/api/annotations.proto", "google/api/http.proto"], check=True)
    sys.path.insert(0, out)


def status_of(error):
    """The google.rpc.Status the server attached to a failed call, or None."""
    from google.rpc import status_pb2
    for key, value in error.trailing_metadata() or ():
        if key == DETAILS_KEY:
            return status_pb2.Status.FromString(value)
    return None


def detail(status, message_type):
    for packed in status.details:
        if packed.Is(message_type.DESCRIPTOR):
            message = message_type()
            packed.Unpack(message)
            return message
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scheduler", required=True, help="HOST:PORT of a scheduler, e.g. 127.0.0.1:7070")
    parser.add_argument("--google-protos", required=True, help="directory holding google/rpc/status.proto and error_details.proto")
    args = parser.parse_args()
    load_stubs(args.google_protos)
    from controlplane.v1 import errors_pb2, run_pb2 as cp, run_service_pb2 as api, run_service_pb2_grpc as api_grpc
    from google.rpc import error_details_pb2

    # Two broken steps: an unknown framework, and a need that names no step.
    spec = cp.RunSpec(name="broken", steps=[
        cp.StepSpec(id="build", framework="perl", command="make"),
        cp.StepSpec(id="test", framework="shell", command="make test", needs=["build", "lint"]),
    ])
    with grpc.insecure_channel(args.scheduler) as channel:
        runs = api_grpc.RunServiceStub(channel)
        try:
            runs.SubmitRun(api.SubmitRunRequest(spec=spec), timeout=10)
            sys.exit("FAIL: the scheduler accepted a spec with an unknown framework and an unknown need")
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.INVALID_ARGUMENT:
                sys.exit(f"FAIL: SubmitRun failed with {error.code().name}, expected INVALID_ARGUMENT")
            status = status_of(error)
            bad_request = detail(status, error_details_pb2.BadRequest) if status else None
            if bad_request is None:
                sys.exit(f"FAIL: INVALID_ARGUMENT without a google.rpc.BadRequest in {DETAILS_KEY}")
            for violation in bad_request.field_violations:
                print(f"violation {violation.field}: {violation.description}")
            fields = [v.field for v in bad_request.field_violations]
            if fields != ["steps[0].framework", "steps[1].needs[1]"]:
                sys.exit(f"FAIL: violations at {fields}, expected steps[0].framework and steps[1].needs[1]")

        try:
            runs.GetRun(api.GetRunRequest(run_id="no-such-run"), timeout=10)
            sys.exit("FAIL: GetRun of an unknown run succeeded")
        except grpc.RpcError as error:
            status = status_of(error)
            info = detail(status, error_details_pb2.ErrorInfo) if status else None
            if error.code() != grpc.StatusCode.NOT_FOUND or info is None:
                sys.exit(f"FAIL: GetRun of an unknown run: {error.code().name}, ErrorInfo {info}")
            expected = errors_pb2.ErrorReason.Name(errors_pb2.ERROR_REASON_RUN_NOT_FOUND)
            if info.reason != expected or info.metadata.get("run_id") != "no-such-run":
                sys.exit(f"FAIL: ErrorInfo reason {info.reason!r} metadata {dict(info.metadata)}; expected {expected} for run no-such-run")
            print(f"error info {info.domain} {info.reason} run_id={info.metadata['run_id']}")
    print("PASS: every violation read from google.rpc.BadRequest, the reason from google.rpc.ErrorInfo")


if __name__ == "__main__":
    try:
        main()
    except grpc.RpcError as error:
        sys.exit(f"FAIL: {error.code().name}: {error.details()}")
