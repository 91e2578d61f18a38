// Runs examples/hello.yaml through ControlPlane's gRPC API with @grpc/grpc-js: submit, watch, check outputs.
//   node tests/clients/node/hello_client.mjs --scheduler 127.0.0.1:7070 --google-protos DIR
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const fail = (message) => { console.error(`FAIL: ${message}`); process.exit(1); };
const { values: args } = parseArgs({
  options: { scheduler: { type: "string" }, "google-protos": { type: "string" }, timeout: { type: "string", default: "60" } },
});
if (!args.scheduler) fail("--scheduler HOST:PORT is required, e.g. --scheduler 127.0.0.1:7070");
if (!args["google-protos"]) fail("--google-protos DIR is required: a directory holding google/api/annotations.proto (googleapis)");

// The services' HTTP routes import google/api/annotations.proto, so googleapis is on the include path.
const protos = fileURLToPath(new URL("../../../protos", import.meta.url));
const definition = protoLoader.loadSync("controlplane/v1/run_service.proto",
  { includeDirs: [protos, args["google-protos"]], longs: String, enums: String, defaults: true, oneofs: true });
const { RunService } = grpc.loadPackageDefinition(definition).controlplane.v1;

const part = `for i in 1 2 3 4 5; do
  echo "::cp progress $((i * 20)) $CP_STEP_ID chunk $i/5"
  sleep 0.2
done
echo "$CP_STEP_ID done after $(wc -l < "$CP_INPUTS_DIR/plan") planned parts" > "$CP_OUTPUT_FILE"
`;
const parts = ["part-a", "part-b", "part-c"];
const shell = (id, command, needs = []) =>
  ({ id, framework: "shell", command, needs, inputType: needs.length ? "text/plain" : "", outputType: "text/plain" });

// The RunSpec of examples/hello.yaml: plan -> part-a, part-b, part-c -> join.
const hello = {
  name: "hello", labels: { example: "hello" }, concurrency: 3, steps: [
    shell("plan", `echo 'planning three parts'\nprintf 'alpha\\nbeta\\ngamma\\n' > "$CP_OUTPUT_FILE"\n`),
    ...parts.map((id) => shell(id, part, ["plan"])),
    shell("join", `cat "$CP_INPUTS_DIR/part-a" "$CP_INPUTS_DIR/part-b" "$CP_INPUTS_DIR/part-c" > "$CP_OUTPUT_FILE"
echo "joined $(wc -l < "$CP_OUTPUT_FILE") results"\n`, parts),
  ],
};

const runs = new RunService(args.scheduler, grpc.credentials.createInsecure());
const deadline = (seconds) => ({ deadline: Date.now() + seconds * 1000 });
const call = (method, request) => new Promise((resolve, reject) =>
  runs[method](request, deadline(10), (error, response) => (error ? reject(error) : resolve(response))));

try {
  let { run } = await call("SubmitRun", { spec: hello });
  console.log(`submitted run ${run.id} (${run.state})`);
  // The stream replays every event from seq 1, then tails until the run has ended: no gap, no repeat.
  let seen = 0;
  for await (const { event } of runs.WatchRun({ runId: run.id, afterSeq: "0" }, deadline(Number(args.timeout)))) {
    if (Number(event.seq) !== ++seen) fail(`event #${event.seq} arrived where #${seen} was due`);
    console.log(`#${event.seq} ${event.event} ${JSON.stringify(event[event.event])}`);
  }
  ({ run } = await call("GetRun", { runId: run.id }));
  if (run.state !== "RUN_STATE_SUCCEEDED") fail(`run ${run.id} ended ${run.state}: ${run.error}`);
  if (seen !== Number(run.lastEventSeq)) fail(`the watch ended after event #${seen} but the run's last event is #${run.lastEventSeq}`);
  const { output } = await call("GetStepOutput", { runId: run.id, stepId: "join" });
  const joined = output.data.toString("utf8");
  const expected = parts.map((id) => `${id} done after 3 planned parts`);
  if (joined.trimEnd().split("\n").join() !== expected.join()) fail(`join's output is ${JSON.stringify(joined)}; expected the lines ${expected}`);
  console.log(`PASS: run ${run.id} SUCCEEDED; join's output:\n${joined.trimEnd()}`);
  runs.close();
} catch (error) {
  fail(`${grpc.status[error.code] ?? "ERROR"}: ${error.details ?? error.message}`);
}
