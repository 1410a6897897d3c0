// Live updates: the server's change stream (/ui/events, SSE) says which credential got a new
// version; every element whose data-live-names lists it (or "*") refetches its fragment from
// data-live-src with htmx and swaps it in. No token is ever part of an event or a fragment.
(function () {
  "use strict";
  // A burst of rotations (a scheduler renewing hundreds) refetches each fragment once.
  var pending = new Set();
  var timer = null;
  function refresh(name) {
    document.querySelectorAll("[data-live-src]").forEach(function (el) {
      var names = (el.getAttribute("data-live-names") || "").split(",");
      if (names.indexOf("*") >= 0 || names.indexOf(name) >= 0) pending.add(el);
    });
    if (timer === null) timer = setTimeout(flush, 250);
  }
  function flush() {
    timer = null;
    var els = Array.from(pending);
    pending.clear();
    els.forEach(function (el) {
      if (window.htmx) {
        window.htmx.ajax("GET", el.getAttribute("data-live-src"), { target: el, swap: "innerHTML" });
      } else {
        fetch(el.getAttribute("data-live-src"), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.text() : null; })
          .then(function (html) { if (html !== null) el.innerHTML = html; });
      }
    });
  }
  function start() {
    var main = document.getElementById("main");
    var url = main && main.getAttribute("data-events");
    if (!url || !window.EventSource) return;
    var status = document.getElementById("live-status");
    var source = new EventSource(url);
    source.addEventListener("rotation", function (e) {
      var data = JSON.parse(e.data);
      if (status) status.textContent = data.name + " is now at version " + data.version;
      refresh(data.name);
    });
    source.addEventListener("ended", function () {
      source.close();
      if (status) status.textContent = "Your session has ended: reload to sign in again.";
    });
    document.documentElement.setAttribute("data-live", "connecting");
    source.addEventListener("open", function () {
      document.documentElement.setAttribute("data-live", "open");
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
