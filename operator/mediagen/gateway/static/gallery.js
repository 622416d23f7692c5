// mediagen gallery: refresh the live section while generations are in flight, show relative times.
// Elements with data-key and an unchanged data-sig are kept as they are, so images never reload or flicker.
(function () {
  "use strict";

  var FAST = 2000; // while anything is in flight
  var IDLE = 15000; // otherwise, to pick up new submissions
  var RETRY = 6000; // after an error

  function span(seconds) {
    if (seconds < 90) return "a minute";
    var m = Math.round(seconds / 60);
    if (m < 45) return m + " min";
    var h = Math.round(m / 60);
    if (h < 36) return h + " h";
    return Math.round(h / 24) + " days";
  }

  function relative(ms) {
    var s = Math.round((Date.now() - ms) / 1000);
    if (Math.abs(s) < 45) return "just now";
    return s > 0 ? span(s) + " ago" : "in " + span(-s);
  }

  function relativeTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var t = Date.parse(el.getAttribute("datetime"));
      if (isNaN(t)) return;
      if (!el.dataset.absolute) {
        el.dataset.absolute = el.textContent;
        el.title = el.textContent;
      }
      el.textContent = relative(t);
    });
  }

  function merge(live, markup) {
    var template = document.createElement("template");
    template.innerHTML = markup;
    var current = {};
    live.querySelectorAll("[data-key]").forEach(function (el) {
      current[el.dataset.key] = el;
    });
    template.content.querySelectorAll("[data-key]").forEach(function (el) {
      var old = current[el.dataset.key];
      if (old && old.dataset.sig === el.dataset.sig) el.replaceWith(old);
    });
    live.replaceChildren.apply(live, Array.prototype.slice.call(template.content.childNodes));
    relativeTimes(live);
  }

  function refresher(live) {
    var url = live.dataset.refresh;
    if (!url) return;
    function interval() {
      return live.querySelector("[data-inflight]") ? FAST : IDLE;
    }
    function tick() {
      if (document.hidden) {
        setTimeout(tick, RETRY);
        return;
      }
      fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) {
          if (response.redirected || response.status === 401) {
            window.location.reload();
            return null;
          }
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.text();
        })
        .then(function (text) {
          if (text !== null) merge(live, text);
          setTimeout(tick, interval());
        })
        .catch(function () {
          setTimeout(tick, RETRY);
        });
    }
    setTimeout(tick, interval());
  }

  // An expired presigned URL or a deleted object: show a placeholder instead of a broken-image icon.
  document.addEventListener(
    "error",
    function (event) {
      var el = event.target;
      if (el && el.tagName === "IMG" && el.parentElement) el.parentElement.classList.add("broken");
    },
    true
  );

  document.addEventListener("DOMContentLoaded", function () {
    relativeTimes(document);
    var live = document.getElementById("live");
    if (live) refresher(live);
  });
})();
