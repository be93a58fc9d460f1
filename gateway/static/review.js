// Keyboard shortcuts for the review page (no inline scripts: the page's CSP forbids them).
// j / k: next / previous review; 1-9: pick that category; a: answer is right; s: save.
(function () {
  "use strict";
  var items = Array.prototype.slice.call(document.querySelectorAll("article.item"));
  var current = 0;

  function select(index, scroll) {
    if (!items.length) return;
    current = Math.max(0, Math.min(items.length - 1, index));
    items.forEach(function (el, n) { el.classList.toggle("current", n === current); });
    if (scroll) items[current].scrollIntoView({ block: "nearest" });
  }

  function typing(target) {
    return target instanceof HTMLElement &&
      (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (typing(ev.target)) {
      if (ev.key === "Escape") ev.target.blur();
      return;
    }
    var item = items[current];
    if (!item) return;
    var form = item.querySelector("form.correct");
    if (ev.key === "j") {
      select(current + 1, true);
    } else if (ev.key === "k") {
      select(current - 1, true);
    } else if (/^[1-9]$/.test(ev.key)) {
      var menu = form.querySelector("select[name=category]");
      var n = Number(ev.key) - 1;
      if (n >= menu.options.length) return;
      menu.selectedIndex = n;
    } else if (ev.key === "a") {
      form.querySelector("button[value=confirm]").click();
    } else if (ev.key === "s") {
      form.querySelector("button[value=save]").click();
    } else {
      return;
    }
    ev.preventDefault();
  });

  items.forEach(function (el, n) {
    el.addEventListener("focusin", function () { select(n, false); });
    el.addEventListener("click", function () { select(n, false); });
  });
  select(0, false);
  var flash = document.getElementById("flash");
  if (flash && window.history.replaceState) window.history.replaceState(null, "", "/review");
})();
