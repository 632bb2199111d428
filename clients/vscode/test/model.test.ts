import assert from "node:assert/strict";
import { test } from "node:test";
import { actionsFor, details, mergeSnapshot, statusBar, stateLabel } from "../src/model.ts";
import { status } from "./fake.ts";

test("status bar counts connected out of enabled servers", () => {
  const view = statusBar([status("a", "connected"), status("b", "connecting"), status("c", "disabled")]);
  assert.equal(view.text, "$(plug) MCP 1/2");
  assert.equal(view.warning, false);
  assert.equal(view.tooltip, "a: connected\nb: connecting…\nc: disabled");
});

test("status bar warns when a server needs a sign-in or has failed", () => {
  for (const state of ["authRequired", "error"] as const) {
    const view = statusBar([status("a", "connected"), status("b", state)]);
    assert.equal(view.text, "$(warning) MCP 1/2");
    assert.equal(view.warning, true);
  }
  assert.equal(statusBar([status("b", "authRequired")]).tooltip, "b: needs sign-in");
});

test("status bar says when mcpls is not running", () => {
  const view = statusBar([status("a", "connected")], false);
  assert.equal(view.text, "$(warning) MCP");
  assert.equal(view.warning, true);
  assert.match(view.tooltip, /not running/);
});

test("status bar with no servers says where to add them", () => {
  const view = statusBar([]);
  assert.equal(view.text, "$(plug) MCP 0/0");
  assert.match(view.tooltip, /mcpls\.servers/);
});

test("a connected server refused for missing scopes needs more permission", () => {
  const s = status("a", "connected", { auth: { authenticated: true, requiredScopes: ["admin"] } });
  assert.equal(stateLabel(s), "connected, needs more permission");
  assert.deepEqual(actionsFor(s), ["authenticate", "tools", "restart", "disable", "logout"]);
  assert.match(details(s), /needs scopes admin/);
});

test("actions fit each state", () => {
  const signedIn = { auth: { authenticated: true } };
  assert.deepEqual(actionsFor(status("a", "connected", signedIn)), ["tools", "restart", "disable", "logout"]);
  assert.deepEqual(actionsFor(status("a", "connected")), ["tools", "restart", "disable"]);
  assert.deepEqual(actionsFor(status("a", "authRequired", { auth: { authenticated: false } })), ["authenticate", "disable"]);
  assert.deepEqual(actionsFor(status("a", "authenticating")), ["completeAuthentication", "disable"]);
  assert.deepEqual(actionsFor(status("a", "connecting")), ["restart", "disable"]);
  assert.deepEqual(actionsFor(status("a", "disabled")), ["enable"]);
  assert.deepEqual(actionsFor(status("a", "disabled", signedIn)), ["enable", "logout"]);
  assert.deepEqual(actionsFor(status("a", "error", { error: { kind: "connection", message: "refused" } })), ["restart", "disable"]);
  assert.deepEqual(
    actionsFor(status("a", "error", { error: { kind: "authRequired", message: "sign in" } })),
    ["authenticate", "restart", "disable"],
  );
});

test("details show account, token expiry, tools and the last error", () => {
  const now = new Date(2026, 0, 1, 12, 0, 0);
  const expiresAt = Math.floor(now.getTime() / 1000) + 3600;
  const s = status("a", "connected", {
    auth: { authenticated: true, issuer: "https://login.example", expiresAt },
    toolCount: 3,
  });
  assert.equal(details(s, now), "signed in with https://login.example · token expires at 13:00 · 3 tools");
  const failed = status("b", "error", { error: { kind: "connection", message: "Connection refused" } });
  assert.equal(details(failed, now), "Connection refused");
  const out = status("c", "authRequired", { auth: { authenticated: false } });
  assert.equal(details(out, now), "not signed in");
  // A server without OAuth: mcpls still reports `auth: {authenticated: false}`.
  const plain = status("d", "connected", { auth: { authenticated: false }, toolCount: 1 });
  assert.equal(details(plain, now), "1 tool");
});

test("an mcp/status answer does not undo a notification that came while it was out", () => {
  const current = new Map([
    ["a", status("a", "connecting")],
    ["gone", status("gone", "connected")],
    ["b", status("b", "connected")],
  ]);
  const snapshot = [status("a", "disabled"), status("b", "authRequired"), status("c", "connecting")];
  const merged = mergeSnapshot(current, snapshot, new Set(["a"]));
  assert.deepEqual(
    [...merged.values()].map((s) => [s.server, s.state]),
    [["a", "connecting"], ["b", "authRequired"], ["c", "connecting"]],
  );
});
