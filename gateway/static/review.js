// Keyboard shortcuts for the review page (no inline scripts: the page's CSP forbids them).
// j / k: next / previous review; 1-9: pick that category; a: answer is right; s: save.
// When category or urgency changes, topic and summary must be edited or ticked as still
// right before a save goes out (the server refuses it otherwise).
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

  var TEXT_FIELDS = ["topic", "summary"];

  function relabelled(form, box) {
    return form.querySelector("select[name=category]").value !== box.dataset.modelCategory ||
      form.querySelector("select[name=urgency]").value !== box.dataset.modelUrgency;
  }

  function unchecked(form) {
    return TEXT_FIELDS.filter(function (name) {
      var field = form.querySelector("[name=" + name + "]");
      var edited = field.value.trim() !== (field.dataset.model || "").trim();
      return !edited && !form.querySelector("input[name=" + name + "_ok]").checked;
    });
  }

  function refresh(form, box, strict) {
    var needed = relabelled(form, box);
    box.hidden = !needed;
    box.classList.toggle("needed", needed);
    var missing = needed ? unchecked(form) : [];
    TEXT_FIELDS.forEach(function (name) {
      var field = form.querySelector("[name=" + name + "]");
      field.classList.toggle("unchecked", strict && missing.indexOf(name) >= 0);
    });
    return missing;
  }

  Array.prototype.forEach.call(document.querySelectorAll("form.correct"), function (form) {
    var box = form.querySelector(".recheck");
    if (!box) return;
    var ask = box.querySelector(".recheck-ask");
    box.hidden = true;
    form.addEventListener("change", function () { refresh(form, box, false); });
    form.addEventListener("input", function () { refresh(form, box, false); });
    form.addEventListener("submit", function (ev) {
      var button = ev.submitter;
      if (button && button.value === "confirm") return;
      var missing = refresh(form, box, true);
      if (!missing.length) return;
      ev.preventDefault();
      ask.setAttribute("role", "alert");
      ask.textContent = "Category or urgency changed: edit the " + missing.join(" and ") +
        ", or tick " + (missing.length > 1 ? "them" : "it") + " as still right, then save.";
      form.querySelector("[name=" + missing[0] + "]").focus();
    });
  });

  items.forEach(function (el, n) {
    el.addEventListener("focusin", function () { select(n, false); });
    el.addEventListener("click", function () { select(n, false); });
  });
  select(0, false);
  var flash = document.getElementById("flash");
  if (flash && window.history.replaceState) window.history.replaceState(null, "", "/review");
})();
