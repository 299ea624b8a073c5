// The escalation policy editor (templates/escalation/form.html): levels reordered by drag and drop (their
// handle) or by the Move up / Move down buttons (the keyboard's way), removed, and numbered as they stand. The
// form posts the rows in page order, so the order on screen is the order saved. Each level's actions are
// automation's sequencer (static/js/automation.js). Every change of the levels fires `levels:change` on the
// form, which the preview listens to. No build step: SortableJS is the vendored global `Sortable`.
(function () {
  if (window.metsEscalation) return;

  function each(nodes, fn) { Array.prototype.forEach.call(nodes, fn); }

  function say(text) {
    var status = document.getElementById("status");
    if (!status) return;
    status.textContent = "";
    window.setTimeout(function () { status.textContent = text; }, 50);
  }

  function renumber(list) {
    var rows = list.querySelectorAll(":scope > [data-level-row]");
    each(rows, function (row, index) {
      var n = String(index + 1);
      row.querySelector(".esc-level-number").textContent = n;
      row.querySelector(".lv-up").setAttribute("aria-label", "Move level " + n + " up");
      row.querySelector(".lv-down").setAttribute("aria-label", "Move level " + n + " down");
      row.querySelector(".lv-remove").setAttribute("aria-label", "Remove level " + n);
      row.querySelector(".lv-up").disabled = index === 0;
      row.querySelector(".lv-down").disabled = index === rows.length - 1;
    });
  }

  function changed(list) {
    renumber(list);
    list.dispatchEvent(new CustomEvent("levels:change", {bubbles: true}));
  }

  function setUp() {
    var list = document.getElementById("esc-levels");
    if (!list) return;
    if (!list.hasAttribute("data-sortable") && window.Sortable) {
      list.setAttribute("data-sortable", "");
      Sortable.create(list, {handle: ".lv-handle", draggable: "[data-level-row]", animation: 120,
                             onEnd: function (event) { if (event.oldIndex !== event.newIndex) changed(list); }});
    }
    renumber(list);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest(".lv-up, .lv-down, .lv-remove") : null;
    if (!button) return;
    var row = button.closest("[data-level-row]");
    var list = row && row.parentElement;
    if (!list || list.id !== "esc-levels") return;
    event.preventDefault();
    if (button.classList.contains("lv-remove")) {
      row.remove();
      changed(list);
      var add = document.querySelector(".esc-add-level");
      if (add) add.focus();
      say("Level removed");
      return;
    }
    var up = button.classList.contains("lv-up");
    var other = up ? row.previousElementSibling : row.nextElementSibling;
    if (!other) return;
    if (up) list.insertBefore(row, other); else list.insertBefore(other, row);
    changed(list);
    var again = row.querySelector(up ? ".lv-up" : ".lv-down");
    (again && !again.disabled ? again : button.closest(".esc-level-tools").querySelector("button:not([disabled])")).focus();
    say("Level moved to place " + row.querySelector(".esc-level-number").textContent);
  });

  // Another entity offers other people: draw each action row again with the new entity's choices.
  document.addEventListener("change", function (event) {
    if (event.target.name !== "entity_id" || !event.target.form || event.target.form.id !== "policy-form") return;
    each(document.querySelectorAll("#esc-levels .ac-type"), function (select) {
      if (select.value) htmx.trigger(select, "change");
    });
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    setUp();
    if (event.target && event.target.id === "esc-levels") changed(event.target);
  });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUp);
  else setUp();

  window.metsEscalation = {setUp: setUp, renumber: renumber};
})();
