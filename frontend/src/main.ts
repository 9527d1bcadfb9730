import "./style.css";
import { deleteSecret, isUnauthorized, listSecrets, revealSecret, storeSecret } from "./api";
import { renderItem, type ItemActions } from "./item";
import { deleteQuestion, nameProblem, valueProblem, type SecretMeta } from "./secrets";
import {
  NO_STORAGE,
  TOKEN_REJECTED,
  cleanToken,
  clearToken,
  readToken,
  saveToken,
  tokenProblem,
  type TokenStore,
} from "./session";
import { footerText } from "./version";

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`index.html has no #${id}`);
  return found as T;
}

const signInSection = element<HTMLElement>("sign-in");
const signInForm = element<HTMLFormElement>("sign-in-form");
const tokenInput = element<HTMLInputElement>("token");
const signInMessage = element<HTMLParagraphElement>("sign-in-message");
const appSection = element<HTMLElement>("app");
const form = element<HTMLFormElement>("store-form");
const nameInput = element<HTMLInputElement>("name");
const valueInput = element<HTMLTextAreaElement>("value");
const ttlSelect = element<HTMLSelectElement>("ttl");
const message = element<HTMLParagraphElement>("message");
const list = element<HTMLUListElement>("secrets");
const dialog = element<HTMLDialogElement>("confirm-delete");
const dialogText = element<HTMLParagraphElement>("confirm-delete-text");
const confirmButton = element<HTMLButtonElement>("confirm-delete-button");

element("version").textContent = footerText();

function show(target: HTMLParagraphElement, text: string, isError: boolean): void {
  target.textContent = text;
  target.classList.toggle("error", isError);
}

function say(text: string, isError = false): void {
  show(message, text, isError);
}

/** The tab's sessionStorage, or NO_STORAGE when the browser refuses it. */
function session(): TokenStore {
  try {
    return sessionStorage;
  } catch {
    return NO_STORAGE;
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Back to the sign-in screen. The token leaves sessionStorage and every
 * secret (names, dates, revealed values) leaves the page.
 */
function signOut(text: string, isError: boolean): void {
  clearToken(session());
  if (dialog.open) dialog.close("cancel");
  list.replaceChildren();
  form.reset();
  say("");
  appSection.hidden = true;
  signInSection.hidden = false;
  show(signInMessage, text, isError);
  tokenInput.focus();
}

function showApp(): void {
  signInSection.hidden = true;
  show(signInMessage, "", false);
  appSection.hidden = false;
}

/**
 * Runs `action` with the session's token. Any 401 (revoked or unknown token)
 * ends the session with TOKEN_REJECTED; other failures are reported as
 * "`what`: cause". Null when it failed, or when the session it ran for has
 * ended meanwhile (signed out): its answer, or its error, must not reach the page.
 */
async function authorized<T>(what: string, action: (token: string) => Promise<T>): Promise<{ result: T } | null> {
  const token = readToken(session());
  if (token === null) {
    signOut("Signed out in the meantime: sign in again.", true);
    return null;
  }
  const current = () => readToken(session()) === token;
  try {
    const result = await action(token);
    return current() ? { result } : null;
  } catch (error) {
    if (!current()) return null;
    if (isUnauthorized(error)) signOut(TOKEN_REJECTED, true);
    else say(`${what}: ${errorText(error)}`, true);
    return null;
  }
}

/** Asks in a modal dialog, naming the secret; true only on the Delete button. */
function confirmDeletion(name: string): Promise<boolean> {
  dialogText.textContent = deleteQuestion(name);
  confirmButton.textContent = `Delete ${name}`;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "delete"), { once: true });
  });
}

confirmButton.addEventListener("click", () => dialog.close("delete"));
element("cancel-delete").addEventListener("click", () => dialog.close("cancel"));

async function copyValue(name: string, value: string): Promise<void> {
  const byHand = "select the value and copy it by hand";
  // Browsers offer the clipboard only to secure pages (https, or localhost).
  if (!navigator.clipboard) {
    say(`Could not copy ${name}: this page has no clipboard access (it needs https); ${byHand}.`, true);
    return;
  }
  try {
    await navigator.clipboard.writeText(value);
    say(`Copied ${name} to the clipboard.`);
  } catch (error) {
    say(`Could not copy ${name}: ${errorText(error)}; ${byHand}.`, true);
  }
}

const actions: ItemActions = {
  async reveal(name) {
    const revealed = await authorized(`Could not reveal ${name}`, (token) => revealSecret(token, name));
    return revealed ? revealed.result.value : null;
  },
  copy: copyValue,
  async remove(name) {
    if (!(await confirmDeletion(name))) {
      // A sign-out also closes the dialog; then there is nobody to tell.
      if (!appSection.hidden) say(`Kept ${name}.`);
      return;
    }
    if (await authorized(`Could not delete ${name}`, (token) => deleteSecret(token, name))) {
      say(`Deleted ${name}.`);
      await refresh();
    }
  },
};

function render(secrets: SecretMeta[]): void {
  list.replaceChildren(...secrets.map((secret) => renderItem(secret, actions)));
}

async function refresh(): Promise<void> {
  const loaded = await authorized("Could not load secrets", listSecrets);
  if (loaded) render(loaded.result);
}

/** Checks the token against the backend before keeping it: a rejected one is never stored. */
async function signIn(pasted: string): Promise<void> {
  const token = cleanToken(pasted);
  const problem = tokenProblem(token);
  if (problem) {
    show(signInMessage, problem, true);
    return;
  }
  try {
    const secrets = await listSecrets(token);
    saveToken(session(), token);
    tokenInput.value = "";
    showApp();
    render(secrets);
  } catch (error) {
    const text = isUnauthorized(error) ? TOKEN_REJECTED : `Could not sign in: ${errorText(error)}`;
    show(signInMessage, text, true);
  }
}

signInForm.addEventListener("submit", (event) => {
  event.preventDefault();
  void signIn(tokenInput.value);
});

element("sign-out").addEventListener("click", () => signOut("Signed out.", false));

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = nameInput.value.trim();
  const value = valueInput.value;
  const problem = nameProblem(name) ?? valueProblem(value);
  if (problem) {
    say(problem, true);
    return;
  }
  const ttl = ttlSelect.value === "" ? null : Number(ttlSelect.value);
  if (await authorized(`Could not store ${name}`, (token) => storeSecret(token, name, value, ttl))) {
    form.reset();
    say(`Stored ${name}.`);
    await refresh();
  }
});

if (readToken(session()) === null) {
  tokenInput.focus();
} else {
  showApp();
  void refresh();
}
