// Clicking a variable inserts it at the cursor of the source field last used, and the preview follows.
(function () {
  var last = document.getElementById("body_text");
  document.querySelectorAll("#mt-form .mt-source input, #mt-form .mt-source textarea").forEach(function (el) {
    el.addEventListener("focus", function () { last = el; });
  });
  document.querySelectorAll(".mt-var").forEach(function (button) {
    button.addEventListener("click", function () {
      var text = button.dataset.insert, start = last.selectionStart, end = last.selectionEnd;
      last.setRangeText(text, start, end, "end");
      last.focus();
      last.dispatchEvent(new Event("input", {bubbles: true}));
    });
  });
})();
