// Fleetdeck's own small behaviours; the pages work without them.
document.addEventListener("change", (event) => {
  const el = event.target;
  if (el.matches("select[data-autosubmit]")) el.form.submit();
});

// Studio: show the variables the chosen registry prompt declares.
function showPromptVariables() {
  const holder = document.getElementById("prompt-variables");
  const select = document.getElementById("id_prompt_ref");
  if (!holder || !select) return;
  const variables = JSON.parse(holder.dataset.variables || "{}")[select.value] || [];
  holder.querySelector("span").textContent = select.value ? (variables.join(", ") || "none") : "pick a prompt";
}
document.addEventListener("DOMContentLoaded", showPromptVariables);
document.addEventListener("change", (event) => { if (event.target.id === "id_prompt_ref") showPromptVariables(); });
