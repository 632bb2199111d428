import assert from "node:assert/strict";
import { test } from "node:test";
import { elicit, fields, validate } from "../src/elicit.ts";
import { FakeUi } from "./fake.ts";

const form = {
  type: "object" as const,
  properties: {
    name: { type: "string", title: "Your name", default: "Ada" },
    age: { type: "integer", minimum: 0, description: "In years" },
    subscribe: { type: "boolean", default: false },
    color: { type: "string", enum: ["r", "g"], enumNames: ["Red", "Green"], default: "g" },
    size: { type: "string", oneOf: [{ const: "s", title: "Small" }, { const: "l", title: "Large" }] },
    tags: { type: "array", items: { enum: ["x", "y"] }, default: ["y"] },
  },
  required: ["name", "age"],
};

test("fields map the restricted schema to boxes and pickers, defaults kept", () => {
  const result = fields(form);
  assert.deepEqual(
    result.map((f) => [f.name, f.kind, f.required, f.default]),
    [
      ["name", "string", true, "Ada"],
      ["age", "integer", true, undefined],
      ["subscribe", "boolean", false, false],
      ["color", "enum", false, "g"],
      ["size", "enum", false, undefined],
      ["tags", "multi", false, ["y"]],
    ],
  );
  const color = result[3];
  assert.ok(color.kind === "enum");
  assert.deepEqual(color.options, [{ value: "r", label: "Red" }, { value: "g", label: "Green" }]);
});

test("validation follows the field's schema", () => {
  const [name, age] = fields(form);
  assert.equal(validate(name, ""), "Your name is required");
  assert.equal(validate(age, "1.5"), "Enter a whole number");
  assert.equal(validate(age, "-1"), "At least 0");
  assert.equal(validate(age, "x"), "Enter a number");
  assert.equal(validate(age, "42"), undefined);
});

test("every field is asked in order, defaults pre-filled, and the answers typed", async () => {
  const ui = new FakeUi();
  ui.answers = ["Ada", "36", "No", "Green", "Leave empty", ["x", "y"]];
  const result = await elicit(ui, { server: "svc", message: "Who are you?", requestedSchema: form });
  assert.deepEqual(result, {
    action: "accept",
    content: { name: "Ada", age: 36, subscribe: false, color: "g", tags: ["x", "y"] },
  });
  const [nameBox, ageBox] = ui.of("input");
  assert.equal(nameBox.options.value, "Ada");
  assert.equal(nameBox.options.title, "svc: Who are you?");
  assert.equal(ageBox.options.prompt, "age: In years");
  const [subscribe, color, , tags] = ui.of("pick");
  assert.equal(subscribe.items[0].label, "No"); // the default first: Enter takes it
  assert.equal(color.items[0].label, "Green");
  assert.deepEqual(tags.items.map((i) => i.picked), [false, true]);
});

test("Escape on any field declines the whole form", async () => {
  const ui = new FakeUi();
  ui.answers = ["Ada", undefined];
  const result = await elicit(ui, { server: "svc", message: "Who?", requestedSchema: form });
  assert.deepEqual(result, { action: "decline" });
  assert.equal(ui.shown.length, 2);
});
