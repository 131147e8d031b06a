// The case report form, while typing (the server stays the judge of every value):
// - a number outside its field's soft limits (data-soft-min/max, in the field's unit; a value typed in another
//   unit is converted with the option's data-factor and data-offset) is warned about beside the field, with the
//   expected range, before saving (data-soft-range comes from the server in the page's digits and, on a
//   right-to-left page, isolated by LRI ... PDI, so its unit reads "°C", never "C°"; it is written as text);
// - the reason for change (a form no longer a draft) is asked for once a value changes;
// - the reason a value is not recorded is asked for once "not done" or "not applicable" is chosen.
(function () {
  const form = document.getElementById("crf");
  if (!form) return;
  const DIGITS = { "۰": "0", "۱": "1", "۲": "2", "۳": "3", "۴": "4", "۵": "5", "۶": "6", "۷": "7", "۸": "8", "۹": "9",
    "٠": "0", "١": "1", "٢": "2", "٣": "3", "٤": "4", "٥": "5", "٦": "6", "٧": "7", "٨": "8", "٩": "9", "٫": "." };
  function number(text) {
    const latin = text.trim().replace(/[۰-۹٠-٩٫]/g, function (c) { return DIGITS[c]; });
    return /^[+-]?(\d+\.?\d*|\.\d+)$/.test(latin) ? parseFloat(latin) : null;
  }
  function check(input) {
    const id = input.id.slice(2);
    const warning = document.getElementById("warn-" + id);
    if (!warning) return;
    let value = number(input.value);
    const unit = form.querySelector('select[name="u-' + id + '"]');
    const option = unit && unit.selectedOptions[0];
    if (value !== null && option && option.dataset.factor) {
      value = value * parseFloat(option.dataset.factor) + parseFloat(option.dataset.offset || "0");
    }
    const status = form.querySelector('select[name="s-' + id + '"]');
    const min = input.dataset.softMin === "" ? null : parseFloat(input.dataset.softMin);
    const max = input.dataset.softMax === "" ? null : parseFloat(input.dataset.softMax);
    const outside = value !== null && (!status || status.value === "value") &&
      ((min !== null && value < min) || (max !== null && value > max));
    warning.hidden = !outside;
    warning.textContent = outside ? form.dataset.warnText + " " + input.dataset.softRange + ": " + form.dataset.warnNote + "." : "";
    input.toggleAttribute("aria-invalid", false);
    input.closest("tr").classList.toggle("has-warning", outside);
  }
  form.querySelectorAll("input[data-soft-range]").forEach(function (input) {
    input.addEventListener("input", function () { check(input); });
    check(input);
  });
  form.querySelectorAll('select[name^="u-"]').forEach(function (unit) {
    unit.addEventListener("change", function () {
      const input = document.getElementById("v-" + unit.name.slice(2));
      if (input && input.dataset.softRange) check(input);
    });
  });
  form.querySelectorAll("select[data-status-of]").forEach(function (status) {
    status.addEventListener("change", function () {
      const id = status.dataset.statusOf;
      const why = form.querySelector('[data-why-not="' + id + '"]');
      if (why) why.hidden = !(status.value === "not_done" || status.value === "not_applicable");
      const input = document.getElementById("v-" + id);
      if (input && input.dataset.softRange) check(input);
    });
  });
  const box = form.querySelector("[data-reason-box][data-until-changed]");
  if (box) {
    box.hidden = true;
    const show = function (event) {
      if (event.target.name === "reason") return;
      box.hidden = false;
    };
    form.addEventListener("input", show);
    form.addEventListener("change", show);
  }
})();
