// Interop test client on @grpc/grpc-js, per grpc's doc/interop-test-descriptions.md.
// Usage: node interop_client.mjs --server_host=127.0.0.1 --server_port=N --test_case=NAME
// Exits 0 when the case passes; otherwise prints what differed and exits 1.
import { grpc, loadTesting } from './interop_protos.mjs';

const testing = loadTesting();
const { status: Code, Metadata } = grpc;
const INITIAL_KEY = 'x-grpc-test-echo-initial';
const INITIAL_VALUE = 'test_initial_metadata_value';
const TRAILING_KEY = 'x-grpc-test-echo-trailing-bin';
const TRAILING_VALUE = Buffer.from([0xab, 0xab, 0xab]);
const SPECIAL_MESSAGE = '\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \u{1F608}\t\n';
const CALL_TIMEOUT_MS = 30000;
const codeName = (code) => Object.keys(Code).find((k) => Code[k] === code) ?? String(code);

class InteropFailure extends Error {}

function check(condition, message) {
  if (!condition) throw new InteropFailure(message);
}

const zeros = (size) => ({ body: Buffer.alloc(size) });
const deadline = (ms = CALL_TIMEOUT_MS) => new Date(Date.now() + ms);

function checkPayload(payload, size, what) {
  const body = payload?.body ?? Buffer.alloc(0);
  check(body.length === size, `${what}: payload body is ${body.length} bytes, expected ${size}`);
  check(body.every((b) => b === 0), `${what}: payload body is not all zeros`);
}

function unary(client, method, request, { metadata = new Metadata(), ms = CALL_TIMEOUT_MS } = {}) {
  return new Promise((resolve) => {
    const result = { headers: null, trailers: null };
    const call = client[method](request, metadata, { deadline: deadline(ms) }, (error, response) => {
      result.error = error;
      result.response = response;
    });
    call.on('metadata', (m) => { result.headers = m; });
    call.on('status', (s) => { result.status = s; result.trailers = s.metadata; resolve(result); });
  });
}

// Reads a duplex/server stream to its end; resolves once both the last message (or the
// error) and the final status have arrived.
function collect(call) {
  return new Promise((resolve) => {
    const result = { messages: [], headers: null };
    let ended = false;
    const settle = () => { if (ended && result.status) resolve(result); };
    call.on('metadata', (m) => { result.headers = m; });
    call.on('data', (m) => result.messages.push(m));
    call.on('end', () => { ended = true; settle(); });
    call.on('error', (e) => { result.error = e; ended = true; settle(); });
    call.on('status', (s) => { result.status = s; settle(); });
  });
}

function expectCode(result, code, what) {
  const got = result.status?.code ?? result.error?.code;
  check(got === code, `${what}: status ${codeName(got)} (${JSON.stringify(result.status?.details ?? result.error?.details)}), expected ${codeName(code)}`);
}

const largeUnaryRequest = (extra = {}) => ({ response_size: 314159, payload: zeros(271828), ...extra });

function nextMessage(call) {
  return new Promise((resolve, reject) => {
    const onData = (m) => { cleanup(); resolve(m); };
    const onError = (e) => { cleanup(); reject(e); };
    const cleanup = () => { call.off('data', onData); call.off('error', onError); };
    call.on('data', onData);
    call.on('error', onError);
  });
}

function waitStatus(call) {
  return new Promise((resolve) => {
    call.on('error', () => {});
    call.on('status', resolve);
  });
}

const cases = {
  async empty_unary({ stub }) {
    const r = await unary(stub, 'EmptyCall', {});
    expectCode(r, Code.OK, 'EmptyCall');
    check(r.response != null, 'EmptyCall response is null');
  },

  async large_unary({ stub }) {
    const r = await unary(stub, 'UnaryCall', largeUnaryRequest());
    expectCode(r, Code.OK, 'UnaryCall');
    checkPayload(r.response.payload, 314159, 'UnaryCall response');
  },

  async client_streaming({ stub }) {
    const done = new Promise((resolve) => {
      const call = stub.StreamingInputCall({ deadline: deadline() }, (error, response) => resolve({ error, response }));
      for (const size of [27182, 8, 1828, 45904]) call.write({ payload: zeros(size) });
      call.end();
    });
    const { error, response } = await done;
    check(!error, `StreamingInputCall failed: ${error?.message}`);
    check(response.aggregated_payload_size === 74922, `aggregated_payload_size is ${response.aggregated_payload_size}, expected 74922`);
  },

  async server_streaming({ stub }) {
    const sizes = [31415, 9, 2653, 58979];
    const call = stub.StreamingOutputCall({ response_parameters: sizes.map((size) => ({ size })) }, { deadline: deadline() });
    const r = await collect(call);
    expectCode(r, Code.OK, 'StreamingOutputCall');
    check(r.messages.length === 4, `got ${r.messages.length} responses, expected exactly 4`);
    sizes.forEach((size, i) => checkPayload(r.messages[i].payload, size, `response ${i}`));
  },

  async ping_pong({ stub }) {
    const requestSizes = [27182, 8, 1828, 45904];
    const responseSizes = [31415, 9, 2653, 58979];
    const call = stub.FullDuplexCall({ deadline: deadline() });
    const status = waitStatus(call);
    let extra = 0;
    for (let i = 0; i < 4; i++) {
      const next = nextMessage(call);
      call.write({ response_parameters: [{ size: responseSizes[i] }], payload: zeros(requestSizes[i]) });
      checkPayload((await next).payload, responseSizes[i], `response ${i}`);
    }
    call.on('data', () => { extra++; });
    call.end();
    const s = await status;
    check(s.code === Code.OK, `call ended with ${codeName(s.code)} (${s.details}), expected OK`);
    check(extra === 0, `got ${extra} responses after the fourth, expected exactly 4`);
  },

  async empty_stream({ stub }) {
    const call = stub.FullDuplexCall({ deadline: deadline() });
    const pending = collect(call);
    call.end();
    const r = await pending;
    expectCode(r, Code.OK, 'FullDuplexCall');
    check(r.messages.length === 0, `got ${r.messages.length} responses, expected zero`);
  },

  async cancel_after_begin({ stub }) {
    const done = new Promise((resolve) => {
      const call = stub.StreamingInputCall({ deadline: deadline() }, (error) => resolve(error));
      call.cancel();
    });
    const error = await done;
    check(error?.code === Code.CANCELLED, `call ended with ${codeName(error?.code ?? Code.OK)}, expected CANCELLED`);
  },

  async cancel_after_first_response({ stub }) {
    const call = stub.FullDuplexCall({ deadline: deadline() });
    const status = waitStatus(call);
    const first = nextMessage(call);
    call.write({ response_parameters: [{ size: 31415 }], payload: zeros(27182) });
    checkPayload((await first).payload, 31415, 'first response');
    call.cancel();
    const s = await status;
    check(s.code === Code.CANCELLED, `call ended with ${codeName(s.code)}, expected CANCELLED`);
  },

  async timeout_on_sleeping_server({ stub }) {
    const call = stub.FullDuplexCall({ deadline: new Date(Date.now() + 1) });
    const status = waitStatus(call);
    call.write({ payload: zeros(27182) });
    const s = await status;
    check(s.code === Code.DEADLINE_EXCEEDED, `call ended with ${codeName(s.code)}, expected DEADLINE_EXCEEDED`);
  },

  async custom_metadata({ stub }) {
    const metadata = () => {
      const m = new Metadata();
      m.add(INITIAL_KEY, INITIAL_VALUE);
      m.add(TRAILING_KEY, TRAILING_VALUE);
      return m;
    };
    const checkEcho = (what, headers, trailers) => {
      const initial = headers?.get(INITIAL_KEY) ?? [];
      check(initial.length === 1 && initial[0] === INITIAL_VALUE, `${what}: initial metadata ${JSON.stringify(headers?.getMap())} lacks ${INITIAL_KEY}=${INITIAL_VALUE}`);
      const trailing = trailers?.get(TRAILING_KEY) ?? [];
      check(trailing.length === 1 && Buffer.isBuffer(trailing[0]) && trailing[0].equals(TRAILING_VALUE),
        `${what}: trailing metadata ${JSON.stringify(trailers?.getMap())} lacks ${TRAILING_KEY}=0xababab`);
    };

    const u = await unary(stub, 'UnaryCall', largeUnaryRequest(), { metadata: metadata() });
    expectCode(u, Code.OK, 'UnaryCall');
    checkPayload(u.response.payload, 314159, 'UnaryCall response');
    checkEcho('UnaryCall', u.headers, u.trailers);

    const call = stub.FullDuplexCall(metadata(), { deadline: deadline() });
    const pending = collect(call);
    call.write({ response_parameters: [{ size: 314159 }], payload: zeros(271828) });
    call.end();
    const d = await pending;
    expectCode(d, Code.OK, 'FullDuplexCall');
    check(d.messages.length === 1, `FullDuplexCall got ${d.messages.length} responses, expected 1`);
    checkPayload(d.messages[0].payload, 314159, 'FullDuplexCall response');
    checkEcho('FullDuplexCall', d.headers, d.status?.metadata);
  },

  async status_code_and_message(ctx) {
    await statusCase(ctx, 'test status message', true);
  },

  async special_status_message(ctx) {
    await statusCase(ctx, SPECIAL_MESSAGE, false);
  },

  async unimplemented_method({ stub }) {
    const r = await unary(stub, 'UnimplementedCall', {});
    expectCode(r, Code.UNIMPLEMENTED, 'TestService/UnimplementedCall');
  },

  async unimplemented_service({ address }) {
    const stub = new testing.UnimplementedService(address, grpc.credentials.createInsecure());
    try {
      const r = await unary(stub, 'UnimplementedCall', {});
      expectCode(r, Code.UNIMPLEMENTED, 'UnimplementedService/UnimplementedCall');
    } finally {
      stub.close();
    }
  },

  async client_compressed_unary({ stub, address }) {
    // grpc-js chooses request compression per channel, so the compressed call uses a second
    // client whose default algorithm is gzip (2).
    const gzipStub = new testing.TestService(address, grpc.credentials.createInsecure(),
      { 'grpc.default_compression_algorithm': 2 });
    try {
      const probe = await unary(stub, 'UnaryCall', largeUnaryRequest({ expect_compressed: { value: true } }));
      expectCode(probe, Code.INVALID_ARGUMENT, 'feature probe (uncompressed request, expect_compressed=true)');
      const compressed = await unary(gzipStub, 'UnaryCall', largeUnaryRequest({ expect_compressed: { value: true } }));
      expectCode(compressed, Code.OK, 'compressed request');
      checkPayload(compressed.response.payload, 314159, 'compressed request\'s response');
      const plain = await unary(stub, 'UnaryCall', largeUnaryRequest({ expect_compressed: { value: false } }));
      expectCode(plain, Code.OK, 'uncompressed request');
      checkPayload(plain.response.payload, 314159, 'uncompressed request\'s response');
    } finally {
      gzipStub.close();
    }
  },

  async server_compressed_unary({ stub }) {
    // grpc-js does not expose a received message's compressed flag; this checks success,
    // sizes and contents (the doc allows it: "some languages may not have access").
    for (const value of [true, false]) {
      const r = await unary(stub, 'UnaryCall', largeUnaryRequest({ response_compressed: { value } }));
      expectCode(r, Code.OK, `response_compressed=${value}`);
      checkPayload(r.response.payload, 314159, `response_compressed=${value} response`);
    }
  },
};

async function statusCase({ stub }, message, withDuplex) {
  const responseStatus = { code: 2, message };
  const u = await unary(stub, 'UnaryCall', { response_status: responseStatus });
  expectCode(u, Code.UNKNOWN, 'UnaryCall with response_status');
  check(u.status.details === message, `UnaryCall status message ${JSON.stringify(u.status.details)}, expected ${JSON.stringify(message)}`);
  if (withDuplex) {
    const call = stub.FullDuplexCall({ deadline: deadline() });
    const status = waitStatus(call);
    call.write({ response_status: responseStatus });
    call.end();
    const s = await status;
    check(s.code === Code.UNKNOWN, `FullDuplexCall status ${codeName(s.code)}, expected UNKNOWN`);
    check(s.details === message, `FullDuplexCall status message ${JSON.stringify(s.details)}, expected ${JSON.stringify(message)}`);
  }
}

function parseArgs(argv) {
  const args = { server_host: '127.0.0.1', use_tls: 'false' };
  for (const arg of argv) {
    const m = /^--([a-z_]+)=(.*)$/.exec(arg);
    if (!m) throw new InteropFailure(`unrecognised argument ${arg}; expected --name=value`);
    args[m[1]] = m[2];
  }
  if (args.use_tls !== 'false') throw new InteropFailure('--use_tls: only plaintext (false) is supported by this client');
  if (!/^\d+$/.test(args.server_port ?? '')) throw new InteropFailure('--server_port=PORT is required');
  if (!(args.test_case in cases)) throw new InteropFailure(`--test_case: unknown case ${JSON.stringify(args.test_case)}; expected one of ${Object.keys(cases).join(', ')}`);
  return args;
}

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(e.message);
    process.exit(2);
  }
  const address = `${args.server_host}:${args.server_port}`;
  const options = args.server_host_override ? { 'grpc.default_authority': args.server_host_override } : {};
  const stub = new testing.TestService(address, grpc.credentials.createInsecure(), options);
  try {
    await cases[args.test_case]({ stub, address });
    console.log(`PASS ${args.test_case}`);
  } catch (e) {
    console.log(`FAIL ${args.test_case}: ${e instanceof InteropFailure ? e.message : e.stack}`);
    process.exitCode = 1;
  } finally {
    stub.close();
  }
}

await main();
