// Document page: scroll the paragraph named in the URL fragment into view and highlight it (and the quoted
// sentence the server marked, from ?hl=), on load and whenever the fragment changes; "Quay lại" goes back
// to the page the reader came from (the conversation) when there is one.
(function () {
  "use strict";
  var current = null;

  function targetFromHash() {
    var id = location.hash.slice(1);
    if (!id) return null;
    try { id = decodeURIComponent(id); } catch (e) { /* keep the raw id */ }
    var el = document.getElementById(id);
    return el && el.classList.contains("passage") ? el : null;
  }

  function highlight() {
    var el = targetFromHash();
    if (current && current !== el) current.classList.remove("is-highlighted");
    if (!el) return;
    current = el;
    el.classList.add("is-highlighted");
    var reduce = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    var mark = el.querySelector("mark.quoted");
    (mark || el).scrollIntoView({ block: "center", behavior: reduce ? "auto" : "smooth" });
    el.focus({ preventScroll: true });
  }

  var back = document.querySelector("[data-back]");
  if (back) {
    back.addEventListener("click", function (e) {
      var same = false;
      try { same = !!document.referrer && new URL(document.referrer).origin === location.origin; } catch (err) { same = false; }
      if (same && history.length > 1) { e.preventDefault(); history.back(); }
    });
  }

  window.addEventListener("hashchange", highlight);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", highlight);
  else highlight();
})();
