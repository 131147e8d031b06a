// The screening form: the live eligibility summary (the server says what the decision would be, and the derived
// values such as the P/F ratio), and "none of these apply" for the exclusion criteria (the empty yes/no questions
// it answers "no" are shown so; the server reads the checkbox the same way, so it works without this script).
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
    Object.entries(result.derived || {}).forEach(function (pair) {
      form.querySelectorAll('output[data-derived="' + pair[0] + '"]').forEach(function (o) { o.textContent = pair[1]; });
    });
  }
  function noneApply(box) {
    if (!box.checked) return;
    box.dataset.noneApply.split(" ").forEach(function (name) {
      const select = form.querySelector('select[name="' + name + '"]');
      if (select && select.value === "") select.value = "no";
    });
  }
  form.querySelectorAll("input[data-none-apply]").forEach(function (box) {
    box.addEventListener("change", function () { noneApply(box); });
  });
  form.addEventListener("change", function () { clearTimeout(timer); timer = setTimeout(refresh, 150); });
  refresh();
})();

// The screening page's "Enter or correct values": the reason box is asked for only once an input of a field that
// holds a saved value is given one (changing a saved value needs a reason; the server refuses it without one).
(function () {
  const box = document.querySelector("[data-reason-box][data-until-changed]");
  if (!box) return;
  const form = box.closest("form");
  const saved = new Set((box.dataset.savedFields || "").split(" ").filter(Boolean));
  box.hidden = true;
  const show = function (event) {
    const target = event.target;
    if (!target) return;
    if (saved.has(target.name) && target.value !== "") box.hidden = false;
    // "None of these apply" answers no to the empty questions it names: a saved one among them is a change
    if (target.dataset.noneApply && target.checked &&
        target.dataset.noneApply.split(" ").some(function (name) { return saved.has(name); })) box.hidden = false;
  };
  form.addEventListener("input", show);
  form.addEventListener("change", show);
})();
