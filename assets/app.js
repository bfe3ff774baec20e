// hostler: the one nicety the pages get from JavaScript. A page whose <body> carries
// data-refresh="N" reloads every N seconds, but never while a form field is focused or
// being edited, and never in a background tab. Every page works without this file.
(function () {
  "use strict";
  var secs = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  if (!secs) return;
  var dirty = false;
  document.addEventListener("input", function () { dirty = true; });
  setInterval(function () {
    var a = document.activeElement;
    var typing = a && (a.tagName === "INPUT" || a.tagName === "TEXTAREA" || a.tagName === "SELECT");
    if (!dirty && !typing && document.visibilityState === "visible") location.reload();
  }, secs * 1000);
})();
