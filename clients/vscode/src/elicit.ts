// mcp/elicit: an MCP server's form (MCP's restricted JSON Schema: flat primitives and
// enums) asked one field at a time; Escape on any field declines the whole form.
import type { ElicitParams, ElicitResult } from "./contract.generated.ts";
import type { PickItem, Ui } from "./ui.ts";

type Json = unknown;

export interface Option {
  value: string;
  label: string;
}

export type Field =
  | { kind: "string"; name: string; title: string; prompt?: string; required: boolean; default?: string; minLength?: number; maxLength?: number; format?: string }
  | { kind: "number" | "integer"; name: string; title: string; prompt?: string; required: boolean; default?: number; minimum?: number; maximum?: number }
  | { kind: "boolean"; name: string; title: string; prompt?: string; required: boolean; default?: boolean }
  | { kind: "enum"; name: string; title: string; prompt?: string; required: boolean; default?: string; options: Option[] }
  | { kind: "multi"; name: string; title: string; prompt?: string; required: boolean; default?: string[]; options: Option[] }
  | { kind: "json"; name: string; title: string; prompt?: string; required: boolean; default?: string };

type Schema = Record<string, unknown>;

function options(schema: Schema): Option[] | undefined {
  if (Array.isArray(schema.enum)) {
    const names = Array.isArray(schema.enumNames) ? schema.enumNames : [];
    return schema.enum.map((v, i) => ({ value: String(v), label: typeof names[i] === "string" ? names[i] : String(v) }));
  }
  const titled = (Array.isArray(schema.oneOf) ? schema.oneOf : Array.isArray(schema.anyOf) ? schema.anyOf : undefined) as Schema[] | undefined;
  if (titled?.every((o) => o && typeof o === "object" && "const" in o)) {
    return titled.map((o) => ({ value: String(o.const), label: typeof o.title === "string" ? o.title : String(o.const) }));
  }
  return undefined;
}

/** The form's fields in the order the server listed them. */
export function fields(requested: ElicitParams["requestedSchema"]): Field[] {
  const required = new Set(requested.required ?? []);
  return Object.entries(requested.properties).map(([name, raw]) => {
    const schema = raw as Schema;
    const base = {
      name,
      title: typeof schema.title === "string" ? schema.title : name,
      prompt: typeof schema.description === "string" ? schema.description : undefined,
      required: required.has(name),
    };
    const def = schema.default;
    const itemChoices = schema.type === "array" ? options((schema.items ?? {}) as Schema) : undefined;
    if (itemChoices) {
      return { ...base, kind: "multi", options: itemChoices, default: Array.isArray(def) ? def.map(String) : undefined };
    }
    // Not in MCP's restricted form schema, but in tools' input schemas: typed as JSON.
    if (schema.type === "array" || schema.type === "object") {
      return { ...base, kind: "json", default: def === undefined ? undefined : JSON.stringify(def) };
    }
    const choices = options(schema);
    if (choices) return { ...base, kind: "enum", options: choices, default: def === undefined ? undefined : String(def) };
    if (schema.type === "boolean") return { ...base, kind: "boolean", default: typeof def === "boolean" ? def : undefined };
    if (schema.type === "number" || schema.type === "integer") {
      return {
        ...base,
        kind: schema.type,
        default: typeof def === "number" ? def : undefined,
        minimum: typeof schema.minimum === "number" ? schema.minimum : undefined,
        maximum: typeof schema.maximum === "number" ? schema.maximum : undefined,
      };
    }
    return {
      ...base,
      kind: "string",
      default: typeof def === "string" ? def : undefined,
      minLength: typeof schema.minLength === "number" ? schema.minLength : undefined,
      maxLength: typeof schema.maxLength === "number" ? schema.maxLength : undefined,
      format: typeof schema.format === "string" ? schema.format : undefined,
    };
  }) as Field[];
}

/** Why `text` is not a valid value of `field`, or undefined when it is. */
export function validate(field: Field, text: string): string | undefined {
  if (text === "") return field.required ? `${field.title} is required` : undefined;
  if (field.kind === "number" || field.kind === "integer") {
    const n = Number(text);
    if (!Number.isFinite(n)) return "Enter a number";
    if (field.kind === "integer" && !Number.isInteger(n)) return "Enter a whole number";
    if (field.minimum !== undefined && n < field.minimum) return `At least ${field.minimum}`;
    if (field.maximum !== undefined && n > field.maximum) return `At most ${field.maximum}`;
  }
  if (field.kind === "json") {
    try {
      JSON.parse(text);
    } catch {
      return "Enter a JSON value";
    }
  }
  if (field.kind === "string") {
    if (field.minLength !== undefined && text.length < field.minLength) return `At least ${field.minLength} characters`;
    if (field.maxLength !== undefined && text.length > field.maxLength) return `At most ${field.maxLength} characters`;
    if (field.format === "email" && !/^[^@\s]+@[^@\s]+$/.test(text)) return "Enter an email address";
    if (field.format === "uri" && !/^[a-z][a-z0-9+.-]*:/i.test(text)) return "Enter a URL";
  }
  return undefined;
}

const SKIP = "\u0000skip";

/** Ask one field; `undefined` means the person pressed Escape, `null` that they left it empty. */
async function ask(ui: Ui, title: string, field: Field): Promise<Json | null | undefined> {
  const name = `${field.title}${field.required ? "" : " (optional)"}`;
  const placeholder = field.prompt ? `${name}: ${field.prompt}` : name;
  const label = title;
  switch (field.kind) {
    case "boolean": {
      const items: PickItem<string>[] = [
        { label: "Yes", value: "true", description: field.default === true ? "default" : undefined },
        { label: "No", value: "false", description: field.default === false ? "default" : undefined },
      ];
      if (field.default === false) items.reverse(); // the default comes first, so Enter takes it
      if (!field.required) items.push({ label: "Leave empty", value: SKIP });
      const choice = await ui.pick(items, { title: label, placeholder });
      return choice === undefined ? undefined : choice === SKIP ? null : choice === "true";
    }
    case "enum": {
      const items: PickItem<string>[] = field.options.map((o) => ({
        label: o.label,
        value: o.value,
        description: o.value === field.default ? "default" : undefined,
      }));
      items.sort((a, b) => Number(b.value === field.default) - Number(a.value === field.default));
      if (!field.required) items.push({ label: "Leave empty", value: SKIP });
      const choice = await ui.pick(items, { title: label, placeholder });
      return choice === undefined ? undefined : choice === SKIP ? null : choice;
    }
    case "multi": {
      const items = field.options.map((o) => ({ label: o.label, value: o.value, picked: field.default?.includes(o.value) }));
      return ui.pickMany(items, { title: label, placeholder, canPickMany: true });
    }
    default: {
      const text = await ui.input({
        title: label,
        prompt: placeholder,
        value: field.default === undefined ? "" : String(field.default),
        validate: (value) => validate(field, value),
      });
      if (text === undefined) return undefined;
      if (text === "") return null;
      if (field.kind === "json") return JSON.parse(text);
      return field.kind === "string" ? text : Number(text);
    }
  }
}

/**
 * Ask every field of a form in turn: the values entered (empty optional fields left out),
 * or undefined when the person pressed Escape.
 */
export async function askForm(ui: Ui, title: string, form: Field[]): Promise<Record<string, Json> | undefined> {
  const content: Record<string, Json> = {};
  for (const field of form) {
    const value = await ask(ui, title, field);
    if (value === undefined) return undefined;
    if (value !== null) content[field.name] = value;
  }
  return content;
}

/** Show the form to the person and answer mcpls with what they entered. */
export async function elicit(ui: Ui, params: ElicitParams): Promise<ElicitResult> {
  // The server's question heads every field's box, so it stays in view while answering.
  const title = `${params.server}: ${params.message}`;
  const form = fields(params.requestedSchema);
  if (form.length === 0) {
    const answer = await ui.info(title, "Accept", "Decline");
    return answer === "Accept" ? { action: "accept", content: {} } : { action: "decline" };
  }
  const content = await askForm(ui, title, form);
  return content === undefined ? { action: "decline" } : { action: "accept", content };
}
