// Preload (`node --require tests/peers/loopback_only.cjs app.js`): every server the app
// starts listens on 127.0.0.1 only, whatever host (or none) the app asked for.
// Tests must never expose a peer on another interface; some examples bind them all.
'use strict';

const net = require('node:net');

const LOOPBACK = '127.0.0.1';
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
