// Preload (`node --require tests/peers/ledger.cjs app.js`): the Node peers' half of
// tests/peers/ledger.py. Every HTTP exchange the app serves is sniffed for the secrets it
// issues or receives (same fields as ledger.py), appended to the test's ledger file
// ($MCPLS_TEST_LEDGER) for the suite's leak scan. Without that variable it does nothing.
'use strict';

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const LEDGER = process.env.MCPLS_TEST_LEDGER;
const MIN_LENGTH = 8;
const BODY_LIMIT = 1 << 20;
const RESPONSE_FIELDS = {
  access_token: 'access token',
  refresh_token: 'refresh token',
  id_token: 'id token',
  client_secret: 'client secret',
  device_code: 'device code',
  registration_access_token: 'registration access token',
};
const FORM_FIELDS = {
  code: 'authorization code',
  code_verifier: 'PKCE code verifier',
  refresh_token: 'refresh token',
  client_secret: 'client secret',
  device_code: 'device code',
  client_assertion: 'client assertion',
};

if (LEDGER) {
  const peer = `${path.basename(process.argv[1] || 'node')}[${process.pid}]`;

  const record = (kind, value) => {
    if (typeof value !== 'string' || value.length < MIN_LENGTH) return;
    fs.appendFileSync(LEDGER, `${JSON.stringify({ kind, value, peer })}\n`);
  };

  const fromRequestHeaders = (headers) => {
    record('MCP session id', headers['mcp-session-id']);
    const [scheme, credentials] = String(headers.authorization || '').split(' ', 2);
    if (!credentials) return;
    if (scheme.toLowerCase() === 'bearer') record('access token', credentials.trim());
    if (scheme.toLowerCase() === 'basic') {
      record('client credentials (Basic)', credentials.trim());
      const decoded = Buffer.from(credentials.trim(), 'base64').toString();
      const secret = decoded.slice(decoded.indexOf(':') + 1);
      try {
        record('client secret', decodeURIComponent(secret));
      } catch {
        record('client secret', secret);
      }
    }
  };

  const fromResponseHeaders = (headers) => {
    record('MCP session id', headers['mcp-session-id']);
    if (headers.location) {
      try {
        const url = new URL(String(headers.location), 'http://127.0.0.1');
        for (const code of url.searchParams.getAll('code')) record('authorization code', code);
      } catch {
        // not a URL: nothing to record
      }
    }
  };

  const originalPush = http.IncomingMessage.prototype.push;
  http.IncomingMessage.prototype.push = function push(chunk, encoding) {
    if (this.method !== null && this.method !== undefined) {
      // A request this process serves (a response it receives as a client has no method).
      if (!this.ledgerSeen) {
        this.ledgerSeen = true;
        this.ledgerBody = [];
        this.ledgerForm = String(this.headers['content-type'] || '').startsWith(
          'application/x-www-form',
        );
        fromRequestHeaders(this.headers);
      }
      if (chunk === null) {
        if (this.ledgerForm) {
          const body = Buffer.concat(this.ledgerBody);
          if (body.length <= BODY_LIMIT) {
            const form = new URLSearchParams(body.toString());
            for (const [field, kind] of Object.entries(FORM_FIELDS)) {
              for (const value of form.getAll(field)) record(kind, value);
            }
          }
        }
      } else if (this.ledgerForm) {
        this.ledgerBody.push(Buffer.from(chunk, encoding));
      }
    }
    return originalPush.call(this, chunk, encoding);
  };

  const headerObject = (raw) => {
    const headers = {};
    if (Array.isArray(raw)) {
      for (let i = 0; i + 1 < raw.length; i += 2) headers[String(raw[i]).toLowerCase()] = raw[i + 1];
    } else if (raw && typeof raw === 'object') {
      for (const [name, value] of Object.entries(raw)) headers[name.toLowerCase()] = value;
    }
    return headers;
  };

  const originalWriteHead = http.ServerResponse.prototype.writeHead;
  http.ServerResponse.prototype.writeHead = function writeHead(status, ...rest) {
    const raw = rest.find((arg) => arg !== null && typeof arg === 'object');
    const headers = { ...headerObject(this.getHeaders()), ...headerObject(raw) };
    fromResponseHeaders(headers);
    this.ledgerJson = String(headers['content-type'] || '').includes('json');
    return originalWriteHead.call(this, status, ...rest);
  };

  // Before writeHead (Node calls it on the first write), the headers set so far decide.
  const keep = (response, chunk, encoding) => {
    if (response.ledgerJson === undefined) {
      response.ledgerJson = String(response.getHeader('content-type') || '').includes('json');
    }
    response.ledgerBody = response.ledgerBody || [];
    if (response.ledgerJson && chunk !== undefined && chunk !== null && typeof chunk !== 'function') {
      response.ledgerBody.push(Buffer.from(chunk, typeof encoding === 'string' ? encoding : 'utf8'));
    }
  };

  const originalWrite = http.ServerResponse.prototype.write;
  http.ServerResponse.prototype.write = function write(chunk, encoding, ...rest) {
    keep(this, chunk, encoding);
    return originalWrite.call(this, chunk, encoding, ...rest);
  };

  const originalEnd = http.ServerResponse.prototype.end;
  http.ServerResponse.prototype.end = function end(chunk, encoding, ...rest) {
    if (!this.ledgerEnded) {
      this.ledgerEnded = true;
      keep(this, chunk, encoding);
      const body = Buffer.concat(this.ledgerBody || []);
      if (this.ledgerJson && body.length <= BODY_LIMIT) {
        try {
          const document = JSON.parse(body.toString());
          if (document && typeof document === 'object') {
            for (const [field, kind] of Object.entries(RESPONSE_FIELDS)) record(kind, document[field]);
          }
        } catch {
          // not JSON after all: nothing to record
        }
      }
    }
    return originalEnd.call(this, chunk, encoding, ...rest);
  };
}
