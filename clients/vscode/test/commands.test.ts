import assert from "node:assert/strict";
import { test } from "node:test";
import { Commands, COMMANDS } from "../src/commands.ts";
import type { ServerStatus } from "../src/contract.generated.ts";
import { FakeMcpls, FakeUi, rpcError, status } from "./fake.ts";

function setup(statuses: ServerStatus[], remote = false) {
  const ui = new FakeUi();
  const mcpls = new FakeMcpls();
  const commands = new Commands(mcpls, ui, () => statuses, remote);
  return { ui, mcpls, commands };
}

test("palette titles are the ones the README documents", () => {
  const titles = Object.fromEntries(COMMANDS.map((c) => [c.id, c.title]));
  assert.equal(titles["mcpls.showStatus"], "MCP: Show Server Status");
  assert.equal(titles["mcpls.authenticate"], "MCP: Authenticate Server…");
  assert.equal(titles["mcpls.logout"], "MCP: Log Out of Server…");
  assert.equal(titles["mcpls.enable"], "MCP: Enable Server…");
  assert.equal(titles["mcpls.disable"], "MCP: Disable Server…");
  assert.equal(titles["mcpls.restart"], "MCP: Restart Server…");
  assert.equal(titles["mcpls.showTools"], "MCP: Show Tools…");
});

test("authenticate picks the only server needing a sign-in without asking", async () => {
  const { ui, mcpls, commands } = setup([status("a", "connected"), status("b", "authRequired")]);
  mcpls.progress = ["Opening http://127.0.0.1:9/authorize?client_id=x in your browser"];
  mcpls.handlers["mcp/authenticate"] = () => status("b", "connected");
  await commands.run("authenticate");
  assert.deepEqual(mcpls.requests, [{ method: "mcp/authenticate", params: { server: "b" } }]);
  assert.equal(ui.of("pick").length, 0);
  const [progress] = ui.of("progress");
  assert.equal(progress.title, "Signing in to b");
  assert.deepEqual(progress.messages, ["Opening http://127.0.0.1:9/authorize?client_id=x in your browser"]);
  assert.deepEqual(ui.of("info").map((i) => i.message), ["b is connected."]);
});

test("a command lists only the servers it applies to", async () => {
  const { ui, mcpls, commands } = setup([
    status("a", "authRequired"),
    status("b", "connected"),
    status("c", "error", { error: { kind: "authRequired", message: "expired" } }),
    status("d", "connected", { auth: { authenticated: true, requiredScopes: ["write"] } }),
  ]);
  ui.answers = ["$(key) d"];
  mcpls.handlers["mcp/authenticate"] = () => status("d", "connected");
  await commands.run("authenticate");
  const [pick] = ui.of("pick");
  assert.deepEqual(pick.items.map((i) => i.value), ["a", "c", "d"]);
  assert.equal(pick.options.title, "Sign in to which MCP server?");
  assert.deepEqual(mcpls.requests[0], { method: "mcp/authenticate", params: { server: "d" } });
});

test("a server name given as argument is used as is", async () => {
  const { ui, mcpls, commands } = setup([status("a", "connected")]);
  mcpls.handlers["mcp/restart"] = ({ server }) => status(String(server), "connecting");
  await commands.run("restart", "a");
  assert.deepEqual(mcpls.requests, [{ method: "mcp/restart", params: { server: "a" } }]);
  assert.equal(ui.shown.length, 0);
});

test("nothing to do is said, not sent", async () => {
  const { ui, mcpls, commands } = setup([status("a", "connected")]);
  await commands.run("enable");
  await commands.run("logout");
  assert.deepEqual(mcpls.requests, []);
  assert.deepEqual(ui.of("info").map((i) => i.message), ["Every MCP server is enabled.", "No MCP server is signed in."]);
});

for (const [answer, error] of [
  ["a cancelled error", rpcError("Sign-in cancelled", "cancelled")],
  ["LSP's RequestCancelled", rpcError("Request cancelled", undefined, -32800)],
] as const) {
  test(`cancelling the sign-in cancels the request and shows no error (${answer})`, async () => {
    const { ui, mcpls, commands } = setup([status("a", "authRequired")]);
    ui.cancelProgress = true;
    let cancelled = false;
    mcpls.handlers["mcp/authenticate"] = (_params, signal) =>
      new Promise((_resolve, reject) => {
        signal?.addEventListener("abort", () => {
          cancelled = true;
          reject(error);
        });
      });
    await commands.run("authenticate");
    assert.equal(cancelled, true);
    assert.deepEqual(ui.of("error"), []);
  });
}

test("a failed request shows mcpls's message", async () => {
  const { ui, mcpls, commands } = setup([status("a", "authRequired")]);
  mcpls.handlers["mcp/authenticate"] = () => {
    throw rpcError("The authorization server refused the registration", "other");
  };
  await commands.run("authenticate");
  assert.deepEqual(ui.of("error").map((e) => e.message), ["a: The authorization server refused the registration"]);
});

test("in a remote window the sign-in says how to paste the redirect URL", async () => {
  const { ui, mcpls, commands } = setup([status("a", "authRequired")], true);
  mcpls.progress = ["Opening the sign-in page"];
  mcpls.handlers["mcp/authenticate"] = () => status("a", "connected");
  await commands.run("authenticate");
  assert.deepEqual(ui.of("progress")[0].messages, [
    'Opening the sign-in page If the browser cannot get back here, run "MCP: Paste Sign-in Redirect URL…".',
  ]);
});

test("the pasted redirect URL finishes the sign-in under way", async () => {
  const { ui, mcpls, commands } = setup([status("a", "connected"), status("b", "authenticating")]);
  const redirect = "http://127.0.0.1:5000/callback?code=abc&state=xyz";
  mcpls.handlers["mcp/completeAuthentication"] = () => status("b", "connected");
  ui.answers = [` ${redirect} `];
  await commands.run("completeAuthentication");
  assert.deepEqual(mcpls.requests, [
    { method: "mcp/completeAuthentication", params: { server: "b", redirectUrl: redirect } },
  ]);
  const [box] = ui.of("input");
  assert.equal(box.options.validate?.("not a url"), "Paste the whole address, with its code= and state=");
});

test("the status quick pick shows every server, then the actions that fit", async () => {
  const { ui, mcpls, commands } = setup([
    status("a", "connected", { auth: { authenticated: true, issuer: "http://127.0.0.1:9" }, toolCount: 2 }),
    status("b", "authRequired", { auth: { authenticated: false } }),
  ]);
  ui.answers = ["$(pass-filled) a", "$(tools) Show tools", undefined];
  mcpls.handlers["mcp/listTools"] = () => ({
    tools: [{ name: "echo", description: "Echoes", inputSchema: { type: "object" } }],
  });
  await commands.showStatus();
  const [servers, actions, tools] = ui.of("pick");
  assert.deepEqual(
    servers.items.map((i) => [i.label, i.description, i.detail]),
    [
      ["$(pass-filled) a", "connected", "signed in with http://127.0.0.1:9 · 2 tools"],
      ["$(key) b", "needs sign-in", "not signed in"],
    ],
  );
  assert.deepEqual(actions.items.map((i) => i.value), ["tools", "restart", "disable", "logout"]);
  assert.deepEqual(tools.items.map((i) => [i.label, i.detail]), [["$(tools) echo", "Echoes"]]);
  assert.equal(tools.options.title, "Tools of a (1)");
});

test("logout sends mcp/logout and says what follows", async () => {
  const { ui, mcpls, commands } = setup([status("a", "connected", { auth: { authenticated: true } })]);
  mcpls.handlers["mcp/logout"] = () => status("a", "disabled", { auth: { authenticated: false } });
  await commands.run("logout");
  assert.deepEqual(mcpls.requests, [{ method: "mcp/logout", params: { server: "a" } }]);
  assert.match(ui.of("info")[0].message, /^Logged out of a/);
});

test("package.json contributes exactly these commands", async () => {
  const { readFileSync } = await import("node:fs");
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  assert.deepEqual(
    pkg.contributes.commands,
    COMMANDS.map((c) => ({ command: c.id, title: c.title })),
  );
});

test("a tool picked in Show Tools is called with the arguments asked field by field", async () => {
  const { ui, mcpls, commands } = setup([status("a", "connected")]);
  const inputSchema = {
    type: "object",
    properties: { text: { type: "string" }, times: { type: "integer", default: 2 }, extra: { type: "object" } },
    required: ["text"],
  };
  mcpls.handlers["mcp/listTools"] = () => ({ tools: [{ name: "echo", inputSchema }] });
  mcpls.handlers["mcp/callTool"] = () => ({ content: [{ type: "text", text: "hi hi" }, { type: "image", data: "" }] });
  ui.answers = ["$(tools) echo", "hi", "2", '{"k": 1}'];
  await commands.run("tools");
  assert.deepEqual(mcpls.requests.at(-1), {
    method: "mcp/callTool",
    params: { server: "a", name: "echo", arguments: { text: "hi", times: 2, extra: { k: 1 } } },
  });
  assert.equal(ui.of("input")[1].options.value, "2");
  assert.equal(ui.of("input")[2].options.validate?.("{"), "Enter a JSON value");
  assert.deepEqual(ui.of("info").map((i) => i.message), ["echo: hi hi [image]"]);
});

test("a tool's own failure is shown as an error; Escape on an argument calls nothing", async () => {
  const { ui, mcpls, commands } = setup([status("a", "connected")]);
  const inputSchema = { type: "object", properties: { text: { type: "string" } } };
  mcpls.handlers["mcp/listTools"] = () => ({ tools: [{ name: "echo", inputSchema }] });
  mcpls.handlers["mcp/callTool"] = () => ({ content: [{ type: "text", text: "no such file" }], isError: true });
  ui.answers = ["$(tools) echo", ""];
  await commands.run("tools");
  assert.deepEqual(mcpls.requests.at(-1)?.params, { server: "a", name: "echo", arguments: {} });
  assert.deepEqual(ui.of("error").map((e) => e.message), ["echo failed: no such file"]);

  ui.answers = ["$(tools) echo", undefined];
  await commands.run("tools");
  assert.equal(mcpls.requests.filter((r) => r.method === "mcp/callTool").length, 1);
});
