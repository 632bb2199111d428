// A fake editor (scripted answers to pickers and boxes) and a fake mcpls (records requests).
import type { ServerStatus } from "../src/contract.generated.ts";
import type { InputOptions, Mcpls, PickItem, PickOptions, SignInProgress, Ui } from "../src/ui.ts";

export type Shown =
  | { kind: "pick"; items: PickItem<unknown>[]; options: PickOptions }
  | { kind: "input"; options: InputOptions }
  | { kind: "info"; message: string; buttons: string[] }
  | { kind: "error"; message: string }
  | { kind: "progress"; title: string; messages: string[] };

/** Answers each widget with the next scripted answer: a label to pick, text to type, or undefined (Escape). */
export class FakeUi implements Ui {
  shown: Shown[] = [];
  answers: (string | string[] | undefined)[] = [];
  /** Press Cancel on the progress notification as soon as it appears. */
  cancelProgress = false;

  private next(): string | string[] | undefined {
    if (this.answers.length === 0) throw new Error(`no answer scripted for ${JSON.stringify(this.shown.at(-1))}`);
    return this.answers.shift();
  }
  async pick<T>(items: PickItem<T>[], options: PickOptions): Promise<T | undefined> {
    this.shown.push({ kind: "pick", items, options });
    const label = this.next();
    if (label === undefined) return undefined;
    const item = items.find((i) => i.label === label);
    if (!item) throw new Error(`no item ${String(label)} in ${items.map((i) => i.label).join(", ")}`);
    return item.value;
  }
  async pickMany<T>(items: PickItem<T>[], options: PickOptions): Promise<T[] | undefined> {
    this.shown.push({ kind: "pick", items, options });
    const labels = this.next();
    if (labels === undefined) return undefined;
    return items.filter((i) => (labels as string[]).includes(i.label)).map((i) => i.value);
  }
  async input(options: InputOptions): Promise<string | undefined> {
    this.shown.push({ kind: "input", options });
    const text = this.next();
    if (text !== undefined) {
      const problem = options.validate?.(text as string);
      if (problem) throw new Error(`the box would not accept ${String(text)}: ${problem}`);
    }
    return text as string | undefined;
  }
  info(message: string, ...buttons: string[]): Promise<string | undefined> {
    this.shown.push({ kind: "info", message, buttons });
    return Promise.resolve(buttons.length > 0 ? (this.next() as string | undefined) : undefined);
  }
  error(message: string): void {
    this.shown.push({ kind: "error", message });
  }
  async withProgress<T>(title: string, run: (progress: SignInProgress) => Promise<T>): Promise<T> {
    const shown = { kind: "progress" as const, title, messages: [] as string[] };
    this.shown.push(shown);
    const abort = new AbortController();
    if (this.cancelProgress) queueMicrotask(() => abort.abort());
    return run({ report: (m) => shown.messages.push(m), signal: abort.signal });
  }
  of<K extends Shown["kind"]>(kind: K): Extract<Shown, { kind: K }>[] {
    return this.shown.filter((s): s is Extract<Shown, { kind: K }> => s.kind === kind);
  }
}

type Handler = (params: Record<string, unknown>, signal?: AbortSignal) => unknown;

export class FakeMcpls implements Mcpls {
  requests: { method: string; params: Record<string, unknown> }[] = [];
  handlers: Record<string, Handler> = {};
  progress: string[] = [];

  async request<R>(method: string, params: object, signal?: AbortSignal): Promise<R> {
    this.requests.push({ method, params: params as Record<string, unknown> });
    const handler = this.handlers[method];
    if (!handler) throw new Error(`unexpected request ${method}`);
    return (await handler(params as Record<string, unknown>, signal)) as R;
  }
  async authenticate(server: string, onProgress: (message: string) => void, signal: AbortSignal): Promise<ServerStatus> {
    for (const message of this.progress) onProgress(message);
    return this.request<ServerStatus>("mcp/authenticate", { server }, signal);
  }
}

export function status(server: string, state: ServerStatus["state"], extra: Partial<ServerStatus> = {}): ServerStatus {
  return { server, transport: "http", url: `http://127.0.0.1:1/${server}`, state, ...extra };
}

/** A JSON-RPC error as vscode-languageclient rejects with it. */
export function rpcError(message: string, kind: string | undefined, code = -32603): Error {
  return Object.assign(new Error(message), { code, data: kind === undefined ? undefined : { kind } });
}
