// The knowledge base page's re-embed dialog: lists the embedding models the server can actually
// run (GET /api/kb/{name}/embedders — those that cannot are shown disabled, with the reason) and
// resolves to the one chosen, or null when closed. The job itself is followed in the upload list.

import { api } from "./api.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";

/** Ask which model to re-embed ``kb`` with; null when the dialog is closed without choosing. */
export async function chooseEmbedder(kb) {
  const dialog = document.getElementById("reembed-dialog");
  const select = document.getElementById("reembed-model");
  const note = document.getElementById("reembed-note");
  const start = dialog.querySelector('[data-testid="reembed-start"]');
  document.getElementById("reembed-title").textContent = t("reembed.title", { kb });
  select.replaceChildren();
  start.disabled = true;
  note.textContent = t("reembed.loading");
  dialog.returnValue = "";
  const closed = new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true });
  });
  dialog.showModal();
  try {
    const res = await api.embedders(kb);
    const models = (res && res.data) || [];
    const label = (m) =>
      !m.available
        ? t("reembed.unavailable", { name: m.name, reason: m.reason || "" })
        : m.name === res.current
          ? t("reembed.current", { name: m.name })
          : m.name;
    select.replaceChildren(
      ...models.map((m) =>
        h("option", { value: m.name, disabled: !m.available, title: m.hint || null }, label(m)),
      ),
    );
    // another model that runs, else the current one at its installed version
    const pick =
      models.find((m) => m.available && m.name !== res.current) || models.find((m) => m.available);
    if (pick) select.value = pick.name;
    start.disabled = !pick;
    note.textContent = "";
  } catch (err) {
    note.textContent = err.display || err.message;
  }
  const how = await closed;
  return how === "start" && select.value ? select.value : null;
}
