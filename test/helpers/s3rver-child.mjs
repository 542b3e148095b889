// Runs s3rver on 127.0.0.1 (a free port) for the S3 tests: `node --openssl-legacy-provider
// s3rver-child.mjs <dir> [bucket,...]`. Prints {"port": N} once listening. s3rver encrypts
// listing continuation tokens with DES, which OpenSSL 3 only offers with the legacy
// provider. Exits when its parent closes stdin, so no server outlives the test run.
import S3rver from 's3rver';

const [dir, buckets = ''] = process.argv.slice(2);
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory: dir,
  configureBuckets: buckets
    .split(',')
    .filter(Boolean)
    .map((name) => ({ name })),
});
const address = await server.run();
process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
