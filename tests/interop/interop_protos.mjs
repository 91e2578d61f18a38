// Loads grpc.testing from tests/interop/protos with @grpc/proto-loader (tests/node_modules).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const here = path.dirname(fileURLToPath(import.meta.url));

export function loadTesting() {
  const definition = protoLoader.loadSync('grpc/testing/test.proto', {
    includeDirs: [path.join(here, 'protos')],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).grpc.testing;
}

export { grpc };
