// grpc.testing.TestService on @grpc/grpc-js: the baseline server of the transport benchmark.
// Usage: node bench_server.mjs --port=N   (prints "listening on 127.0.0.1:PORT" when ready)
// Implements EmptyCall, UnaryCall, StreamingOutputCall, StreamingInputCall and FullDuplexCall
// with the interop behaviours (response sizes, echo metadata, response_status).
import { grpc, loadTesting } from './interop_protos.mjs';

const testing = loadTesting();

function echoMetadata(call) {
  const initial = call.metadata.get('x-grpc-test-echo-initial');
  const trailing = call.metadata.get('x-grpc-test-echo-trailing-bin');
  const headers = new grpc.Metadata();
  initial.forEach((v) => headers.add('x-grpc-test-echo-initial', v));
  if (initial.length) call.sendMetadata(headers);
  const trailers = new grpc.Metadata();
  trailing.forEach((v) => trailers.add('x-grpc-test-echo-trailing-bin', v));
  return trailers;
}

const payload = (size) => ({ body: Buffer.alloc(size) });
const statusOf = (request) => (request.response_status && request.response_status.code
  ? { code: request.response_status.code, details: request.response_status.message ?? '' } : null);

const service = {
  EmptyCall(call, callback) {
    callback(null, {}, echoMetadata(call));
  },
  UnaryCall(call, callback) {
    const trailers = echoMetadata(call);
    const status = statusOf(call.request);
    if (status) return callback({ ...status, metadata: trailers });
    callback(null, { payload: payload(call.request.response_size ?? 0) }, trailers);
  },
  StreamingOutputCall(call) {
    const trailers = echoMetadata(call);
    for (const p of call.request.response_parameters ?? []) call.write({ payload: payload(p.size ?? 0) });
    const status = statusOf(call.request);
    if (status) return call.emit('error', { ...status, metadata: trailers });
    call.end(trailers);
  },
  StreamingInputCall(call, callback) {
    const trailers = echoMetadata(call);
    let total = 0;
    call.on('data', (r) => { total += r.payload?.body?.length ?? 0; });
    call.on('end', () => callback(null, { aggregated_payload_size: total }, trailers));
  },
  FullDuplexCall(call) {
    const trailers = echoMetadata(call);
    let failed = false;
    call.on('data', (r) => {
      if (failed) return;
      const status = statusOf(r);
      if (status) {
        failed = true;
        call.emit('error', { ...status, metadata: trailers });
        return;
      }
      for (const p of r.response_parameters ?? []) call.write({ payload: payload(p.size ?? 0) });
    });
    call.on('end', () => { if (!failed) call.end(trailers); });
  },
};

const portArg = process.argv.slice(2).find((a) => a.startsWith('--port='));
if (!portArg || !/^\d+$/.test(portArg.slice(7))) {
  console.error('--port=N is required (0 picks a free port)');
  process.exit(2);
}
const server = new grpc.Server();
server.addService(testing.TestService.service, service);
server.bindAsync(`127.0.0.1:${portArg.slice(7)}`, grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error) {
    console.error(`bind failed: ${error.message}`);
    process.exit(1);
  }
  console.log(`listening on 127.0.0.1:${port}`);
});
const stop = () => server.tryShutdown(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
