// SPDX-License-Identifier: MIT
// Preloaded (node --require) into a peer gateway measured by bench_router,
// so that it cannot reach anything but this machine whatever its settings:
// a TCP connection (net, http, tls, fetch all go through net.Socket) to a
// host other than loopback, or a DNS lookup of one, throws before any
// packet leaves.
'use strict';
const net = require('net');
const dns = require('dns');

const loopback = (h) => h === 'localhost' || h === '::1' || /^127\./.test(String(h));

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  let o = args[0];
  if (Array.isArray(o)) o = o[0]; // net.connect() hands over its normalized [options, callback]
  let host = 'localhost';
  if (o !== null && typeof o === 'object') host = o.path ? 'localhost' : (o.host ?? 'localhost');
  else if (typeof args[1] === 'string') host = args[1];
  if (!loopback(host)) throw new Error(`loopback_only: refused a connection to ${host}`);
  return connect.apply(this, args);
};

function guard(obj, names) {
  for (const name of names) {
    const orig = obj[name];
    if (typeof orig !== 'function') continue;
    obj[name] = function (host, ...rest) {
      if (!loopback(host)) throw new Error(`loopback_only: refused a lookup of ${host}`);
      return orig.call(this, host, ...rest);
    };
  }
}
const lookups = ['lookup', 'resolve', 'resolve4', 'resolve6', 'resolveAny', 'resolveCname'];
guard(dns, lookups);
guard(dns.promises, lookups);
