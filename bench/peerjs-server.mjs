// PeerJS server for `make bench`, run the way its README runs it inside an application
// (`PeerServer` from the `peer` package) rather than as its CLI, which logs a line per connect
// and disconnect. Started by bench/run.py as
//   NODE_ENV=production node --expose-gc bench/peerjs-server.mjs --port P [--alive-timeout-ms T]
// with bufferutil installed for `ws` (bench/package.json). Listens on 127.0.0.1 only. SIGUSR2
// runs a full garbage collection and prints "gc done"; SIGTERM stops it.
import { PeerServer } from 'peer';

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? Number(process.argv[i + 1]) : fallback;
}

const port = arg('--port', 9000);
PeerServer(
  {
    host: '127.0.0.1',
    port,
    path: '/',
    key: 'peerjs',
    concurrent_limit: 30000,
    alive_timeout: arg('--alive-timeout-ms', 60000),
    allow_discovery: false,
    proxied: false,
  },
  () => console.log(`PeerServer listening on 127.0.0.1:${port}`),
);

process.on('SIGUSR2', () => {
  if (typeof global.gc === 'function') global.gc();
  console.log('gc done');
});
process.on('SIGTERM', () => process.exit(0));
