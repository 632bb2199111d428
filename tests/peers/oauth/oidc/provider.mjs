// A stand-alone OAuth 2.1 / OpenID authorization server (npm `oidc-provider` 9.x) on
// 127.0.0.1, for tests. Issues RFC 9068 JWT access tokens for one MCP resource.
//
//   PORT=P MCP_RESOURCE="http://127.0.0.1:Q/mcp [http://127.0.0.1:R/mcp ...]"
//   [ACCESS_TTL=seconds] [RESOURCE_SCOPES="mcp:read mcp:write"] [MCPLS_TOOLS=<repo>/.tools]
//   [STATIC_CLIENTS='[{"client_id": ..., "client_secret": ..., "redirect_uris": [...],
//                      "token_endpoint_auth_method": "client_secret_basic"}]']
//   node tests/peers/oauth/oidc/provider.mjs    (listens on 127.0.0.1 only)
//
// Issuer `http://127.0.0.1:P` (no trailing slash). Open dynamic registration at /reg, public
// clients by default (token_endpoint_auth_method "none"), PKCE S256 required, login and
// consent as HTML forms (devInteractions: any login, any password). A refresh token is issued
// only to clients that registered the refresh_token grant; it rotates for public clients.
// The authorization response carries `iss` (RFC 9207). The device authorization grant
// (RFC 8628) is on: codes at /device/auth, the person's pages at /device.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`provider.mjs: set ${name}`);
    process.exit(2);
  }
  return value;
}

const here = dirname(fileURLToPath(import.meta.url));
const tools = process.env.MCPLS_TOOLS || join(here, '..', '..', '..', '..', '.tools');
// The package lives in .tools/node_modules, not next to this file: resolve it from there.
const entry = createRequire(join(tools, 'package.json')).resolve('oidc-provider');
const { default: Provider, errors } = await import(pathToFileURL(entry).href);

const port = Number.parseInt(required('PORT'), 10);
// Several MCP servers may share this authorization server (a company's single sign-on).
const resources = required('MCP_RESOURCE').split(' ');
const resource = resources[0];
// Pre-registered (confidential) clients, as an administrator would create them.
const staticClients = JSON.parse(process.env.STATIC_CLIENTS || '[]').map((client) => ({
  application_type: 'native', // loopback http redirect URIs (RFC 8252 §7.3)
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  ...client,
}));
const accessTtl = Number.parseInt(process.env.ACCESS_TTL || '3600', 10);
const resourceScopes = process.env.RESOURCE_SCOPES || 'mcp:read mcp:write';
const issuer = `http://127.0.0.1:${port}`;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', use: 'sig', alg: 'RS256' };
const DAY = 24 * 60 * 60;

const provider = new Provider(issuer, {
  clients: staticClients,
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  clientDefaults: {
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  },
  // Listed so that AS metadata advertises them and registration accepts a `scope` naming
  // them (without this, DCR answers invalid_client_metadata "scope must only contain
  // Authorization Server supported scope values").
  scopes: ['openid', 'offline_access', ...resourceScopes.split(' ')],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    // RFC 8628: /device/auth for the code, /device for the person (tests approve there).
    deviceFlow: { enabled: true },
    registration: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // No `resource` at /auth or /token still means the MCP server.
      defaultResource: (_ctx, _client, oneOf) => oneOf ?? resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, indicator) => {
        if (!resources.includes(indicator)) throw new errors.InvalidTarget();
        return {
          scope: resourceScopes,
          audience: indicator,
          accessTokenTTL: accessTtl,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  // Default: only with offline_access. Here: whenever the client registered the grant.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  ttl: {
    AccessToken: accessTtl,
    AuthorizationCode: 60,
    DeviceCode: 600,
    Grant: 14 * DAY,
    IdToken: 3600,
    Interaction: 3600,
    RefreshToken: 14 * DAY,
    Session: 14 * DAY,
  },
});

provider.on('server_error', (_ctx, error) => console.error('server_error', error));

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider ${issuer} for ${resources.join(', ')}`);
});
server.on('error', (error) => {
  console.error(`provider.mjs: ${error.message}`);
  process.exit(1);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
