import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { serverCommand, settingsForMcpls } from "../src/settings.ts";

test("servers always go to mcpls; globals only where the person set them", () => {
  const values: Record<string, object> = {
    servers: { defaultValue: {}, globalValue: { a: { url: "https://a.example/mcp" } } },
    tokenStorage: { defaultValue: "auto", workspaceValue: "file" },
    callbackHost: { defaultValue: "127.0.0.1" },
    allowInsecureLoopback: { defaultValue: false, globalValue: true, workspaceValue: false },
  };
  assert.deepEqual(settingsForMcpls((name) => values[name]), {
    servers: { a: { url: "https://a.example/mcp" } },
    tokenStorage: "file",
    allowInsecureLoopback: false,
  });
  assert.deepEqual(settingsForMcpls(() => undefined), { servers: {} });
});

test("mcpls.path runs serve; otherwise mcpls from PATH, else python3 -m mcpls", () => {
  assert.deepEqual(serverCommand("/opt/mcpls/bin/mcpls"), { command: "/opt/mcpls/bin/mcpls", args: ["serve"] });
  const dir = mkdtempSync(join(tmpdir(), "mcpls-path-"));
  const exe = join(dir, "mcpls");
  writeFileSync(exe, "#!/bin/sh\n");
  chmodSync(exe, 0o755);
  assert.deepEqual(serverCommand("", { PATH: `/nonexistent:${dir}` }), { command: exe, args: ["serve"] });
  assert.deepEqual(serverCommand(undefined, { PATH: "/nonexistent" }), { command: "python3", args: ["-m", "mcpls", "serve"] });
});
