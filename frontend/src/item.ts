// One row of the list: the name, its dates, and Reveal / Copy / Hide / Delete.
// The row only builds elements; what the buttons do to the backend, the
// clipboard and the page's messages is passed in by main.ts.

import { describeCreated, describeExpiry, type SecretMeta } from "./secrets";

export interface ItemActions {
  /** The secret's value, or null when revealing failed (already reported). */
  reveal(name: string): Promise<string | null>;
  /** Copies a revealed value and reports how that went. */
  copy(name: string, value: string): Promise<void>;
  /** Asks for confirmation, then deletes the secret. */
  remove(name: string): Promise<void>;
}

function button(label: string, className: string, onClick: () => void): HTMLButtonElement {
  const made = document.createElement("button");
  made.type = "button";
  made.textContent = label;
  made.className = className;
  made.addEventListener("click", onClick);
  return made;
}

/** `<time datetime="2026-…Z">created 2026-… UTC</time>`: readable text, exact attribute. */
function dateElement(className: string, timestamp: string, text: string): HTMLTimeElement {
  const time = document.createElement("time");
  time.className = className;
  time.dateTime = timestamp;
  time.textContent = text;
  return time;
}

function datesOf(secret: SecretMeta): HTMLElement {
  const dates = document.createElement("small");
  dates.className = "secret-dates";
  const created = dateElement("created", secret.created_at, describeCreated(secret));
  const expires = secret.expires_at
    ? dateElement("expires", secret.expires_at, describeExpiry(secret))
    : Object.assign(document.createElement("span"), { className: "expires", textContent: describeExpiry(secret) });
  dates.append(created, " · ", expires);
  return dates;
}

// The value lives only inside this element: Hide removes the element itself,
// so a hidden value is no longer anywhere in the page (not merely invisible),
// and Copy reads it from here rather than keeping a copy of its own.
function revealedValue(name: string, value: string, actions: ItemActions): HTMLDivElement {
  const revealed = document.createElement("div");
  revealed.className = "revealed";
  const output = document.createElement("code");
  output.className = "secret-value";
  output.textContent = value;
  const copy = button("Copy", "copy", () => void actions.copy(name, output.textContent ?? ""));
  const hide = button("Hide", "hide", () => revealed.remove());
  revealed.append(output, copy, hide);
  return revealed;
}

/** The list item of `secret`, `li[data-name]`. */
export function renderItem(secret: SecretMeta, actions: ItemActions): HTMLLIElement {
  const item = document.createElement("li");
  item.dataset.name = secret.name;
  const label = document.createElement("span");
  label.className = "secret-name";
  label.textContent = secret.name;
  const reveal = button("Reveal", "reveal", async () => {
    const value = await actions.reveal(secret.name);
    if (value === null) return;
    item.querySelector(".revealed")?.remove();
    item.append(revealedValue(secret.name, value, actions));
  });
  const remove = button("Delete", "delete", () => void actions.remove(secret.name));
  item.append(label, datesOf(secret), reveal, remove);
  return item;
}
