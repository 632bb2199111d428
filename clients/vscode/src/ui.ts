// The few editor widgets the extension logic uses, so that logic runs against a fake in tests.
import type { ServerStatus } from "./contract.generated.ts";

export interface PickItem<T> {
  label: string;
  description?: string;
  detail?: string;
  picked?: boolean;
  value: T;
}

export interface PickOptions {
  title: string;
  placeholder?: string;
  canPickMany?: boolean;
}

export interface InputOptions {
  title: string;
  prompt?: string;
  value?: string;
  placeholder?: string;
  /** An error message for the value as typed, or undefined when it is acceptable. */
  validate?: (value: string) => string | undefined;
}

export interface SignInProgress {
  report(message: string): void;
  /** Aborted when the person presses Cancel on the notification. */
  readonly signal: AbortSignal;
}

export interface Ui {
  /** One item, or undefined when the person pressed Escape. */
  pick<T>(items: PickItem<T>[], options: PickOptions): Promise<T | undefined>;
  /** Several items (canPickMany), or undefined on Escape. */
  pickMany<T>(items: PickItem<T>[], options: PickOptions): Promise<T[] | undefined>;
  input(options: InputOptions): Promise<string | undefined>;
  info(message: string, ...buttons: string[]): Promise<string | undefined>;
  error(message: string): void;
  /** A cancellable progress notification for as long as `run` takes. */
  withProgress<T>(title: string, run: (progress: SignInProgress) => Promise<T>): Promise<T>;
}

/** The requests the extension sends to mcpls (the contract in schemas/methods/). */
export interface Mcpls {
  request<R>(method: string, params: object, signal?: AbortSignal): Promise<R>;
  /** mcp/authenticate with a workDoneToken whose `$/progress` messages go to `onProgress`. */
  authenticate(server: string, onProgress: (message: string) => void, signal: AbortSignal): Promise<ServerStatus>;
}
