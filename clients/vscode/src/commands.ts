// The palette commands: pick a server the command applies to, send one mcp/* request,
// show the outcome. Every decision about the server itself is mcpls's.
import type { CallToolResult, ElicitParams, ErrorData, ListToolsResult, ServerStatus, Tool } from "./contract.generated.ts";
import { askForm, fields } from "./elicit.ts";
import { ACTION_LABELS, actionsFor, serverRow, type Action } from "./model.ts";
import type { Mcpls, Ui } from "./ui.ts";

const PASTE_TITLE = "MCP: Paste Sign-in Redirect URL…";

/** The palette commands: id, title, and the action each one runs. */
export const COMMANDS = [
  { id: "mcpls.showStatus", title: "MCP: Show Server Status" },
  { id: "mcpls.authenticate", title: "MCP: Authenticate Server…", action: "authenticate" },
  { id: "mcpls.logout", title: "MCP: Log Out of Server…", action: "logout" },
  { id: "mcpls.enable", title: "MCP: Enable Server…", action: "enable" },
  { id: "mcpls.disable", title: "MCP: Disable Server…", action: "disable" },
  { id: "mcpls.restart", title: "MCP: Restart Server…", action: "restart" },
  { id: "mcpls.showTools", title: "MCP: Show Tools…", action: "tools" },
  { id: "mcpls.completeAuthentication", title: PASTE_TITLE, action: "completeAuthentication" },
] as const satisfies readonly { id: string; title: string; action?: Action }[];

const QUESTIONS: Record<Action, string> = {
  authenticate: "Sign in to which MCP server?",
  completeAuthentication: "Which sign-in did the browser finish?",
  tools: "Show the tools of which MCP server?",
  restart: "Restart which MCP server?",
  enable: "Enable which MCP server?",
  disable: "Disable which MCP server?",
  logout: "Log out of which MCP server?",
};

const NONE: Record<Action, string> = {
  authenticate: "No MCP server needs a sign-in.",
  completeAuthentication: "No MCP sign-in is under way.",
  tools: "No MCP server is connected.",
  restart: "No MCP server to restart.",
  enable: "Every MCP server is enabled.",
  disable: "No enabled MCP server.",
  logout: "No MCP server is signed in.",
};

/** The JSON-RPC error's `data` as the contract defines it, when there is one. */
export function errorData(error: unknown): ErrorData | undefined {
  const data = (error as { data?: unknown } | null)?.data;
  return data && typeof data === "object" && typeof (data as ErrorData).kind === "string" ? (data as ErrorData) : undefined;
}

/** LSP's RequestCancelled: what a $/cancelRequest gets back. */
const REQUEST_CANCELLED = -32800;

/** Whether the request ended because the person cancelled it (the Cancel button, or abandoning the sign-in). */
export function wasCancelled(error: unknown): boolean {
  return errorData(error)?.kind === "cancelled" || (error as { code?: unknown } | null)?.code === REQUEST_CANCELLED;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class Commands {
  private readonly mcpls: Mcpls;
  private readonly ui: Ui;
  private readonly statuses: () => ServerStatus[];
  /** True in a remote window (SSH, Codespaces, code-server): the browser may not reach mcpls's loopback callback. */
  private readonly remote: boolean;

  constructor(mcpls: Mcpls, ui: Ui, statuses: () => ServerStatus[], remote: boolean) {
    this.mcpls = mcpls;
    this.ui = ui;
    this.statuses = statuses;
    this.remote = remote;
  }

  /** The named server, the only one the action fits, or the person's pick among them. */
  async pickServer(action: Action, name?: string): Promise<string | undefined> {
    if (name !== undefined) return name;
    const fitting = this.statuses().filter((s) => actionsFor(s).includes(action));
    if (fitting.length === 0) {
      void this.ui.info(NONE[action]);
      return undefined;
    }
    if (fitting.length === 1) return fitting[0].server;
    return this.ui.pick(
      fitting.map((s) => ({ ...serverRow(s), value: s.server })),
      { title: QUESTIONS[action], placeholder: "MCP server" },
    );
  }

  /** Run one action on a server (picked when not named). */
  async run(action: Action, name?: string): Promise<void> {
    const server = await this.pickServer(action, name);
    if (server === undefined) return;
    try {
      await this.perform(action, server);
    } catch (error) {
      if (wasCancelled(error)) return; // the person cancelled; nothing to tell them
      this.ui.error(`${server}: ${message(error)}`);
    }
  }

  private async perform(action: Action, server: string): Promise<void> {
    switch (action) {
      case "authenticate":
        return this.authenticate(server);
      case "completeAuthentication":
        return this.completeAuthentication(server);
      case "tools":
        return this.showTools(server);
      case "logout": {
        await this.mcpls.request<ServerStatus>("mcp/logout", { server });
        void this.ui.info(`Logged out of ${server}; it stays disabled until you enable or sign in to it.`);
        return;
      }
      case "enable":
      case "disable":
      case "restart":
        await this.mcpls.request<ServerStatus>(`mcp/${action}`, { server });
        return;
    }
  }

  /** mcp/authenticate under a cancellable progress notification showing mcpls's `$/progress`. */
  async authenticate(server: string): Promise<void> {
    // In a remote window the browser may end on a loopback page it cannot reach: say how to
    // finish anyway. The hint goes with the progress, so it disappears when the sign-in ends.
    const hint = this.remote ? ` If the browser cannot get back here, run "${PASTE_TITLE}".` : "";
    const status = await this.ui.withProgress(`Signing in to ${server}`, (progress) =>
      this.mcpls.authenticate(server, (text) => progress.report(text + hint), progress.signal),
    );
    if (status.state === "connected") void this.ui.info(`${server} is connected.`);
  }

  async completeAuthentication(server: string): Promise<void> {
    const redirectUrl = await this.ui.input({
      title: `Finish signing in to ${server}`,
      prompt: "The full address the browser ended on after signing in (it contains code= and state=)",
      placeholder: "http://127.0.0.1:…/callback?code=…&state=…",
      validate: (value) => (/^https?:\/\/\S+\?\S*code=/.test(value.trim()) ? undefined : "Paste the whole address, with its code= and state="),
    });
    if (redirectUrl === undefined) return;
    await this.mcpls.request<ServerStatus>("mcp/completeAuthentication", { server, redirectUrl: redirectUrl.trim() });
  }

  /** The server's tools; the one picked is called, its arguments asked field by field. */
  async showTools(server: string): Promise<void> {
    const { tools } = await this.mcpls.request<ListToolsResult>("mcp/listTools", { server });
    if (tools.length === 0) {
      void this.ui.info(`${server} offers no tools.`);
      return;
    }
    const picked = await this.ui.pick(
      tools.map((tool) => ({
        label: `$(tools) ${tool.name}`,
        description: typeof tool.title === "string" ? tool.title : undefined,
        detail: typeof tool.description === "string" ? tool.description : undefined,
        value: tool,
      })),
      { title: `Tools of ${server} (${tools.length})`, placeholder: "Pick a tool to call it" },
    );
    if (picked !== undefined) await this.callTool(server, picked);
  }

  async callTool(server: string, tool: Tool): Promise<void> {
    const schema = { type: "object", properties: {}, ...tool.inputSchema } as ElicitParams["requestedSchema"];
    const args = await askForm(this.ui, `${server}: arguments of ${tool.name}`, fields(schema));
    if (args === undefined) return;
    const result = await this.mcpls.request<CallToolResult>("mcp/callTool", { server, name: tool.name, arguments: args });
    const text = describeResult(result);
    if (result.isError) this.ui.error(`${tool.name} failed: ${text}`);
    else void this.ui.info(`${tool.name}: ${text}`);
  }

  /** The status quick pick: every server with its state and details, then the actions that fit it. */
  async showStatus(): Promise<void> {
    const statuses = this.statuses();
    if (statuses.length === 0) {
      void this.ui.info("No MCP servers are configured. Add them to the setting mcpls.servers.");
      return;
    }
    const server = await this.ui.pick(
      statuses.map((s) => ({ ...serverRow(s), value: s.server })),
      { title: "MCP servers", placeholder: "Pick a server to act on it" },
    );
    if (server === undefined) return;
    const status = this.statuses().find((s) => s.server === server);
    if (!status) return;
    const action = await this.ui.pick(
      actionsFor(status).map((a) => ({ label: ACTION_LABELS[a], value: a })),
      { title: `${server}: ${serverRow(status).description}`, placeholder: "Action" },
    );
    if (action !== undefined) await this.run(action, server);
  }
}

/** A tool result in a line: its text blocks, and what other blocks there are. */
export function describeResult(result: CallToolResult): string {
  const parts = result.content.map((block) =>
    block.type === "text" && typeof block.text === "string" ? block.text : `[${String(block.type)}]`,
  );
  if (parts.length === 0 && result.structuredContent !== undefined) return JSON.stringify(result.structuredContent);
  return parts.join(" ") || "(no content)";
}
