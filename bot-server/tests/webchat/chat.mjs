// Drives the web chat page as a person would, in Debian's headless Chromium: signs in
// with the keyboard, picks a bot, talks to it over the WebSocket, follows a suggestion
// with the keyboard, and saves a screenshot. Prints one JSON line of what it saw; any
// console error, page error or CSP violation fails it.
//
// Environment: BASE_URL, EMAIL, PASSWORD, BOT, SCREENSHOT, CHROMIUM (default /usr/bin/chromium).
import { chromium } from "playwright-core";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
  ],
});
const seen = { errors: [] };
try {
  const page = await browser.newPage();
  page.on("console", (m) => { if (m.type() === "error") seen.errors.push(m.text()); });
  page.on("pageerror", (e) => seen.errors.push(String(e)));
  page.on("response", (r) => { if (r.status() >= 400) seen.errors.push(`${r.status()} ${r.url()}`); });
  page.setDefaultTimeout(15000);
  await page.goto(env("BASE_URL"));

  // Every control has a label a screen reader announces.
  seen.unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll("input, select")]
      .filter((el) => !el.labels || el.labels.length === 0)
      .map((el) => el.id));

  // Sign in with the keyboard only.
  await page.getByLabel("Email").focus();
  await page.keyboard.type(env("EMAIL"));
  await page.keyboard.press("Tab");
  await page.keyboard.type(env("PASSWORD"));
  await page.keyboard.press("Enter");
  await page.getByText("Connected.").waitFor();
  await page.getByLabel("Bot").selectOption(env("BOT"));
  await page.getByLabel("Bot").focus();
  await page.keyboard.press("Tab");
  seen.startFocused = await page.evaluate(() => document.activeElement.id);
  await page.keyboard.press("Enter");

  const log = page.locator("#log li");
  const lastBot = async (count) => {
    await page.waitForFunction((n) => document.querySelectorAll("#log li").length >= n, count);
    return (await page.locator("#log li.bot").last().textContent()).replace(/^Bot: /, "");
  };
  seen.welcome = await lastBot(2);
  const say = async (text, expected) => {
    const before = await log.count();
    await page.getByLabel("Message").fill(text);
    await page.getByLabel("Message").press("Enter");
    return lastBot(before + 1 + expected);
  };
  seen.afterChoice = await say("account", 1);
  seen.answer = await say("how do I reset my password", 2);
  seen.unsure = await say("tell me about data elephants", 1);
  seen.suggestions = await page.locator("#suggestions button").allTextContents();

  // A suggestion, with the keyboard: Tab from the message box back to it, then Enter.
  const before = await log.count();
  await page.locator("#suggestions button").first().focus();
  await page.keyboard.press("Enter");
  seen.suggestionAnswer = await lastBot(before + 2);

  await page.screenshot({ path: env("SCREENSHOT"), fullPage: true });
  seen.csp = await page.evaluate(() => document.querySelectorAll("script:not([src]), style").length);
} catch (e) {
  seen.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
process.exit(seen.errors.length === 0 ? 0 : 1);
