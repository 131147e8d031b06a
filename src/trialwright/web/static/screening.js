// The live eligibility summary on the screening form: asks the server what the decision would be.
(function () {
  const form = document.getElementById("screening-form");
  const live = document.getElementById("live");
  if (!form || !live) return;
  let timer = null;
  function label(key) { return live.dataset["label" + key.charAt(0).toUpperCase() + key.slice(1)] || key; }
  async function refresh() {
    const response = await fetch("/screening/check", { method: "POST", body: new FormData(form) });
    if (!response.ok) return;
    const result = await response.json();
    const lines = [result.decision === "not_eligible" ? live.dataset.labelNot_eligible : label(result.decision)];
    (result.failed || []).forEach(function (f) { lines.push(f); });
    (result.problems || []).forEach(function (p) { lines.push(p); });
    if (result.missing && result.missing.length) lines.push(live.dataset.labelMissing + ": " + result.missing.join(", "));
    live.textContent = lines.join(" · ");
    live.className = "summary " + result.decision;
    live.setAttribute("data-decision", result.decision);
  }
  form.addEventListener("change", function () { clearTimeout(timer); timer = setTimeout(refresh, 150); });
  refresh();
})();
