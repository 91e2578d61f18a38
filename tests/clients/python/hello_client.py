#!/usr/bin/python3
"""Runs examples/hello.yaml through ControlPlane's gRPC API with grpcio: submit, watch, check outputs.

    /usr/bin/python3 tests/clients/python/hello_client.py --scheduler 127.0.0.1:7070 --google-protos DIR
"""
import argparse, pathlib, subprocess, sys, tempfile
import grpc
from google.protobuf import text_format

PROTOS = pathlib.Path(__file__).resolve().parents[3] / "protos"
PARTS = ["part-a", "part-b", "part-c"]

# Generate the stubs from the protos at start, as a user's build would. The services' HTTP routes import
# google/api/annotations.proto (googleapis; the Google.Api.CommonProtos package ships it), so it is compiled too.
_parser = argparse.ArgumentParser(description=__doc__)
_parser.add_argument("--scheduler", required=True, help="HOST:PORT of a scheduler, e.g. 127.0.0.1:7070")
_parser.add_argument("--google-protos", required=True, help="directory holding google/api/annotations.proto and http.proto")
_parser.add_argument("--timeout", type=float, default=60, help="seconds the whole run may take (default 60)")
ARGS = _parser.parse_args()
with tempfile.TemporaryDirectory(prefix="cp-stubs-") as out:
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}", f"-I{ARGS.google_protos}", f"--python_out={out}",
                    f"--grpc_python_out={out}", "controlplane/v1/run.proto", "controlplane/v1/run_service.proto",
                    "google/api/annotations.proto", "google/api/http.proto"], check=True)
    sys.path.insert(0, out)
    from controlplane.v1 import run_pb2 as cp, run_service_pb2 as api, run_service_pb2_grpc as api_grpc

PART = """for i in 1 2 3 4 5; do
  echo "::cp progress $((i * 20)) $CP_STEP_ID chunk $i/5"
  sleep 0.2
done
echo "$CP_STEP_ID done after $(wc -l < "$CP_INPUTS_DIR/plan") planned parts" > "$CP_OUTPUT_FILE"
"""

def shell(step_id, command, needs=()):
    return cp.StepSpec(id=step_id, framework="shell", command=command, needs=needs,
                       input_type="text/plain" if needs else "", output_type="text/plain")

# The RunSpec of examples/hello.yaml: plan -> part-a, part-b, part-c -> join.
HELLO = cp.RunSpec(name="hello", labels={"example": "hello"}, concurrency=3, steps=[
    shell("plan", "echo 'planning three parts'\nprintf 'alpha\\nbeta\\ngamma\\n' > \"$CP_OUTPUT_FILE\"\n"),
    *(shell(part, PART, needs=["plan"]) for part in PARTS),
    shell("join", 'cat "$CP_INPUTS_DIR/part-a" "$CP_INPUTS_DIR/part-b" "$CP_INPUTS_DIR/part-c" > "$CP_OUTPUT_FILE"\n'
                  'echo "joined $(wc -l < "$CP_OUTPUT_FILE") results"\n', needs=PARTS),
])

def main():
    args = ARGS
    with grpc.insecure_channel(args.scheduler) as channel:
        runs = api_grpc.RunServiceStub(channel)
        run = runs.SubmitRun(api.SubmitRunRequest(spec=HELLO), timeout=10).run
        print(f"submitted run {run.id} ({cp.RunState.Name(run.state)})")
        # The stream replays every event from seq 1, then tails until the run has ended: no gap, no repeat.
        seen = 0
        watch = runs.WatchRun(api.WatchRunRequest(run_id=run.id, after_seq=0), timeout=args.timeout)
        for seen, event in enumerate((response.event for response in watch), start=1):
            if event.seq != seen:
                sys.exit(f"FAIL: event #{event.seq} arrived where #{seen} was due")
            kind = event.WhichOneof("event")
            print(f"#{event.seq} {kind} {text_format.MessageToString(getattr(event, kind), as_one_line=True)}")
        run = runs.GetRun(api.GetRunRequest(run_id=run.id), timeout=10).run
        if run.state != cp.RUN_STATE_SUCCEEDED:
            sys.exit(f"FAIL: run {run.id} ended {cp.RunState.Name(run.state)}: {run.error}")
        if seen != run.last_event_seq:
            sys.exit(f"FAIL: the watch ended after event #{seen} but the run's last event is #{run.last_event_seq}")
        joined = runs.GetStepOutput(api.GetStepOutputRequest(run_id=run.id, step_id="join"), timeout=10).output.data.decode()
        expected = [f"{part} done after 3 planned parts" for part in PARTS]
        if joined.splitlines() != expected:
            sys.exit(f"FAIL: join's output is {joined!r}; expected the lines {expected}")
        print(f"PASS: run {run.id} SUCCEEDED; join's output:\n{joined}", end="")

if __name__ == "__main__":
    try:
        main()
    except grpc.RpcError as error:
        sys.exit(f"FAIL: {error.code().name}: {error.details()}")
