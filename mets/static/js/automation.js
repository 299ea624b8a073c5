// Automation pages (templates/automation/): the action sequencer keeps one hidden `actions` JSON field
// in sync with its rows (order, type, shown parameters), hides parameters whose show_if does not hold,
// and lets rows be dragged; the rules list sends its new order when a row is dropped. No build step:
// SortableJS is the vendored global `Sortable`, htmx draws and redraws rows.
(function () {
  if (window.metsAutomation) return;

  function each(nodes, fn) { Array.prototype.forEach.call(nodes, fn); }

  function paramValues(row) {
    var values = {};
    each(row.querySelectorAll(".ac-param"), function (box) {
      if (box.getAttribute("data-kind") === "multi") return;
      var input = box.querySelector(".ac-value");
      if (input) values[box.getAttribute("data-param")] = input.value;
    });
    return values;
  }

  // The same rule as Param.shown on the server: every named parameter has one of the listed values.
  function applyShowIf(row) {
    var values = paramValues(row);
    each(row.querySelectorAll(".ac-param[data-show-if]"), function (box) {
      var rule = JSON.parse(box.getAttribute("data-show-if"));
      box.hidden = !Object.keys(rule).every(function (key) { return rule[key].indexOf(values[key] || "") !== -1; });
    });
  }

  function rowAction(row) {
    var action = {type: row.querySelector(".ac-type").value};
    each(row.querySelectorAll(".ac-param"), function (box) {
      if (box.hidden) return; // hidden parameters do not apply (the server drops them too)
      var name = box.getAttribute("data-param");
      var inputs = box.querySelectorAll(".ac-value");
      if (box.getAttribute("data-kind") === "multi") {
        var chosen = [];
        each(inputs, function (input) { if (input.checked) chosen.push(input.value); });
        if (chosen.length) action[name] = chosen;
      } else if (inputs.length && inputs[0].value.trim() !== "") {
        action[name] = inputs[0].value;
      }
    });
    return action;
  }

  function sync(sequencer) {
    var field = sequencer.querySelector(".ac-json");
    var list = sequencer.querySelector(".ac-rows");
    if (!field || !list) return;
    var actions = [];
    each(list.children, function (row) { if (row.hasAttribute("data-action-row")) actions.push(rowAction(row)); });
    var json = JSON.stringify(actions);
    if (field.value === json) return;
    field.value = json;
    // Test mode listens: hx-trigger="actions:change from:#automation-form".
    sequencer.dispatchEvent(new CustomEvent("actions:change", {bubbles: true, detail: {actions: json}}));
  }

  function setUp(root) {
    each((root || document).querySelectorAll(".ac-sequencer"), function (sequencer) {
      var list = sequencer.querySelector(".ac-rows");
      if (list && !list.hasAttribute("data-sortable") && window.Sortable) {
        list.setAttribute("data-sortable", "");
        Sortable.create(list, {handle: ".ac-handle", animation: 120,
                               onEnd: function () { sync(sequencer); }});
      }
      each(sequencer.querySelectorAll("[data-action-row]"), applyShowIf);
      sync(sequencer);
    });
    each(document.querySelectorAll("[data-sortable-rules]"), function (body) {
      if (body.hasAttribute("data-sortable") || !window.Sortable) return;
      body.setAttribute("data-sortable", "");
      Sortable.create(body, {handle: ".drag-handle", animation: 120, onEnd: function (event) {
        if (event.oldIndex === event.newIndex) return;
        var form = body.closest("section").querySelector("form.ac-reorder");
        each(form.querySelectorAll("input[name=ids]"), function (input) { input.remove(); });
        each(body.children, function (tr) {
          var input = document.createElement("input");
          input.type = "hidden"; input.name = "ids"; input.value = tr.getAttribute("data-id");
          form.appendChild(input);
        });
        htmx.trigger(form, "reorder");
      }});
    });
  }

  function sequencerOf(element) {
    return element && element.closest ? element.closest(".ac-sequencer") : null;
  }

  function onEdit(event) {
    var sequencer = sequencerOf(event.target);
    if (!sequencer || event.target.classList.contains("ac-json")) return;
    var row = event.target.closest("[data-action-row]");
    if (row) applyShowIf(row);
    sync(sequencer);
  }

  document.addEventListener("input", onEdit);
  document.addEventListener("change", onEdit);
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest(".ac-remove") : null;
    var sequencer = sequencerOf(button);
    if (!sequencer) return;
    event.preventDefault();
    button.closest("[data-action-row]").remove();
    sync(sequencer);
  });
  // Another entity offers other agents and SLA rules: draw each row again with the new entity's choices.
  document.addEventListener("change", function (event) {
    if (event.target.name !== "entity_id" || !event.target.form || event.target.form.id !== "automation-form") return;
    each(document.querySelectorAll("#ac-rows .ac-type"), function (select) {
      if (select.value) htmx.trigger(select, "change");
    });
  });
  // The form always saves the rows as they are on screen.
  document.addEventListener("submit", function (event) {
    var sequencer = event.target.querySelector ? event.target.querySelector(".ac-sequencer") : null;
    if (sequencer) sync(sequencer);
  }, true);
  document.addEventListener("htmx:afterSettle", function () { setUp(document); });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { setUp(document); });
  else setUp(document);

  window.metsAutomation = {sync: sync, setUp: setUp, action: rowAction};
})();
