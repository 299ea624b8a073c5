// The condition builder (templates/rules/_macros.html): keeps each builder's hidden JSON field in
// sync with its rows and groups, and removes rows and groups. Rows and groups are added and
// redrawn by htmx; the server validates the JSON when the host form is saved.
(function () {
  if (window.metsRules) return; // the builder may be drawn (and this script loaded) more than once

  function numberOrText(text) {
    text = text.trim();
    if (text === "") return null;
    // Same rule as the server's parse: a finite number becomes a number, anything else stays text
    // so that validation can name it.
    return /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text) && isFinite(Number(text)) ? Number(text) : text;
  }

  function splitList(text) {
    return text.split(",").map(function (part) { return part.trim(); }).filter(Boolean);
  }

  function rowCondition(row) {
    var condition = {field: row.querySelector(".rb-field").value, op: row.querySelector(".rb-op").value};
    var inputs = Array.prototype.slice.call(row.querySelectorAll(".rb-value"));
    var first = inputs.length ? inputs[0].value : "";
    switch (row.getAttribute("data-rb-widget")) {
      case "none": break;
      case "number": condition.value = numberOrText(first); break;
      case "boolean": condition.value = first === "" ? null : first === "true"; break;
      case "select": condition.value = first === "" ? null : first; break;
      case "text-list": condition.value = splitList(first); break;
      case "number-list": condition.value = splitList(first).map(numberOrText); break;
      case "checks":
        condition.value = inputs.filter(function (box) { return box.checked; }).map(function (box) { return box.value; });
        break;
      default: condition.value = first.trim();
    }
    return condition;
  }

  function groupConditions(group) {
    var join = group.querySelector(":scope > .rb-group-head > .rb-join").value;
    var items = [];
    Array.prototype.forEach.call(group.querySelector(":scope > .rb-items").children, function (child) {
      if (child.hasAttribute("data-rb-row")) items.push(rowCondition(child));
      else if (child.hasAttribute("data-rb-group")) items.push(groupConditions(child));
    });
    var tree = {};
    tree[join] = items;
    return tree;
  }

  function sync(builder) {
    var field = builder.querySelector(":scope > .rb-json");
    var root = builder.querySelector(":scope > .rb-group");
    if (!field || !root) return;
    var json = JSON.stringify(groupConditions(root));
    if (field.value === json) return;
    field.value = json;
    // Hosts can listen (e.g. a live test: hx-trigger="rules:change from:closest form delay:400ms").
    builder.dispatchEvent(new CustomEvent("rules:change", {bubbles: true, detail: {conditions: json}}));
  }

  function syncAll() {
    Array.prototype.forEach.call(document.querySelectorAll(".rule-builder"), sync);
  }

  function builderOf(element) {
    return element && element.closest ? element.closest(".rule-builder") : null;
  }

  function onEdit(event) {
    var builder = builderOf(event.target);
    if (builder && !event.target.classList.contains("rb-json")) sync(builder);
  }

  document.addEventListener("input", onEdit);
  document.addEventListener("change", onEdit);
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-rb-remove]") : null;
    var builder = builderOf(button);
    if (!builder) return;
    event.preventDefault();
    var item = button.closest("[data-rb-row], [data-rb-group]");
    if (item) item.remove();
    sync(builder);
  });
  // A row or group added or redrawn by htmx.
  document.addEventListener("htmx:afterSettle", syncAll);

  window.metsRules = {sync: sync, syncAll: syncAll, conditions: groupConditions};
})();
