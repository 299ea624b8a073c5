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
// <select data-autosubmit> sends its form on change; <form data-confirm="..."> asks before it is sent.
document.addEventListener("change", function (event) {
  var el = event.target;
  if (el.matches && el.matches("[data-autosubmit]") && el.form) el.form.requestSubmit();
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
