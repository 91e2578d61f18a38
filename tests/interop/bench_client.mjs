// grpc-js side of the transport benchmark: drives one workload against a TestService server
// and prints one JSON line {"ops":N,"seconds":S}.
// Usage: node bench_client.mjs --port=N --workload=unary|duplex --callers=C --duration=S --warmup=S --payload=B
import { grpc, loadTesting } from './interop_protos.mjs';

const args = Object.fromEntries(process.argv.slice(2).map((a) => {
  const m = /^--([a-z_]+)=(.*)$/.exec(a);
  if (!m) {
    console.error(`unrecognised argument ${a}; expected --name=value`);
    process.exit(2);
  }
  return [m[1], m[2]];
}));
const num = (name, fallback) => {
  const v = args[name] ?? fallback;
  if (v === undefined || Number.isNaN(Number(v))) {
    console.error(`--${name}=NUMBER is required`);
    process.exit(2);
  }
  return Number(v);
};
const port = num('port');
const callers = num('callers', 1);
const duration = num('duration', 3);
const warmup = num('warmup', 1);
const payloadSize = num('payload', 100);
const workload = args.workload;
if (workload !== 'unary' && workload !== 'duplex') {
  console.error('--workload must be unary or duplex');
  process.exit(2);
}

const testing = loadTesting();
const client = new testing.TestService(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
const payload = { body: Buffer.alloc(payloadSize) };
let counting = false;
let stopped = false;
let ops = 0;

function unaryLoop() {
  return new Promise((resolve, reject) => {
    const next = () => {
      if (stopped) return resolve();
      client.UnaryCall({ response_size: payloadSize, payload }, (error) => {
        if (error) return reject(error);
        if (counting) ops++;
        next();
      });
    };
    next();
  });
}

function duplexLoop() {
  return new Promise((resolve, reject) => {
    const call = client.FullDuplexCall();
    const request = { response_parameters: [{ size: payloadSize }], payload };
    call.on('data', () => {
      if (counting) ops++;
      if (stopped) call.end(); else call.write(request);
    });
    call.on('error', reject);
    call.on('status', (s) => (s.code === grpc.status.OK ? resolve() : reject(new Error(s.details))));
    call.write(request);
  });
}

const loop = workload === 'unary' ? unaryLoop : duplexLoop;
const loops = Array.from({ length: callers }, () => loop());
const failed = Promise.all(loops).catch((e) => {
  console.error(`benchmark call failed: ${e.message}`);
  process.exit(1);
});
await new Promise((r) => setTimeout(r, warmup * 1000));
counting = true;
const start = process.hrtime.bigint();
await new Promise((r) => setTimeout(r, duration * 1000));
counting = false;
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const counted = ops;
stopped = true;
await failed;
client.close();
console.log(JSON.stringify({ ops: counted, seconds }));
