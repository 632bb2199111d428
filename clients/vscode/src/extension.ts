// The VS Code side of mcpls: starts `mcpls serve`, shows the servers' states in a status
// bar item, and turns palette commands into mcp/* requests. Logic lives in mcpls.
import { randomUUID } from "node:crypto";
import * as vscode from "vscode";
import {
  CloseAction,
  ErrorAction,
  LanguageClient,
  State,
  WorkDoneProgress,
  type ClientCapabilities,
  type ErrorHandler,
  type LanguageClientOptions,
  type ServerOptions,
  type StaticFeature,
} from "vscode-languageclient/node";
import { Commands, COMMANDS } from "./commands.ts";
import type { ElicitParams, ServerStatus } from "./contract.generated.ts";
import { elicit } from "./elicit.ts";
import { mergeSnapshot, statusBar } from "./model.ts";
import { serverCommand, settingsForMcpls } from "./settings.ts";
import type { Mcpls, Ui } from "./ui.ts";

const CONTRACT_VERSION = 1;

/** Declares `experimental.mcpls.elicitation`, so mcpls sends forms here instead of declining them. */
const elicitationCapability: StaticFeature = {
  fillClientCapabilities(capabilities: ClientCapabilities): void {
    const experimental = (capabilities.experimental ?? {}) as Record<string, unknown>;
    capabilities.experimental = { ...experimental, mcpls: { elicitation: true } };
  },
  initialize(): void {},
  getState: () => ({ kind: "static" }),
  clear(): void {},
};

/** Restart mcpls whenever it ends, unless it keeps ending (5 times in 3 minutes). */
class RestartOnExit implements ErrorHandler {
  private exits: number[] = [];
  private readonly output: vscode.OutputChannel;
  constructor(output: vscode.OutputChannel) {
    this.output = output;
  }
  error() {
    return { action: ErrorAction.Continue };
  }
  closed() {
    const now = Date.now();
    this.exits = [...this.exits.filter((t) => now - t < 180_000), now];
    if (this.exits.length >= 5) {
      const message = "mcpls ended 5 times in 3 minutes; not restarting it. See the output channel \"mcpls\".";
      return { action: CloseAction.DoNotRestart, message };
    }
    this.output.appendLine("mcpls ended; restarting it");
    return { action: CloseAction.Restart, handled: true };
  }
}

const vscodeUi: Ui = {
  async pick(items, options) {
    const chosen = await vscode.window.showQuickPick(items, { title: options.title, placeHolder: options.placeholder, matchOnDescription: true, matchOnDetail: true });
    return chosen?.value;
  },
  async pickMany(items, options) {
    const chosen = await vscode.window.showQuickPick(items, { title: options.title, placeHolder: options.placeholder, canPickMany: true });
    return chosen?.map((item) => item.value);
  },
  input(options) {
    return Promise.resolve(
      vscode.window.showInputBox({
        title: options.title,
        prompt: options.prompt,
        value: options.value,
        placeHolder: options.placeholder,
        ignoreFocusOut: true,
        validateInput: options.validate,
      }),
    );
  },
  info(message, ...buttons) {
    return Promise.resolve(vscode.window.showInformationMessage(message, ...buttons));
  },
  error(message) {
    void vscode.window.showErrorMessage(message);
  },
  withProgress(title, run) {
    return Promise.resolve(
      vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title, cancellable: true },
        (progress, token) => {
          const abort = new AbortController();
          token.onCancellationRequested(() => abort.abort());
          return run({ report: (message) => progress.report({ message }), signal: abort.signal });
        },
      ),
    );
  },
};

/** A CancellationToken that follows an AbortSignal. */
function tokenFor(signal: AbortSignal | undefined): vscode.CancellationToken | undefined {
  if (!signal) return undefined;
  const source = new vscode.CancellationTokenSource();
  if (signal.aborted) source.cancel();
  else signal.addEventListener("abort", () => source.cancel(), { once: true });
  return source.token;
}

let client: LanguageClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel("mcpls");
  let statuses = new Map<string, ServerStatus>();
  // Servers notified while an mcp/status request is out, per request.
  const inFlight = new Set<Set<string>>();
  const item = vscode.window.createStatusBarItem("mcpls.status", vscode.StatusBarAlignment.Left, 0);
  item.name = "MCP servers";
  item.command = "mcpls.showStatus";
  context.subscriptions.push(output, item);

  const render = (): void => {
    const sorted = [...statuses.values()].sort((a, b) => a.server.localeCompare(b.server));
    const view = statusBar(sorted, client?.state !== State.Stopped);
    item.text = view.text;
    item.tooltip = view.tooltip;
    item.backgroundColor = view.warning ? new vscode.ThemeColor("statusBarItem.warningBackground") : undefined;
    item.show();
  };
  const settings = () => {
    const config = vscode.workspace.getConfiguration("mcpls");
    return settingsForMcpls((name) => config.inspect(name));
  };

  /** Replace every status with mcpls's current picture (a new process, or a changed server list). */
  const refresh = async (from: LanguageClient): Promise<void> => {
    const notified = new Set<string>();
    inFlight.add(notified);
    try {
      const { servers } = await from.sendRequest<{ servers: ServerStatus[] }>("mcp/status", {});
      statuses = mergeSnapshot(statuses, servers, notified);
    } catch (error) {
      output.appendLine(`mcp/status failed: ${String(error)}`);
    } finally {
      inFlight.delete(notified);
    }
    render();
  };
  const start = async (): Promise<void> => {
    const { command, args } = serverCommand(vscode.workspace.getConfiguration("mcpls").get<string>("path"));
    const serverOptions: ServerOptions = { command, args, options: { env: process.env } };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [],
      outputChannel: output,
      initializationOptions: settings(),
      errorHandler: new RestartOnExit(output),
    };
    const next = new LanguageClient("mcpls", "mcpls", serverOptions, clientOptions);
    next.registerFeature(elicitationCapability);
    next.onNotification("mcp/didChangeStatus", (status: ServerStatus) => {
      statuses.set(status.server, status);
      for (const notified of inFlight) notified.add(status.server);
      render();
    });
    next.onRequest("mcp/elicit", (params: ElicitParams) => elicit(vscodeUi, params));
    next.onDidChangeState(async ({ newState }) => {
      if (newState !== State.Running) {
        render();
        return;
      }
      // A fresh process (first start or a restart): take its whole picture.
      await refresh(next);
      const version = (next.initializeResult?.capabilities.experimental as { mcpls?: { version?: number } } | undefined)?.mcpls?.version;
      if (version !== CONTRACT_VERSION) {
        output.appendLine(`mcpls speaks contract version ${String(version)}; this extension was written for ${CONTRACT_VERSION}`);
      }
    });
    client = next;
    render();
    try {
      await next.start();
    } catch (error) {
      output.appendLine(`mcpls did not start (${command} ${args.join(" ")}): ${String(error)}`);
      void vscode.window.showErrorMessage(`mcpls did not start: ${String(error)}. Set mcpls.path to the mcpls executable.`);
    }
  };

  const mcpls: Mcpls = {
    async request<R>(method: string, params: object, signal?: AbortSignal): Promise<R> {
      if (!client?.isRunning()) throw new Error("mcpls is not running; see the output channel \"mcpls\"");
      // An undefined token would be sent as a second parameter (params as a list): omit it.
      const token = tokenFor(signal);
      return token ? client.sendRequest<R>(method, params, token) : client.sendRequest<R>(method, params);
    },
    async authenticate(server, onProgress, signal) {
      if (!client?.isRunning()) throw new Error("mcpls is not running; see the output channel \"mcpls\"");
      const workDoneToken = randomUUID();
      const listener = client.onProgress(WorkDoneProgress.type, workDoneToken, (value) => {
        if (value.message) onProgress(value.message);
      });
      try {
        return await client.sendRequest<ServerStatus>("mcp/authenticate", { server, workDoneToken }, tokenFor(signal));
      } finally {
        listener.dispose();
      }
    },
  };
  const commands = new Commands(mcpls, vscodeUi, () => [...statuses.values()], vscode.env.remoteName !== undefined);
  for (const { id, ...rest } of COMMANDS) {
    context.subscriptions.push(
      vscode.commands.registerCommand(id, (name?: unknown) => {
        const server = typeof name === "string" ? name : undefined;
        return "action" in rest ? commands.run(rest.action, server) : commands.showStatus();
      }),
    );
  }

  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (!event.affectsConfiguration("mcpls")) return;
      if (event.affectsConfiguration("mcpls.path")) {
        await client?.stop();
        statuses.clear();
        await start();
        return;
      }
      // No restart: mcpls applies the new settings; a removed server sends no status, so
      // the list is read again.
      if (!client?.isRunning()) return;
      await client.sendNotification("workspace/didChangeConfiguration", { settings: settings() });
      await refresh(client);
    }),
  );
  await start();
}

export async function deactivate(): Promise<void> {
  await client?.stop();
  client = undefined;
}
