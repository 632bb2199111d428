// Drives code-server (VS Code in a browser) with Playwright and Debian's Chromium through
// a sign-in, a tool that asks a question, a sign-out and a settings change with the mcpls
// extension. Run by test_vscode_e2e.py with one argument, a JSON object: {url, tools,
// artifacts, server (needs OAuth), plainServer, userSettings, addServer: {name, url}}.
// Prints one JSON line per step ({step, ...facts}) for the test to assert on; exits
// non-zero on the first failure.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const config = JSON.parse(process.argv[2]);
const { chromium } = createRequire(join(config.tools, "package.json"))("playwright-core");
const STEP_TIMEOUT = 60_000;

function report(step, facts = {}) {
  console.log(JSON.stringify({ step, ...facts }));
}

/** Only origin and path: a callback URL's query holds a one-time code, kept out of the output. */
function withoutQuery(url) {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
});
const context = await browser.newContext({ viewport: { width: 1000, height: 560 } });
context.setDefaultTimeout(STEP_TIMEOUT);
const opened = []; // every page other than the workbench, in order
context.on("page", (page) => opened.push(page));
const page = await context.newPage();
opened.length = 0;

const statusItem = page.locator(`[id="mcpls.mcpls.mcpls.status"]`);
const shot = (name) => page.screenshot({ path: join(config.artifacts, `${name}.png`) });

async function statusBarShows(text, icon) {
  await statusItem.filter({ hasText: text }).locator(`.codicon-${icon}`).waitFor();
  report("statusBar", { text: (await statusItem.innerText()).trim(), icon });
}

const quickInput = page.locator(".quick-input-widget");

async function runCommand(title) {
  await page.keyboard.press("Control+Shift+P");
  const input = quickInput.locator("input");
  await input.waitFor();
  await input.fill(`>${title}`);
  const row = quickInput.locator(".monaco-list-row", { hasText: title }).first();
  await row.waitFor();
  await shot(`palette-${title.replace(/\W+/g, "-")}`);
  await row.click();
  // The palette is gone once its filter text is: closed, or replaced by the command's own pick.
  await page.waitForFunction(
    () => !document.querySelector(".quick-input-widget input")?.value?.startsWith(">") ||
      document.querySelector(".quick-input-widget")?.style.display === "none",
  );
}

/** The rows of the quick pick titled `title`, as one line of text each. */
async function quickPickRows(title) {
  await quickInput.locator(".quick-input-title", { hasText: title }).waitFor();
  const rows = quickInput.locator(".quick-input-list .monaco-list-row");
  await rows.first().waitFor();
  return (await rows.allInnerTexts()).map((text) => text.replace(/\s+/g, " ").trim());
}

/** Click the row of the quick pick titled `title` whose text starts with `start`. */
async function pickRow(title, start) {
  await quickInput.locator(".quick-input-title", { hasText: title }).waitFor();
  await quickInput.locator("input").fill(start); // long lists render only the rows in view
  const pattern = new RegExp(`^\\s*${start.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`);
  await quickInput.locator(".quick-input-list .monaco-list-row", { hasText: pattern }).first().click();
}

async function closeQuickPick() {
  await page.keyboard.press("Escape");
  await quickInput.waitFor({ state: "hidden" });
}

try {
  await page.goto(config.url);
  await page.locator(".monaco-workbench").waitFor({ timeout: 120_000 });
  report("workbench");

  // mcpls connected the plain server and found the other needs a sign-in: warning in the
  // status bar, the one-time prompt as a notification with its buttons, no page opened.
  await statusBarShows("MCP 1/2", "warning");
  const prompt = page.locator(".notification-toast", { hasText: `${config.server} needs you to sign in` });
  await prompt.waitFor();
  const buttons = await prompt.locator(".monaco-button").allInnerTexts();
  report("prompt", { buttons: buttons.map((b) => b.trim()).filter(Boolean) });
  await shot("1-needs-sign-in");
  await prompt.locator(".monaco-button", { hasText: "Not now" }).click();
  await prompt.waitFor({ state: "detached" });
  report("pagesBeforeSignIn", { count: opened.length });

  // The status quick pick, from a click on the status item.
  await statusItem.click();
  report("statusQuickPick", { rows: await quickPickRows("MCP servers") });
  await shot("2-status-quick-pick");
  await closeQuickPick();

  // Sign in from the palette; the extension opens the authorization page (through
  // code-server's proxy), which ends on mcpls's loopback callback.
  const popup = context.waitForEvent("page", { timeout: STEP_TIMEOUT });
  await runCommand("MCP: Authenticate Server…");
  const signIn = await popup;
  await signIn.waitForURL((url) => url.pathname.startsWith("/callback") || url.search.includes("code="), {
    timeout: STEP_TIMEOUT,
  });
  await signIn.waitForLoadState("load");
  report("signInPage", {
    finalUrl: withoutQuery(signIn.url()),
    text: (await signIn.locator("body").innerText()).trim().slice(0, 200),
    pages: opened.length,
  });
  await signIn.close();
  await page.bringToFront();

  await statusBarShows("MCP 2/2", "plug");
  await shot("3-connected");

  // Two servers have tools: the command asks which.
  await runCommand("MCP: Show Tools…");
  report("toolsServers", { rows: await quickPickRows("Show the tools of which MCP server?") });
  await pickRow("Show the tools of which MCP server?", config.server);
  report("tools", { rows: await quickPickRows(`Tools of ${config.server}`) });
  await shot("4-tools");
  await closeQuickPick();

  // A tool that asks the person for input (elicitation): an input box, default filled in.
  await runCommand("MCP: Show Tools…");
  await pickRow("Show the tools of which MCP server?", config.plainServer);
  await pickRow(`Tools of ${config.plainServer}`, "ask_name");
  const question = `${config.plainServer}: What is your name?`;
  await quickInput.locator(".quick-input-title", { hasText: question }).waitFor();
  const answer = quickInput.locator("input");
  report("elicitation", { title: question, value: await answer.inputValue() });
  await shot("5-elicitation");
  await answer.fill("Ada");
  await page.keyboard.press("Enter");
  const result = page.locator(".notification-toast", { hasText: "ask_name:" });
  await result.waitFor();
  report("toolResult", { text: (await result.locator(".notification-list-item-message").innerText()).trim() });

  // Step-up: a tool needing a scope the sign-in did not grant fails (403 insufficient_scope);
  // the status says so, and a new sign-in from the palette grants it.
  const callAdminEcho = async () => {
    await runCommand("MCP: Show Tools…");
    await pickRow("Show the tools of which MCP server?", config.server);
    await pickRow(`Tools of ${config.server}`, "admin_echo");
    await quickInput.locator(".quick-input-title", { hasText: "arguments of admin_echo" }).waitFor();
    await quickInput.locator("input").fill("root");
    await page.keyboard.press("Enter");
  };
  await callAdminEcho();
  const refused = page.locator(".notification-toast", { has: page.locator(".codicon-error") });
  await refused.waitFor();
  report("stepUpRefused", { text: (await refused.locator(".notification-list-item-message").innerText()).trim() });
  await statusItem.click();
  report("statusQuickPickStepUp", { rows: await quickPickRows("MCP servers") });
  await shot("6-needs-more-permission");
  await closeQuickPick();
  const popup2 = context.waitForEvent("page", { timeout: STEP_TIMEOUT });
  await runCommand("MCP: Authenticate Server…");
  const signIn2 = await popup2;
  await signIn2.waitForURL((url) => url.pathname.startsWith("/callback"), { timeout: STEP_TIMEOUT });
  await signIn2.close();
  await page.bringToFront();
  await statusBarShows("MCP 2/2", "plug");
  await callAdminEcho();
  const granted = page.locator(".notification-toast", { hasText: "admin_echo: " });
  await granted.waitFor();
  report("stepUpGranted", { text: (await granted.locator(".notification-list-item-message").innerText()).trim() });

  await statusItem.click();
  report("statusQuickPickConnected", { rows: await quickPickRows("MCP servers") });
  await shot("7-status-connected");
  await closeQuickPick();

  // Only one server is signed in: the command takes it without asking.
  await runCommand("MCP: Log Out of Server…");
  await statusBarShows("MCP 1/1", "plug");
  await statusItem.click();
  report("statusQuickPickLoggedOut", { rows: await quickPickRows("MCP servers") });
  await shot("8-logged-out");
  await closeQuickPick();

  // A server added in the settings reaches mcpls without a restart (didChangeConfiguration).
  const settings = JSON.parse(readFileSync(config.userSettings, "utf8"));
  settings["mcpls.servers"] = { ...settings["mcpls.servers"], [config.addServer.name]: { url: config.addServer.url } };
  // Edited as a person does, in the settings.json editor (a write behind VS Code's back is
  // not picked up by code-server's remote user-data file system).
  await runCommand("Preferences: Open User Settings (JSON)");
  const editor = page.locator(".monaco-editor", { hasText: "mcpls.servers" }).last();
  await editor.locator(".view-lines").click();
  await page.keyboard.press("Control+A");
  await page.keyboard.insertText(JSON.stringify(settings));
  await page.keyboard.press("Control+S");
  await statusBarShows("MCP 1/2", "warning");
  await shot("9-server-added");
  report("pagesAtEnd", { count: opened.length });
} catch (error) {
  await shot("failure").catch(() => {});
  report("failed", { error: String(error).split("\n").slice(0, 6).join("\n") });
  process.exitCode = 1;
} finally {
  await browser.close();
}
