import "./style.css";
import { deleteSecret, listSecrets, revealSecret, storeSecret } from "./api";
import { describeExpiry, nameProblem, valueProblem, type SecretMeta } from "./secrets";
import { footerText } from "./version";

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`index.html has no #${id}`);
  return found as T;
}

const form = element<HTMLFormElement>("store-form");
const nameInput = element<HTMLInputElement>("name");
const valueInput = element<HTMLTextAreaElement>("value");
const ttlSelect = element<HTMLSelectElement>("ttl");
const message = element<HTMLParagraphElement>("message");
const list = element<HTMLUListElement>("secrets");

element("version").textContent = footerText();

function say(text: string, isError = false): void {
  message.textContent = text;
  message.classList.toggle("error", isError);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function renderItem(secret: SecretMeta): HTMLLIElement {
  const item = document.createElement("li");
  item.dataset.name = secret.name;
  const label = document.createElement("span");
  label.className = "secret-name";
  label.textContent = secret.name;
  const expiry = document.createElement("small");
  expiry.textContent = describeExpiry(secret);
  const output = document.createElement("code");
  output.className = "secret-value";
  const reveal = document.createElement("button");
  reveal.textContent = "Reveal";
  reveal.className = "reveal";
  reveal.addEventListener("click", async () => {
    try {
      output.textContent = (await revealSecret(secret.name)).value;
    } catch (error) {
      say(errorText(error), true);
    }
  });
  const remove = document.createElement("button");
  remove.textContent = "Delete";
  remove.className = "delete";
  remove.addEventListener("click", async () => {
    try {
      await deleteSecret(secret.name);
      say(`Deleted ${secret.name}.`);
      await refresh();
    } catch (error) {
      say(errorText(error), true);
    }
  });
  item.append(label, expiry, reveal, remove, output);
  return item;
}

async function refresh(): Promise<void> {
  try {
    const secrets = await listSecrets();
    list.replaceChildren(...secrets.map(renderItem));
  } catch (error) {
    say(`Could not load secrets: ${errorText(error)}`, true);
  }
}

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
  try {
    await storeSecret(name, value, ttl);
    form.reset();
    say(`Stored ${name}.`);
    await refresh();
  } catch (error) {
    say(errorText(error), true);
  }
});

void refresh();
