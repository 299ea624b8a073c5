// Tell the user when an htmx request fails instead of silently doing nothing.
document.addEventListener("htmx:responseError", function (event) {
  var status = event.detail.xhr.status;
  var text = status === 400 ? "This page is out of date. Reload it and try again."
           : status === 404 ? "That item is no longer available to you."
           : status === 413 ? "That is too large to send: shorten it or split it into several messages."
           : status === 429 ? "Too many requests: wait a few minutes and try again."
           : "Something went wrong (" + status + "). Please try again.";
  showNotice(text);
});
document.addEventListener("htmx:sendError", function () {
  showNotice("The server cannot be reached. Check your connection and try again.");
});

function showNotice(text) {
  var box = document.getElementById("notice");
  if (!box) {
    box = document.createElement("p");
    box.id = "notice";
    box.className = "flash error";
    box.setAttribute("role", "alert");
    document.querySelector("main").prepend(box);
  }
  box.textContent = text;
}

// Keep pushed URLs short and shareable: drop empty filter values from GET requests.
document.addEventListener("htmx:configRequest", function (event) {
  var data = event.detail.formData;
  if (event.detail.verb !== "get" || !data) return;
  Array.from(new Set(data.keys())).forEach(function (key) {
    if (data.getAll(key).every(function (value) { return value === ""; })) data.delete(key);
  });
});

// The Content-Security-Policy allows no inline handlers: pages mark elements with data attributes instead.
// <select data-autosubmit> sends its form on change; <input data-check-all="name"> ticks its form's "name" boxes; <form data-confirm="..."> asks before it is sent.
document.addEventListener("change", function (event) {
  var el = event.target;
  if (el.matches && el.matches("[data-autosubmit]") && el.form) el.form.requestSubmit();
  // <input type=checkbox data-check-all="ids"> ticks or clears every "ids" checkbox of its form.
  if (el.matches && el.matches("[data-check-all]") && el.form) {
    Array.from(el.form.elements).forEach(function (box) {
      if (box.name === el.dataset.checkAll && box.type === "checkbox") box.checked = el.checked;
    });
  }
});
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
});

// The open ticket page's poll (form#live, tickets/_poll.html). A ticket the agent can no longer see (404) stops it;
// its answers never replace a box the agent is typing in: that part is skipped and the next poll asks for it again.
document.addEventListener("htmx:responseError", function (event) {
  var elt = event.detail.elt;
  if (elt && elt.id === "live" && event.detail.xhr.status === 404) elt.remove();
});
var livePartSkipped = false;
document.addEventListener("htmx:oobBeforeSwap", function (event) {
  var target = event.detail.target, active = document.activeElement;
  if (!target || !active || !target.contains(active) || !active.matches("textarea, input:not([type=hidden])")) return;
  if (active.value !== active.defaultValue) {
    event.detail.shouldSwap = false;
    livePartSkipped = true;
  }
});
document.addEventListener("htmx:configRequest", function (event) {
  if (event.detail.elt.id !== "live" || !livePartSkipped) return;
  livePartSkipped = false;
  event.detail.formData.set("version", "-1");  // matches no version: the answer brings every part again
});
// A filter form marked data-url-state always shows what the URL says, and so what the table under it shows.
// htmx's history snapshot is the page's HTML, which keeps the options the server first marked `selected`, not
// what was chosen since: Back would show the earlier table under the first filters, and the next change would
// drop the filter. So each snapshot's form is set from the URL it is saved for, and a restored page (from
// htmx's snapshot or the browser's cache) from its own URL. A control the URL does not name shows its first
// choice (the server's default) or nothing.
function showUrlState(root, search) {
  var params = new URLSearchParams(search);
  root.querySelectorAll("form[data-url-state]").forEach(function (form) {
    Array.from(form.elements).forEach(function (el) {
      if (!el.name || el.type === "hidden" || el.type === "submit" || el.type === "button") return;
      var value = params.get(el.name);
      if (el.tagName === "SELECT") {
        var options = Array.from(el.options);
        var chosen = Math.max(0, options.findIndex(function (o) { return o.value === value; }));
        options.forEach(function (o, i) { o.selected = i === chosen; o.toggleAttribute("selected", i === chosen); });
      } else if (el.type === "checkbox" || el.type === "radio") {
        el.checked = params.getAll(el.name).indexOf(el.value) >= 0;
        el.toggleAttribute("checked", el.checked);
      } else {
        el.value = value || "";
        el.setAttribute("value", el.value);
      }
    });
  });
}
document.addEventListener("htmx:historyItemCreated", function (event) {
  var item = event.detail.item;
  var copy = document.createElement("template");
  copy.innerHTML = item.content;
  showUrlState(copy.content, new URL(item.url, location.href).search);
  item.content = copy.innerHTML;
});
// A link that swaps the list in (a view, a sort, a page) moves the URL without the form: follow it.
["htmx:historyRestore", "htmx:pushedIntoHistory", "htmx:replacedInHistory"].forEach(function (name) {
  document.addEventListener(name, function () { showUrlState(document, location.search); });
});
window.addEventListener("pageshow", function () { showUrlState(document, location.search); });

// Keyboard and screen-reader users keep their place across swaps. A swap that replaces the focused control would
// drop focus to <body> (the next Tab starts over at the top bar): the control of the same id in the new content
// takes it back, so arrow keys keep stepping through a redrawn select. Content a button adds (data-focus-new:
// "+ Condition", "+ Add action") gets the focus on its first control. What a swap says it did (an element with
// data-status, e.g. "Reply sent") is read out by the page's polite status region.
// Remembered per request (its xhr): other answers, such as the poll's, settle in between.
var focusBeforeSwap = new WeakMap();
document.addEventListener("htmx:beforeSwap", function (event) {
  var active = document.activeElement;
  if (active && active !== document.body) focusBeforeSwap.set(event.detail.xhr, {id: active.id, elt: active});
});
function firstControl(root) {
  return root && root.querySelector("input:not([type=hidden]), select, textarea, button, [tabindex]");
}
document.addEventListener("htmx:afterSettle", function (event) {
  var config = event.detail.requestConfig, trigger = config && config.elt, target = event.detail.target;
  // An outerHTML swap leaves `target` the old, detached element: its replacement has its id.
  if (target && target.id && !document.body.contains(target)) target = document.getElementById(target.id) || target;
  if (trigger && trigger.matches && trigger.matches("[data-focus-new]")) {
    var rows = document.querySelectorAll(trigger.dataset.focusNew);
    var control = firstControl(rows[rows.length - 1]);
    if (control) control.focus();
    announce(trigger.dataset.announce);
  } else {
    var before = focusBeforeSwap.get(event.detail.xhr);
    if (before && !document.body.contains(before.elt) && document.activeElement === document.body) {
      var again = before.id && document.getElementById(before.id);
      var invalid = target && target.querySelector && target.querySelector("[aria-invalid=true]");
      var next = invalid || again || firstControl(target);
      if (next) next.focus();
    }
  }
  var said = target && target.querySelector && (target.matches("[data-status]") ? target : target.querySelector("[data-status]"));
  if (said) announce(said.dataset.status);
});
function announce(text) {
  var region = document.getElementById("status");
  if (!region || !text) return;
  region.textContent = "";
  // A new text node after a frame: screen readers announce a change, also of the same words twice.
  window.requestAnimationFrame(function () { region.textContent = text; });
}
