// Tables wider than the screen scroll sideways inside a .scroll box. A box that scrolls gets a tab stop and a
// name (its section's heading), so a keyboard can reach and scroll it (WCAG 2.1.1); a box that fits gets none,
// so tabbing through a page does not stop on every table. Re-checked when the window changes size.
(function () {
  function nameOf(box) {
    const section = box.closest("section, .card, main");
    const heading = section && section.querySelector("h1, h2, h3, caption");
    return heading ? heading.textContent.trim() : document.title;
  }
  function mark() {
    document.querySelectorAll(".scroll").forEach(function (box) {
      if (box.scrollWidth > box.clientWidth + 1) {
        box.tabIndex = 0;
        box.setAttribute("role", "region");
        box.setAttribute("aria-label", nameOf(box));
      } else if (box.getAttribute("role") === "region") {
        box.removeAttribute("tabindex");
        box.removeAttribute("role");
        box.removeAttribute("aria-label");
      }
    });
  }
  mark();
  let timer = null;
  window.addEventListener("resize", function () { clearTimeout(timer); timer = setTimeout(mark, 100); });
})();
