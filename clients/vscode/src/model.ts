// What the person sees of the servers' states: status bar text, tooltip, quick pick
// rows, and which actions fit each state. Pure functions over ServerStatus; no vscode.
import type { ServerStatus } from "./contract.generated.ts";

export type State = ServerStatus["state"];

/** Everything a person can do to one server, in the order the status quick pick lists them. */
export type Action =
  | "authenticate"
  | "completeAuthentication"
  | "tools"
  | "restart"
  | "enable"
  | "disable"
  | "logout";

export const ACTION_LABELS: Record<Action, string> = {
  authenticate: "$(key) Sign in",
  completeAuthentication: "$(link) Paste the sign-in redirect URL…",
  tools: "$(tools) Show tools",
  restart: "$(debug-restart) Restart",
  enable: "$(debug-start) Enable",
  disable: "$(debug-stop) Disable",
  logout: "$(sign-out) Log out",
};

/** A connected server whose last call was refused for missing scopes (step-up). */
export function needsMorePermission(status: ServerStatus): boolean {
  return status.state === "connected" && (status.auth?.requiredScopes?.length ?? 0) > 0;
}

/** Whether the server asks the person to sign in (or to sign in again for more scopes). */
export function wantsSignIn(status: ServerStatus): boolean {
  return status.state === "authRequired" || status.error?.kind === "authRequired" || needsMorePermission(status);
}

/** Whether the server waits for the person: sign in, or look at an error. */
export function needsPerson(status: ServerStatus): boolean {
  return status.state === "authRequired" || status.state === "error";
}

export function stateLabel(status: ServerStatus): string {
  switch (status.state) {
    case "connected":
      return needsMorePermission(status) ? "connected, needs more permission" : "connected";
    case "authRequired":
      return "needs sign-in";
    case "authenticating":
      return "signing in…";
    case "connecting":
      return "connecting…";
    case "disabled":
      return "disabled";
    case "error":
      return "error";
  }
}

export function stateIcon(status: ServerStatus): string {
  if (needsMorePermission(status)) return "$(key)";
  switch (status.state) {
    case "connected":
      return "$(pass-filled)";
    case "authRequired":
      return "$(key)";
    case "authenticating":
    case "connecting":
      return "$(loading~spin)";
    case "disabled":
      return "$(circle-slash)";
    case "error":
      return "$(error)";
  }
}

export interface StatusBarView {
  text: string;
  warning: boolean;
  tooltip: string;
}

/** `$(plug) MCP c/e`: connected out of enabled; a warning when any server needs the person. */
export function statusBar(statuses: readonly ServerStatus[], running = true): StatusBarView {
  if (!running) {
    return { text: "$(warning) MCP", warning: true, tooltip: 'mcpls is not running: see the output channel "mcpls"' };
  }
  const enabled = statuses.filter((s) => s.state !== "disabled").length;
  const connected = statuses.filter((s) => s.state === "connected").length;
  const warning = statuses.some(needsPerson);
  const lines = statuses.map((s) => `${s.server}: ${stateLabel(s)}`);
  return {
    text: `${warning ? "$(warning)" : "$(plug)"} MCP ${connected}/${enabled}`,
    warning,
    tooltip: lines.length > 0 ? lines.join("\n") : "No MCP servers configured (setting mcpls.servers)",
  };
}

/** The second line of a server's row: account, token expiry, tools, last error. */
export function details(status: ServerStatus, now: Date = new Date()): string {
  const parts: string[] = [];
  const auth = status.auth;
  if (auth?.issuer) parts.push(`${auth.authenticated ? "signed in with" : "signs in with"} ${auth.issuer}`);
  // mcpls reports `auth` for every http server; "not signed in" only matters when it asks for it.
  else if (auth && !auth.authenticated && wantsSignIn(status)) parts.push("not signed in");
  if (auth?.expiresAt !== undefined) parts.push(tokenExpiry(auth.expiresAt, now));
  if (auth?.requiredScopes?.length) parts.push(`needs scopes ${auth.requiredScopes.join(" ")}`);
  if (status.toolCount !== undefined) parts.push(`${status.toolCount} tool${status.toolCount === 1 ? "" : "s"}`);
  if (status.error) parts.push(status.error.message);
  return parts.join(" · ");
}

export function tokenExpiry(expiresAt: number, now: Date): string {
  const seconds = expiresAt - Math.floor(now.getTime() / 1000);
  if (seconds <= 0) return "token expired (refreshed on next use)";
  const at = new Date(expiresAt * 1000);
  const hhmm = `${String(at.getHours()).padStart(2, "0")}:${String(at.getMinutes()).padStart(2, "0")}`;
  return seconds < 86_400 ? `token expires at ${hhmm}` : `token expires ${at.toISOString().slice(0, 10)}`;
}

/** The actions that fit a server's state, most likely first. */
export function actionsFor(status: ServerStatus): Action[] {
  const signedIn = status.auth?.authenticated === true;
  const actions: Action[] = [];
  switch (status.state) {
    case "connected":
      if (needsMorePermission(status)) actions.push("authenticate");
      actions.push("tools", "restart", "disable");
      break;
    case "authRequired":
      actions.push("authenticate", "disable");
      break;
    case "authenticating":
      actions.push("completeAuthentication", "disable");
      break;
    case "connecting":
      actions.push("restart", "disable");
      break;
    case "error":
      if (status.error?.kind === "authRequired") actions.push("authenticate");
      actions.push("restart", "disable");
      break;
    case "disabled":
      actions.push("enable");
      break;
  }
  if (signedIn) actions.push("logout");
  return actions;
}

export interface ServerRow {
  label: string;
  description: string;
  detail: string;
  server: string;
}

export function serverRow(status: ServerStatus, now?: Date): ServerRow {
  return {
    label: `${stateIcon(status)} ${status.server}`,
    description: stateLabel(status),
    detail: details(status, now),
    server: status.server,
  };
}

/**
 * The statuses after an mcp/status answer. mcpls can answer with a picture older than a
 * mcp/didChangeStatus that arrived while the request was out, so a server notified
 * meanwhile keeps its notified status; the others take the answer's (absent: removed).
 */
export function mergeSnapshot(
  current: ReadonlyMap<string, ServerStatus>,
  snapshot: readonly ServerStatus[],
  notifiedMeanwhile: ReadonlySet<string>,
): Map<string, ServerStatus> {
  const merged = new Map<string, ServerStatus>();
  for (const status of snapshot) merged.set(status.server, status);
  for (const server of notifiedMeanwhile) {
    const notified = current.get(server);
    if (notified) merged.set(server, notified);
  }
  return merged;
}
