// Which VS Code settings go to mcpls, and how mcpls is started. No vscode import.
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import type { McplsSettings } from "./contract.generated.ts";

/** The global settings of settings.schema.json, contributed as `mcpls.<name>`. */
export const GLOBAL_SETTINGS = [
  "tokenStorage",
  "clientMetadataDocumentUrl",
  "callbackHost",
  "allowInsecureLoopback",
  "logLevel",
] as const;

/** A setting as `WorkspaceConfiguration.inspect` reports it. */
export interface Inspected {
  defaultValue?: unknown;
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

/**
 * The `mcpls` section to send: the servers always (so a server removed here is removed in
 * mcpls), globals only where the person set them (so the user file's values still count).
 */
export function settingsForMcpls(inspect: (name: string) => Inspected | undefined): McplsSettings {
  const set = (name: string): unknown => {
    const i = inspect(name);
    return i?.workspaceFolderValue ?? i?.workspaceValue ?? i?.globalValue;
  };
  const servers = set("servers");
  const result: Record<string, unknown> = { servers: servers && typeof servers === "object" ? servers : {} };
  for (const name of GLOBAL_SETTINGS) {
    const value = set(name);
    if (value !== undefined && value !== "") result[name] = value;
  }
  return result as McplsSettings;
}

/** `mcpls.path` + `serve`; without it, `mcpls` from PATH, else `python3 -m mcpls serve`. */
export function serverCommand(path: string | undefined, env: NodeJS.ProcessEnv = process.env): { command: string; args: string[] } {
  if (path && path.trim() !== "") return { command: path.trim(), args: ["serve"] };
  const names = process.platform === "win32" ? ["mcpls.exe", "mcpls.cmd"] : ["mcpls"];
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    for (const name of names) {
      if (!dir) continue;
      try {
        accessSync(join(dir, name), constants.X_OK);
        return { command: join(dir, name), args: ["serve"] };
      } catch {
        // not here
      }
    }
  }
  return { command: process.platform === "win32" ? "python" : "python3", args: ["-m", "mcpls", "serve"] };
}
