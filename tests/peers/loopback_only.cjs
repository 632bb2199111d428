// Preload (`node --require tests/peers/loopback_only.cjs app.js`): every server the app
// starts listens on 127.0.0.1 only, whatever host (or none) the app asked for.
// Tests must never expose a peer on another interface; some examples bind them all.
// With MCPLS_TEST_LISTEN_PORT, a listen(port) call gets that port instead: some examples
// hard-code theirs (the SDK's SEP-1699 polling example: 3001), and tests use free ports.
'use strict';

const net = require('node:net');

const LOOPBACK = '127.0.0.1';
const PORT = process.env.MCPLS_TEST_LISTEN_PORT;
const originalListen = net.Server.prototype.listen;

net.Server.prototype.listen = function listenOnLoopback(...args) {
  const [first] = args;
  if (first !== null && typeof first === 'object' && !Array.isArray(first)) {
    // listen(options[, backlog][, callback]); a `path` (IPC socket) has no host.
    if (first.path === undefined && first.handle === undefined && first.fd === undefined) {
      args[0] = { ...first, host: LOOPBACK };
    }
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    // listen(port[, host][, backlog][, callback])
    if (PORT !== undefined) {
      args[0] = Number(PORT);
    }
    if (typeof args[1] === 'string') {
      args[1] = LOOPBACK;
    } else {
      args.splice(1, 0, LOOPBACK);
    }
  } else if (first === undefined || typeof first === 'function') {
    // listen([callback]): a random port
    args.unshift(0, LOOPBACK);
  }
  return originalListen.apply(this, args);
};
