#!/usr/bin/python3
"""Works in a namespace of ControlPlane's gRPC API with grpcio: the `cp-namespace` metadata entry on each call.

With authentication off (or a token of every namespace) the header alone picks the namespace; a run submitted in
one is not listed in another, and a namespace nothing was made in is NOT_FOUND with ERROR_REASON_NAMESPACE_NOT_FOUND.

    /usr/bin/python3 tests/clients/python/namespace_client.py --scheduler 127.0.0.1:7070 --google-protos DIR
"""
import argparse, pathlib, sys, uuid
import grpc

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from error_details_client import detail, load_stubs, status_of  # noqa: E402  (stubs are compiled at run time)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scheduler", required=True, help="HOST:PORT of a scheduler with authentication off")
    parser.add_argument("--google-protos", required=True, help="directory holding google/rpc/status.proto and error_details.proto")
    args = parser.parse_args()
    load_stubs(args.google_protos)
    from controlplane.v1 import errors_pb2, run_pb2 as cp, run_service_pb2 as api, run_service_pb2_grpc as api_grpc
    from google.rpc import error_details_pb2

    team = "py-" + uuid.uuid4().hex[:8]
    in_team = [("cp-namespace", team)]
    with grpc.insecure_channel(args.scheduler) as channel:
        runs = api_grpc.RunServiceStub(channel)
        spec = cp.RunSpec(name="in-a-namespace", steps=[cp.StepSpec(id="wait", kind=cp.STEP_KIND_GATE)])
        run = runs.SubmitRun(api.SubmitRunRequest(spec=spec), metadata=in_team, timeout=10).run
        print(f"submitted {run.id} in {team}")

        listed = [r.id for r in runs.ListRuns(api.ListRunsRequest(), metadata=in_team, timeout=10).runs]
        if listed != [run.id]:
            sys.exit(f"FAIL: ListRuns in {team} gave {listed}, expected only {run.id}")
        elsewhere = [r.id for r in runs.ListRuns(api.ListRunsRequest(), timeout=10).runs]
        if run.id in elsewhere:
            sys.exit(f"FAIL: the run of {team} is listed in the default namespace too")
        print(f"listed in {team} only")

        try:
            runs.GetRun(api.GetRunRequest(run_id=run.id), timeout=10)
            sys.exit(f"FAIL: GetRun without the header found the run of {team}")
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                sys.exit(f"FAIL: GetRun without the header: {error.code().name}, expected NOT_FOUND")

        try:
            runs.ListRuns(api.ListRunsRequest(), metadata=[("cp-namespace", team + "-tpyo")], timeout=10)
            sys.exit("FAIL: ListRuns in a namespace nothing was made in succeeded")
        except grpc.RpcError as error:
            status = status_of(error)
            info = detail(status, error_details_pb2.ErrorInfo) if status else None
            expected = errors_pb2.ErrorReason.Name(errors_pb2.ERROR_REASON_NAMESPACE_NOT_FOUND)
            if error.code() != grpc.StatusCode.NOT_FOUND or info is None or info.reason != expected:
                sys.exit(f"FAIL: unknown namespace: {error.code().name}, ErrorInfo {info}; expected NOT_FOUND {expected}")
            print(f"error info {info.reason} namespace={info.metadata['namespace']}")

        cancelled = runs.CancelRun(api.CancelRunRequest(run_id=run.id, reason="done"), metadata=in_team, timeout=10).run
        if cancelled.state != cp.RUN_STATE_CANCELLED:
            sys.exit(f"FAIL: CancelRun in {team} left the run {cp.RunState.Name(cancelled.state)}")
    print("PASS: the cp-namespace metadata picked the namespace of every call")


if __name__ == "__main__":
    try:
        main()
    except grpc.RpcError as error:
        sys.exit(f"FAIL: {error.code().name}: {error.details()}")
