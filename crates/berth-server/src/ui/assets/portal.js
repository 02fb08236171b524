// berth portal: progressive enhancements only; every page works without it.
(function () {
  "use strict";

  function copy(button) {
    var text = button.getAttribute("data-copy") || "";
    var done = function () {
      var old = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = old; }, 1500);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(done, function () {});
    }
  }

  document.addEventListener("click", function (ev) {
    var t = ev.target;
    if (!(t instanceof Element)) { return; }
    var btn = t.closest("button.copybtn");
    if (btn) { copy(btn); return; }
    if (t.closest("a, button, input, select, label, summary")) { return; }
    var row = t.closest("tr[data-href]");
    if (row) { window.location.assign(row.getAttribute("data-href")); }
  });

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!(form instanceof HTMLFormElement)) { return; }
    var msg = form.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { ev.preventDefault(); }
  });
})();
