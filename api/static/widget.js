/*! Hỏi đáp Kết luận — embeddable chat widget. Plain ES2018, no dependencies, no build step.
 *
 *   <script src="https://host/widget.js" data-api="https://host" defer></script>
 *
 * Options (data- attributes on the script tag): data-api (default: where this script came from),
 * data-api-key, data-title, data-welcome, data-position ("bottom-right" | "bottom-left"), data-accent (a CSS
 * colour), data-lang ("vi" | "en"), data-suggestions ("question 1|question 2"), data-open ("true").
 *
 * Safety: text from the user or the server only ever reaches the page through textContent / attributes
 * set here; no string is ever parsed as HTML.
 */
(function () {
  "use strict";

  var CSS = /*__WIDGET_CSS__*/"";
  var SCRIPT = document.currentScript || document.querySelector('script[src*="widget.js"]');
  if (!SCRIPT || SCRIPT.dataset.klMounted) return;
  SCRIPT.dataset.klMounted = "1";

  // --- user-facing text ------------------------------------------------------------------------------
  // user-facing text and limits come from the server (prompts/widget.json, the service's settings), inlined
  // into this file when it is served; "{n}" in a text is filled by fmt()
  var SERVER = /*__WIDGET_CONFIG__*/{};
  var STRINGS = SERVER.strings || {};
  function fmt(text, values) {
    return String(text || "").replace(/\{(\w+)\}/g, function (m, k) { return k in values ? String(values[k]) : m; });
  }
  var DEFAULT_SUGGESTIONS = [
    "Kết luận 183-KL/TW giao Đảng ủy Chính phủ những nhiệm vụ gì?",
    "Hạn chót sắp xếp trạm y tế cấp xã là khi nào?",
    "Ai ký Kết luận 221-KL/TW?"
  ];
  var MAX_CHARS = SERVER.maxChars;
  var MAX_MESSAGES = 60;
  var STALL_MS = 90000;

  // --- options ---------------------------------------------------------------------------------------
  var data = SCRIPT.dataset;
  var lang = (data.lang || "vi").toLowerCase().slice(0, 2) === "en" ? "en" : "vi";
  var T = STRINGS[lang] || STRINGS.vi || {};
  function rateText(seconds) { return seconds ? fmt(T.rateLimited, { s: seconds }) : T.rateLimitedLater; }
  var scriptUrl = new URL(SCRIPT.src, location.href);
  var API = (function () {
    try { return new URL(data.api || scriptUrl.origin, location.href).href.replace(/\/+$/, ""); }
    catch (e) { return scriptUrl.origin; }
  })();
  var API_KEY = data.apiKey || "";
  var TITLE = data.title || T.title;
  var WELCOME = data.welcome || T.welcome;
  var POSITION = data.position === "bottom-left" ? "left" : "right";
  var ACCENT = data.accent && window.CSS && CSS_supports("color", data.accent) ? data.accent : "";
  var SUGGESTIONS = data.suggestions
    ? data.suggestions.split("|").map(function (s) { return s.trim(); }).filter(Boolean).slice(0, 5)
    : DEFAULT_SUGGESTIONS;
  var STORE_KEY = "ketluan-widget:" + API;

  // White or near-black text, whichever reads better on the chosen accent colour.
  function inkFor(colour) {
    var probe = document.createElement("i");
    probe.style.color = colour;
    document.documentElement.appendChild(probe);
    var rgb = (getComputedStyle(probe).color.match(/[\d.]+/g) || [0, 0, 0]).map(Number);
    probe.remove();
    var lum = [0, 1, 2].map(function (i) {
      var v = rgb[i] / 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    var L = 0.2126 * lum[0] + 0.7152 * lum[1] + 0.0722 * lum[2];
    return (L + 0.05) / 0.05 > 1.05 / (L + 0.05) ? "#1c1f23" : "#ffffff";
  }

  function CSS_supports(prop, value) {
    try { return window.CSS.supports(prop, value); } catch (e) { return false; }
  }

  // --- tiny DOM helpers (text only: strings become text nodes) ---------------------------------------
  var uid = 0;
  function nextId(prefix) { uid += 1; return "kl-" + prefix + "-" + uid; }

  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === "class") el.className = v;
        else if (k === "text") el.textContent = v;
        else if (k.slice(0, 2) === "on") el.addEventListener(k.slice(2), v);
        else el.setAttribute(k, v === true ? "" : String(v));
      });
    }
    for (var i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }
  function append(el, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(el, c); }); return; }
    el.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }

  var ICONS = {
    chat: ["M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12z"],
    close: ["M18 6 6 18", "M6 6l12 12"],
    plus: ["M12 5v14", "M5 12h14"],
    send: ["M22 2 11 13", "M22 2 15 22l-4-9-9-4 20-7z"],
    up: ["M7 10v11", "M15 6.5 14 10h5.5a2 2 0 0 1 2 2.3l-1.4 7A2 2 0 0 1 18.2 21H7V10l4-8a2.5 2.5 0 0 1 4 2.5z"],
    down: ["M17 14V3", "M9 17.5 10 14H4.5a2 2 0 0 1-2-2.3l1.4-7A2 2 0 0 1 5.8 3H17v11l-4 8a2.5 2.5 0 0 1-4-2.5z"],
    info: ["M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20z", "M12 16v-4", "M12 8h.01"],
    alert: ["M10.3 3.9 1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z", "M12 9v4", "M12 17h.01"],
    retry: ["M1 4v6h6", "M3.5 15a9 9 0 1 0 2.1-9.4L1 10"],
    copy: ["M9 9h11v11H9z", "M5 15H4V4h11v1"],
    share: ["M4 12v8h16v-8", "M12 3v12", "M7 8l5-5 5 5"],
    doc: ["M14 3H6v18h12V7z", "M14 3v4h4", "M9 13h6", "M9 17h6"]
  };
  function icon(name) {
    var NS = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    ICONS[name].forEach(function (d) {
      var p = document.createElementNS(NS, "path");
      p.setAttribute("d", d);
      svg.appendChild(p);
    });
    return svg;
  }

  // --- state, kept across reloads --------------------------------------------------------------------
  // messages: {role: "user", text} | {role: "bot", status: "done"|"error", answer, answered, citations,
  //            message_id, rating, error: {kind, text, retryAt}, question}
  function loadState() {
    try {
      var raw = window.localStorage.getItem(STORE_KEY);
      var s = raw ? JSON.parse(raw) : null;
      if (s && Array.isArray(s.messages)) return s;
    } catch (e) { /* storage off or corrupt: start fresh */ }
    return { conversation_id: null, messages: [], open: false };
  }
  function saveState() {
    try {
      state.messages = state.messages.slice(-MAX_MESSAGES);
      window.localStorage.setItem(STORE_KEY, JSON.stringify(state, function (k, v) { return k === "el" ? undefined : v; }));
    } catch (e) { /* private mode or full: the conversation just won't survive a reload */ }
  }
  var state = loadState();
  // An answer that was still streaming when the page went away cannot be resumed: offer a retry.
  state.messages.forEach(function (m) {
    if (m.role === "bot" && (m.status === "streaming" || m.status === "thinking")) {
      m.status = "error";
      m.error = { kind: "interrupted" };
    }
  });

  // --- mount -----------------------------------------------------------------------------------------
  var host = document.createElement("ketluan-chat");
  // Inline !important beats any host-page rule aimed at this element; the shadow root does the rest.
  host.style.cssText = "all: initial !important; display: block !important; position: fixed !important;" +
    " z-index: 2147483000 !important; inset: auto 0 0 auto !important; width: 0 !important; height: 0 !important;" +
    " overflow: visible !important; visibility: visible !important; opacity: 1 !important;";
  var shadow = host.attachShadow({ mode: "open" });
  try {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    shadow.adoptedStyleSheets = [sheet]; // not subject to the host page's style-src CSP
  } catch (e) {
    shadow.appendChild(h("style", { text: CSS }));
  }

  var root = h("div", { class: "root pos-" + POSITION, lang: lang });
  if (ACCENT) {
    root.style.setProperty("--accent", ACCENT);
    root.style.setProperty("--accent-ink", inkFor(ACCENT));
  }
  shadow.appendChild(root);

  var launcher = h("button", { type: "button", class: "launcher", "aria-label": T.launcherLabel,
    "aria-expanded": "false", "aria-controls": "kl-panel" }, icon("chat"), h("span", { text: T.launcher }));
  var titleEl = h("h2", { id: "kl-title", text: TITLE });
  var resetBtn = h("button", { type: "button", class: "icon-btn reset" }, icon("plus"), h("span", { class: "label", text: T.reset }));
  var closeBtn = h("button", { type: "button", class: "icon-btn close", "aria-label": T.close, title: T.close }, icon("close"));
  var log = h("div", { class: "log", role: "log", "aria-label": T.log, tabindex: "0" });
  var live = h("div", { class: "sr-only", role: "status", "aria-live": "polite" });
  var input = h("textarea", { id: "kl-input", rows: "1", maxlength: String(MAX_CHARS), placeholder: T.placeholder,
    autocomplete: "off", enterkeyhint: "send" });
  var sendBtn = h("button", { type: "submit", class: "send", "aria-label": T.send, title: T.send }, icon("send"));
  var form = h("form", { class: "composer", novalidate: true },
    h("label", { class: "sr-only", for: "kl-input", text: T.inputLabel }), input, sendBtn);
  var panel = h("section", { class: "panel", id: "kl-panel", role: "dialog", "aria-modal": "false",
    "aria-labelledby": "kl-title", hidden: true },
    h("div", { class: "head" }, titleEl, resetBtn, closeBtn),
    log, live, form, h("p", { class: "foot", text: T.disclaimer }));
  root.appendChild(launcher);
  root.appendChild(panel);

  function mount() {
    document.body.appendChild(host);
    renderAll();
    var shared = sharedQuestion();
    if (shared) {
      openPanel(false);
      if (!busy) ask(shared);
    } else if (data.open === "true" || (state.open && !(phone && phone.matches))) {
      // on a phone the open panel covers the whole page: a newly loaded page shows itself first
      openPanel(false);
    }
  }

  // A shared link (…#hoi=question) opens the widget and asks that question once.
  function sharedQuestion() {
    var m = /^#hoi=(.+)$/.exec(location.hash || "");
    if (!m) return "";
    var q = "";
    try { q = decodeURIComponent(m[1]).trim().slice(0, MAX_CHARS); } catch (e) { q = ""; }
    try { history.replaceState(null, "", location.pathname + location.search); } catch (e) { /* sandboxed */ }
    return q;
  }

  // --- open / close ------------------------------------------------------------------------------------
  function openPanel(focus) {
    panel.hidden = false;
    root.classList.add("is-open");
    launcher.setAttribute("aria-expanded", "true");
    state.open = true;
    saveState();
    fitViewport();
    showLatest();
    // on a phone with a conversation already there, the on-screen keyboard would hide it: focus the log
    if (focus !== false) (phone && phone.matches && state.messages.length ? log : input).focus();
  }
  function closePanel() {
    closeSheet(false);
    panel.hidden = true;
    root.classList.remove("is-open");
    launcher.setAttribute("aria-expanded", "false");
    state.open = false;
    saveState();
    launcher.focus();
  }
  launcher.addEventListener("click", function () { openPanel(true); });
  closeBtn.addEventListener("click", closePanel);
  resetBtn.addEventListener("click", function () {
    generation += 1; // whatever is still streaming belongs to the old conversation: ignore it
    if (current) { var c = current; current = null; c.abort(); }
    state = { conversation_id: null, messages: [], open: true };
    saveState();
    setBusy(false);
    renderAll();
    input.value = "";
    input.focus();
  });
  // On a phone the open panel covers the whole page: it is then a modal dialog, and Tab cycles inside it
  // instead of walking into the hidden page behind.
  var phone = window.matchMedia ? window.matchMedia("(max-width: 520px)") : null;
  function syncModal() { panel.setAttribute("aria-modal", phone && phone.matches ? "true" : "false"); }
  if (phone) {
    if (phone.addEventListener) phone.addEventListener("change", syncModal);
    else if (phone.addListener) phone.addListener(syncModal);
  }
  syncModal();
  // On a phone the on-screen keyboard shrinks the visual viewport, not the layout one: the panel follows the
  // visual viewport so the composer stays above the keyboard and the answer above it.
  function fitViewport() {
    var vv = window.visualViewport;
    if (!vv || !(phone && phone.matches) || panel.hidden) { panel.style.height = ""; panel.style.top = ""; return; }
    panel.style.height = Math.round(vv.height) + "px";
    panel.style.top = Math.round(vv.offsetTop) + "px";
  }
  if (window.visualViewport) {
    window.visualViewport.addEventListener("resize", fitViewport);
    window.visualViewport.addEventListener("scroll", fitViewport);
  }
  function focusables() {
    var scope = sheetBox.hidden ? panel : sheetBox; // an open source sheet keeps the focus to itself
    return Array.prototype.filter.call(
      scope.querySelectorAll("button, a[href], textarea, input, [tabindex]:not([tabindex='-1'])"),
      function (el) { return !el.disabled && !el.hidden && el.getClientRects().length > 0; });
  }
  panel.addEventListener("keydown", function (e) {
    if (e.key !== "Tab" || !(phone && phone.matches || !sheetBox.hidden)) return;
    var items = focusables();
    if (!items.length) return;
    var first = items[0], last = items[items.length - 1], active = shadow.activeElement;
    var scope = sheetBox.hidden ? panel : sheetBox;
    if (e.shiftKey && (active === first || !scope.contains(active))) { last.focus(); e.preventDefault(); }
    else if (!e.shiftKey && (active === last || !scope.contains(active))) { first.focus(); e.preventDefault(); }
  });
  panel.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") return;
    if (!sheetBox.hidden) closeSheet(true);
    else closePanel();
    e.preventDefault();
    e.stopPropagation();
  });

  // --- composing -------------------------------------------------------------------------------------
  function autosize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 2, 140) + "px";
  }
  input.addEventListener("input", autosize);
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    }
  });
  form.addEventListener("submit", function (e) { e.preventDefault(); submit(); });

  function submit() {
    var text = input.value.trim();
    if (!text || busy) return;
    if (text.length > MAX_CHARS) { announce(fmt(T.tooLong, { max: MAX_CHARS })); return; }
    input.value = "";
    autosize();
    ask(text);
  }

  // --- rendering ---------------------------------------------------------------------------------------
  function renderAll() {
    closeSheet(false);
    log.textContent = "";
    log.appendChild(h("div", { class: "msg bot welcome" }, h("p", { text: WELCOME })));
    if (!state.messages.length) log.appendChild(renderSuggestions());
    state.messages.forEach(function (m) { log.appendChild(renderMessage(m)); });
    showLatest();
  }

  function renderSuggestions() {
    var box = h("div", { class: "suggestions", role: "group", "aria-label": T.suggestionsTitle },
      h("p", { class: "suggestions-title", text: T.suggestionsTitle }));
    SUGGESTIONS.forEach(function (q) {
      box.appendChild(h("button", { type: "button", class: "suggestion", text: q,
        onclick: function () { if (!busy) ask(q); } }));
    });
    return box;
  }

  function renderMessage(m) {
    if (m.role === "user") {
      var u = h("div", { class: "msg user" }, h("span", { class: "sr-only", text: T.you + " " }), m.text);
      m.el = u;
      return u;
    }
    var el = h("div", { class: "msg bot" });
    m.el = el;
    fillBot(m);
    return el;
  }

  function isLastBot(m) {
    for (var i = state.messages.length - 1; i >= 0; i--) if (state.messages[i].role === "bot") return state.messages[i] === m;
    return false;
  }

  function fillBot(m) {
    var el = m.el;
    if (!el) return;
    if (sheet.chip && el.contains(sheet.chip)) closeSheet(false);
    var open = m.quotesOpen === true;
    el.textContent = "";
    el.className = "msg bot";
    el.removeAttribute("aria-busy");
    if (m.status === "thinking") {
      el.setAttribute("aria-busy", "true");
      el.appendChild(h("div", { class: "thinking" },
        h("span", { class: "dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")), h("span", { text: T.thinking })));
      return;
    }
    if (m.status === "error") { fillError(m); return; }
    var streaming = m.status === "streaming";
    if (streaming) el.setAttribute("aria-busy", "true");
    var cites = citationMap(m.citations);
    if (m.status === "done" && m.answered === false) {
      el.classList.add("refused");
      el.appendChild(h("div", { class: "notice-title" }, icon("info"), h("span", { text: T.refusedTitle })));
    }
    el.appendChild(h("span", { class: "sr-only", text: T.bot + " " }));
    var body = renderText(m.answer || "", cites, !streaming, m);
    if (open) body.classList.add("quotes-open");
    if (streaming) {
      var last = body.lastElementChild;
      if (last && (last.tagName === "UL" || last.tagName === "OL")) last = last.lastElementChild;
      (last || body).classList.add("cursor");
    }
    el.appendChild(body);
    var quotes = body.querySelectorAll(".quote.long").length;
    if (quotes && !streaming) {
      var toggle = h("button", { type: "button", class: "quotes-toggle", "aria-expanded": open ? "true" : "false",
        "aria-controls": body.id }, h("span", { text: open ? T.hideQuotes : fmt(T.showQuotes, { n: quotes }) }));
      toggle.addEventListener("click", function () {
        m.quotesOpen = !m.quotesOpen;
        body.classList.toggle("quotes-open", m.quotesOpen);
        toggle.setAttribute("aria-expanded", m.quotesOpen ? "true" : "false");
        toggle.firstChild.textContent = m.quotesOpen ? T.hideQuotes : fmt(T.showQuotes, { n: quotes });
        saveState();
      });
      el.appendChild(toggle);
    }
    if (m.status !== "done") return;
    var used = (m.citations || []).slice().sort(function (a, b) { return a.n - b.n; });
    if (used.length) el.appendChild(renderSources(used, m));
    if (m.message_id) el.appendChild(renderActions(m));
    var next = (m.suggestions || []).filter(function (q) { return typeof q === "string" && q.trim(); }).slice(0, 3);
    if (next.length && isLastBot(m)) el.appendChild(renderFollowUps(next));
  }

  function renderFollowUps(list) {
    var box = h("div", { class: "followups", role: "group", "aria-label": T.followUps },
      h("p", { class: "suggestions-title", text: T.followUps }));
    list.forEach(function (q) {
      box.appendChild(h("button", { type: "button", class: "suggestion", text: q, disabled: busy,
        onclick: function () { if (!busy) ask(q); } }));
    });
    return box;
  }

  function fillError(m) {
    var el = m.el;
    var kind = (m.error && m.error.kind) || "server";
    var title = kind === "rate" ? T.rateTitle : kind === "starting" ? T.startingTitle
      : kind === "offline" ? T.offlineTitle : T.failedTitle;
    var text = kind === "rate" ? rateText(m.error.seconds)
      : kind === "starting" ? T.starting
      : kind === "offline" ? T.offline
      : kind === "interrupted" ? T.interrupted
      : kind === "unauthorized" ? T.unauthorized
      : (m.error && m.error.text) || T.serverError;
    el.classList.add(kind === "rate" || kind === "starting" ? "refused" : "error");
    el.setAttribute("role", "alert");
    if (m.answer) el.appendChild(renderText(m.answer, citationMap(m.citations), true, m));
    el.appendChild(h("div", { class: "notice-title" }, icon("alert"), h("span", { text: title })));
    el.appendChild(h("p", { text: text }));
    if (kind === "unauthorized" || !m.question) return;
    var retry = h("button", { type: "button", class: "retry" }, icon("retry"), h("span", { text: T.retry }));
    retry.addEventListener("click", function () {
      if (busy) return;
      var i = state.messages.indexOf(m);
      var last = i === state.messages.length - 1;
      if (i >= 0) state.messages.splice(i, 1);
      if (!last) m.el.remove();
      ask(m.question, last ? m : null);
    });
    el.appendChild(retry);
    var wait = m.error && m.error.retryAt ? Math.ceil((m.error.retryAt - Date.now()) / 1000) : 0;
    if (wait > 0) countdown(retry, m.error.retryAt);
  }

  function countdown(button, until) {
    var label = button.querySelector("span");
    button.disabled = true;
    button.dataset.wait = "1";
    (function tick() {
      var left = Math.ceil((until - Date.now()) / 1000);
      if (left <= 0 || !button.isConnected) {
        delete button.dataset.wait;
        button.disabled = busy;
        label.textContent = T.retry;
        return;
      }
      label.textContent = fmt(T.retryIn, { s: left });
      setTimeout(tick, 1000);
    })();
  }

  function citationMap(list) {
    var map = {};
    (list || []).forEach(function (c) { if (c && typeof c.n === "number") map[c.n] = c; });
    return map;
  }

  // Answer text → a lead (the direct first sentence), then paragraphs and lists; "[n]" → citation chips;
  // "**x**" → bold; a long “quote” → its first words, the rest shown by "Xem trích dẫn".
  var BULLET = /^\s*[-*•]\s+/;
  var NUMBERED = /^\s*(\d{1,3})[.)]\s+/;
  var QUOTE_SHORT = 72;
  function renderText(text, cites, final, m) {
    var frag = h("div", { class: "answer", id: nextId("answer") });
    var lines = String(text).replace(/\r\n?/g, "\n").split("\n");
    var para = null, list = null, lead = true;
    lines.forEach(function (line) {
      if (!line.trim()) { para = null; list = null; return; }
      var b = BULLET.exec(line), n = b ? null : NUMBERED.exec(line);
      if (b || n) {
        lead = false;
        var type = b ? "UL" : "OL";
        if (!list || list.tagName !== type) {
          list = h(type.toLowerCase());
          if (n && n[1] !== "1") list.setAttribute("start", n[1]);
          frag.appendChild(list);
        }
        para = null;
        list.appendChild(inline(h("li"), line.slice((b || n)[0].length), cites, final, m));
        return;
      }
      list = null;
      if (lead) { // the answer's first line is its direct answer: always in full, never behind a toggle
        frag.appendChild(inline(h("p", { class: "lead" }), line, cites, final, m, true));
        lead = false;
        return;
      }
      if (para) para.appendChild(h("br"));
      else { para = h("p"); frag.appendChild(para); }
      inline(para, line, cites, final, m);
    });
    return frag;
  }

  var INLINE = /\[(\d{1,3})\]|\*\*([^*\n]+)\*\*|“([^”\n]+)”/g;
  function inline(el, text, cites, final, m, keepQuotes) {
    var last = 0, match;
    var re = new RegExp(INLINE.source, "g");
    while ((match = re.exec(text))) {
      if (match.index > last) el.appendChild(document.createTextNode(text.slice(last, match.index)));
      if (match[1]) {
        var n = Number(match[1]);
        // Keep the chip on the same line as the punctuation right after it.
        var tail = /^[.,;:!?)\]…”"'’]+/.exec(text.slice(re.lastIndex));
        if (cites[n] && tail) {
          el.appendChild(h("span", { class: "nowrap" }, chip(cites[n], m), tail[0]));
          re.lastIndex += tail[0].length;
        } else if (cites[n]) el.appendChild(chip(cites[n], m));
        else if (!final) el.appendChild(h("span", { class: "chip pending", "aria-hidden": "true", text: String(n) }));
        // final and no such citation: the marker is dropped, never shown (API.md)
      } else if (match[2]) {
        el.appendChild(h("strong", { text: match[2] }));
      } else {
        el.appendChild(quote(match[3], keepQuotes));
      }
      last = re.lastIndex;
    }
    if (last < text.length) el.appendChild(document.createTextNode(text.slice(last)));
    return el;
  }

  // The quotation marks stay text (copy, screen readers); a long quote keeps its first words in view.
  function quote(text, keep) {
    if (keep || text.length <= QUOTE_SHORT) return h("span", { class: "quote", text: "“" + text + "”" });
    var cut = text.slice(0, QUOTE_SHORT).replace(/[\s,;:]+\S*$/, "");
    return h("span", { class: "quote long" }, "“", h("span", { class: "q-short", text: cut + " …" }),
      h("span", { class: "q-full", text: text }), "”");
  }

  function passageUrl(c, span) {
    var fallback = API + "/documents/" + encodeURIComponent(c.document_id || "") + "#" + encodeURIComponent(c.passage_id || "");
    try {
      var u = new URL(c.url || fallback, API + "/");
      if (u.protocol !== "http:" && u.protocol !== "https:") return fallback;
      if (span && c.source && typeof c.source.start === "number") {
        u.searchParams.set("hl", (c.source.start + span[0]) + "-" + (c.source.start + span[1]));
      }
      return u.href;
    } catch (e) { return fallback; }
  }

  // Where, in citation c's paragraph, the answer quotes it: [start, end) of the quoted sentence, or null.
  function quotedSpan(c, m) {
    var text = String(c.text || "");
    var lines = String((m && m.answer) || "").split("\n");
    var marker = "[" + c.n + "]";
    for (var i = 0; i < lines.length; i++) {
      if (lines[i].indexOf(marker) < 0) continue;
      var re = /“([^”\n]+)”/g, q;
      while ((q = re.exec(lines[i]))) {
        var cut = q[1].replace(/\s*…\s*$/, "");
        var truncated = cut.length < q[1].length;
        var at = text.indexOf(cut);
        if (at < 0 || !cut) continue;
        var end = at + cut.length;
        if (truncated) { // the answer shortened the clause: mark it to the end of its sentence
          var stop = /[.;!?](\s|$)/.exec(text.slice(end));
          end = stop ? end + stop.index + 1 : text.length;
        }
        return [at, end];
      }
    }
    return null;
  }

  function chip(c, m) {
    var a = h("a", { class: "chip", href: passageUrl(c, quotedSpan(c, m)), "aria-haspopup": "dialog",
      "aria-label": T.source + " " + c.n + ": " + (c.label || ""), "data-n": String(c.n), text: String(c.n) });
    a._kl = { citation: c, message: m };
    return a;
  }

  function renderSources(list, m) {
    var ol = h("ol");
    list.forEach(function (c) {
      var a = h("a", { class: "src", href: passageUrl(c, quotedSpan(c, m)), "aria-haspopup": "dialog" },
        h("span", { class: "chip", "aria-hidden": "true", text: String(c.n) }),
        h("span", { class: "src-label", text: c.label || c.document_title || "" }));
      a._kl = { citation: c, message: m };
      ol.appendChild(h("li", null, a));
    });
    return h("div", { class: "sources" }, h("p", { class: "sources-title", text: T.sources }), ol);
  }

  function plainAnswer(m) {
    var out = String(m.answer || "").replace(/\s*\[(\d{1,3})\]/g, function (all, n) {
      return citationMap(m.citations)[Number(n)] ? " [" + n + "]" : "";
    });
    var used = (m.citations || []).slice().sort(function (a, b) { return a.n - b.n; });
    if (used.length) {
      out += "\n\n" + T.sources + ":\n" + used.map(function (c) { return "[" + c.n + "] " + (c.label || "") + " — " + passageUrl(c); }).join("\n");
    }
    return out;
  }

  function shareUrl(question) {
    var u = new URL(location.href);
    u.hash = "hoi=" + encodeURIComponent(question);
    return u.href;
  }

  function copyText(text) {
    if (navigator.clipboard && navigator.clipboard.writeText) {
      return navigator.clipboard.writeText(text).catch(function () { return legacyCopy(text); });
    }
    return legacyCopy(text);
  }
  function legacyCopy(text) {
    var area = h("textarea", { class: "sr-only", "aria-hidden": "true" });
    area.value = text;
    shadow.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    area.remove();
    return ok ? Promise.resolve() : Promise.reject(new Error("copy"));
  }

  function renderActions(m) {
    var status = h("span", { class: "fb-thanks", role: "status" });
    var up = h("button", { type: "button", class: "fb up", "aria-label": T.helpful, title: T.helpful,
      "aria-pressed": m.rating === "up" ? "true" : "false" }, icon("up"));
    var down = h("button", { type: "button", class: "fb down", "aria-label": T.notHelpful, title: T.notHelpful,
      "aria-pressed": m.rating === "down" ? "true" : "false" }, icon("down"));
    var copy = h("button", { type: "button", class: "fb copy", "aria-label": T.copy, title: T.copy }, icon("copy"));
    var share = h("button", { type: "button", class: "fb share", "aria-label": T.share, title: T.share }, icon("share"));
    function rate(rating) {
      if (m.rating === rating) return;
      var before = m.rating;
      m.rating = rating;
      up.setAttribute("aria-pressed", String(rating === "up"));
      down.setAttribute("aria-pressed", String(rating === "down"));
      saveState();
      request("/v1/feedback", { conversation_id: m.conversation_id || state.conversation_id, message_id: m.message_id, rating: rating })
        .then(function (res) {
          if (!res.ok) throw new Error("HTTP " + res.status);
          status.textContent = T.thanks;
        })
        .catch(function () {
          m.rating = before;
          up.setAttribute("aria-pressed", String(before === "up"));
          down.setAttribute("aria-pressed", String(before === "down"));
          saveState();
          status.textContent = T.feedbackFailed;
        });
    }
    up.addEventListener("click", function () { rate("up"); });
    down.addEventListener("click", function () { rate("down"); });
    copy.addEventListener("click", function () {
      copyText(plainAnswer(m)).then(function () { status.textContent = T.copied; },
        function () { status.textContent = T.copyFailed; });
    });
    share.addEventListener("click", function () {
      var url = shareUrl(m.question || "");
      if (navigator.share && (phone && phone.matches)) {
        navigator.share({ title: TITLE, text: m.question || "", url: url }).catch(function () { /* dismissed */ });
        return;
      }
      copyText(url).then(function () { status.textContent = T.shared; },
        function () { status.textContent = T.copyFailed; });
    });
    return h("div", { class: "actions" }, up, down, copy, share, status);
  }

  // The start of the newest answer (with the end of the question above it) at the top of the log, so a
  // reader lands on the answer's first line, not on the source list below it.
  // A new answer is short at first: a spacer below it lets the log scroll its start to the top anyway, and
  // shrinks as the answer grows into it, so nothing jumps while it streams.
  var spacer = h("div", { class: "spacer", "aria-hidden": "true" });
  var anchor = { el: null, offset: 0 };
  function addToLog(node) { log.insertBefore(node, spacer.parentNode === log ? spacer : null); }
  function fitSpacer() {
    if (!anchor.el || !anchor.el.isConnected) { spacer.style.height = "0px"; return; }
    if (spacer.parentNode !== log || log.lastChild !== spacer) log.appendChild(spacer);
    spacer.style.height = "0px";
    var below = log.scrollHeight - (anchor.el.offsetTop - log.offsetTop) + anchor.offset;
    spacer.style.height = Math.max(0, log.clientHeight - below) + "px";
  }
  function showAnswer(m) {
    if (!m || !m.el || !m.el.isConnected) return;
    var el = m.el, offset = 12;
    var i = state.messages.indexOf(m);
    var q = i > 0 ? state.messages[i - 1] : null;
    if (q && q.role === "user" && q.el && q.el.isConnected) {
      // the question above stays in view when it is short; a long one shows only its end
      if (m.el.offsetTop - q.el.offsetTop < log.clientHeight / 3) el = q.el;
      else offset = 60;
    }
    anchor = { el: el, offset: offset };
    fitSpacer();
    log.scrollTop = Math.max(0, el.offsetTop - log.offsetTop - offset);
  }
  function showLatest() {
    for (var i = state.messages.length - 1; i >= 0; i--) {
      if (state.messages[i].role === "bot") { showAnswer(state.messages[i]); return; }
    }
    log.scrollTop = 0;
  }
  function announce(text) { live.textContent = ""; setTimeout(function () { live.textContent = text; }, 50); }

  // --- the source sheet: a citation opens its paragraph inside the panel -----------------------------------
  var sheetTitle = h("h3", { class: "sheet-title", id: "kl-sheet-title" });
  var sheetMeta = h("p", { class: "sheet-meta" });
  var sheetText = h("p", { class: "sheet-text" });
  var sheetOpen = h("a", { class: "sheet-open" }, icon("doc"), h("span", { text: T.openDocument }));
  var sheetClose = h("button", { type: "button", class: "icon-btn sheet-close", "aria-label": T.closeSource, title: T.closeSource }, icon("close"));
  var sheetBox = h("div", { class: "sheet", role: "dialog", "aria-modal": "true", "aria-labelledby": "kl-sheet-title", hidden: true },
    h("div", { class: "sheet-head" }, sheetTitle, sheetClose),
    h("div", { class: "sheet-body", tabindex: "0", "aria-label": T.source }, sheetMeta, sheetText), sheetOpen);
  var sheetScrim = h("div", { class: "scrim", hidden: true });
  panel.appendChild(sheetScrim);
  panel.appendChild(sheetBox);
  var sheet = { chip: null };

  function vnDate(iso) {
    var d = /^(\d{4})-(\d{2})-(\d{2})/.exec(iso || "");
    return d ? d[3] + "/" + d[2] + "/" + d[1] : "";
  }

  function openSheet(a) {
    var info = a._kl;
    if (!info) return;
    var c = info.citation;
    var text = String(c.text || "");
    var span = quotedSpan(c, info.message);
    sheet.chip = a;
    sheetTitle.textContent = c.label || c.document_title || "";
    sheetMeta.textContent = "";
    if (c.issued) sheetMeta.appendChild(document.createTextNode(T.issued + ": " + vnDate(c.issued)));
    if (c.document_title) {
      if (c.issued) sheetMeta.appendChild(h("br"));
      sheetMeta.appendChild(document.createTextNode(c.document_title));
    }
    sheetText.textContent = "";
    if (span) {
      sheetText.appendChild(document.createTextNode(text.slice(0, span[0])));
      sheetText.appendChild(h("mark", { "aria-label": T.quoted, text: text.slice(span[0], span[1]) }));
      sheetText.appendChild(document.createTextNode(text.slice(span[1])));
    } else sheetText.textContent = text;
    var href = passageUrl(c, span);
    sheetOpen.setAttribute("href", href);
    var foreign = false;
    try { foreign = new URL(href).origin !== location.origin; } catch (e) { foreign = true; }
    if (foreign) { sheetOpen.setAttribute("target", "_blank"); sheetOpen.setAttribute("rel", "noopener"); }
    else { sheetOpen.removeAttribute("target"); sheetOpen.removeAttribute("rel"); }
    sheetBox.hidden = false;
    sheetScrim.hidden = false;
    sheetBox.querySelector(".sheet-body").scrollTop = 0;
    sheetClose.focus();
    var mark = sheetText.querySelector("mark");
    if (mark && mark.scrollIntoView) mark.scrollIntoView({ block: "nearest" });
  }
  function closeSheet(refocus) {
    if (sheetBox.hidden) return;
    sheetBox.hidden = true;
    sheetScrim.hidden = true;
    var a = sheet.chip;
    sheet.chip = null;
    if (refocus !== false && a && a.isConnected) a.focus();
  }
  sheetClose.addEventListener("click", function () { closeSheet(true); });
  sheetScrim.addEventListener("click", function () { closeSheet(true); });
  sheetOpen.addEventListener("click", function (e) {
    // leaving for the document in this tab: the widget there starts closed, its launcher leads back here
    var newTab = sheetOpen.getAttribute("target") || e.ctrlKey || e.metaKey || e.shiftKey || e.button;
    if (!newTab) { state.open = false; saveState(); }
  });
  function sourceLink(e) {
    var t = e.target;
    var a = t && t.closest ? t.closest("a.chip, a.src") : null;
    return a && a._kl ? a : null;
  }
  log.addEventListener("click", function (e) {
    var a = sourceLink(e);
    if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button) return; // a new tab when asked for one
    e.preventDefault();
    openSheet(a);
  });

  // --- talking to the server ---------------------------------------------------------------------------
  var busy = false;
  var current = null;
  var generation = 0;

  function headers(extra) {
    var out = { "Content-Type": "application/json" };
    if (API_KEY) out.Authorization = "Bearer " + API_KEY;
    Object.keys(extra || {}).forEach(function (k) { out[k] = extra[k]; });
    return out;
  }
  function request(path, body, extra, signal) {
    return fetch(API + path, { method: "POST", headers: headers(extra), body: JSON.stringify(body),
      mode: "cors", credentials: "omit", cache: "no-store", signal: signal });
  }

  function setBusy(on) {
    busy = on;
    sendBtn.disabled = on;
    log.querySelectorAll(".suggestion, .retry").forEach(function (b) { if (!b.dataset.wait) b.disabled = on; });
  }

  function ask(question, replacing) {
    var suggestions = log.querySelector(".suggestions");
    if (suggestions) suggestions.remove();
    if (!replacing) {
      var um = { role: "user", text: question };
      state.messages.push(um);
      addToLog(renderMessage(um));
    }
    var m = { role: "bot", status: "thinking", question: question, answer: "", citations: [] };
    if (replacing && replacing.el) {
      m.el = replacing.el;
      m.el.removeAttribute("role");
      state.messages.push(m);
      fillBot(m);
    } else {
      state.messages.push(m);
      addToLog(renderMessage(m));
    }
    // follow-up questions belong to the answer before: they go once a new question is asked
    log.querySelectorAll(".followups").forEach(function (f) { f.remove(); });
    showAnswer(m);
    announce(T.thinking);
    saveState();
    setBusy(true);
    var gen = generation;
    stream(m, function () { return gen !== generation; }).then(function () {
      if (gen !== generation) return;
      setBusy(false);
      saveState();
    });
  }

  function fail(m, error) {
    m.status = "error";
    m.error = error;
    fillBot(m);
    announce((error.kind === "offline" ? T.offline : error.kind === "rate" ? rateText(error.seconds) : error.kind === "starting" ? T.starting : error.text || T.serverError));
    showAnswer(m);
  }

  async function errorText(res) {
    try {
      var body = await res.json();
      return body && body.error && typeof body.error.message === "string" ? body.error.message : "";
    } catch (e) { return ""; }
  }

  async function stream(m, stale) {
    var controller = new AbortController();
    current = controller;
    var stall = null;
    function armStall() { clearTimeout(stall); stall = setTimeout(function () { controller.abort(); }, STALL_MS); }
    armStall();
    var res;
    try {
      res = await request("/v1/chat/stream", { message: m.question, conversation_id: state.conversation_id },
        { Accept: "text/event-stream" }, controller.signal);
    } catch (e) {
      clearTimeout(stall);
      if (!stale()) fail(m, { kind: "offline" });
      return;
    }
    if (stale()) return;
    if (!res.ok) {
      clearTimeout(stall);
      var text = await errorText(res);
      if (res.status === 429) {
        var ra = parseRetryAfter(res.headers.get("Retry-After")) || secondsIn(text);
        fail(m, { kind: "rate", seconds: ra, retryAt: ra ? Date.now() + ra * 1000 : 0 });
      } else if (res.status === 503) fail(m, { kind: "starting" });
      else if (res.status === 401 || res.status === 403) fail(m, { kind: "unauthorized" });
      else fail(m, { kind: res.status >= 500 ? "server" : "client", text: text || T.serverError });
      return;
    }
    var done = false;
    var pending = false;
    function paint() {
      pending = false;
      // the reader stays where the answer starts while it streams in below, unless they scrolled away
      var keep = log.scrollTop;
      fillBot(m);
      fitSpacer();
      log.scrollTop = keep;
    }
    function schedule() {
      if (pending) return;
      pending = true;
      (window.requestAnimationFrame || setTimeout)(paint);
    }
    try {
      for await (var ev of sse(res.body)) {
        if (stale()) return;
        armStall();
        var payload;
        try { payload = ev.data ? JSON.parse(ev.data) : null; } catch (e) { payload = null; }
        if (ev.event === "token" && payload && typeof payload.text === "string") {
          m.status = "streaming";
          m.answer += payload.text;
          schedule();
        } else if (ev.event === "citations" && Array.isArray(payload)) {
          m.citations = payload;
          schedule();
        } else if (ev.event === "done" && payload) {
          done = true;
          m.status = "done";
          if (typeof payload.answer === "string") m.answer = payload.answer;
          if (Array.isArray(payload.citations)) m.citations = payload.citations;
          m.answered = payload.answered !== false;
          m.message_id = payload.message_id || null;
          m.suggestions = Array.isArray(payload.suggestions) ? payload.suggestions.slice(0, 3) : [];
          m.conversation_id = payload.conversation_id || state.conversation_id;
          if (payload.conversation_id) state.conversation_id = payload.conversation_id;
          pending = false;
          paint();
          announce(T.answered);
        } else if (ev.event === "error") {
          var err = (payload && (payload.error || payload)) || {};
          var msg = typeof err.message === "string" ? err.message : "";
          var code = err.code;
          done = true;
          if (code === "rate_limited") fail(m, { kind: "rate", seconds: secondsIn(msg) });
          else if (code === "index_not_ready") fail(m, { kind: "starting" });
          else fail(m, { kind: "server", text: msg || T.serverError });
        }
      }
    } catch (e) {
      /* network dropped mid-answer: handled below */
    } finally {
      clearTimeout(stall);
    }
    if (!done && !stale()) fail(m, { kind: m.answer ? "interrupted" : "offline" });
  }

  function parseRetryAfter(value) {
    if (!value) return 0;
    var s = Number(value);
    if (isFinite(s)) return Math.max(1, Math.ceil(s));
    var when = Date.parse(value);
    return isNaN(when) ? 0 : Math.max(1, Math.ceil((when - Date.now()) / 1000));
  }
  function secondsIn(text) {
    var m = /(\d+)\s*(giây|s\b|sec)/i.exec(text || "");
    return m ? Number(m[1]) : 0;
  }

  // Server-sent events over a fetch body (EventSource cannot POST). Yields {event, data}.
  async function* sse(body) {
    var reader = body.getReader();
    var decoder = new TextDecoder("utf-8");
    var buf = "";
    try {
      for (;;) {
        var chunk = await reader.read();
        if (chunk.done) break;
        buf += decoder.decode(chunk.value, { stream: true });
        // Normalise CRLF / CR line ends, but keep a trailing CR: its LF may be in the next chunk.
        var keep = buf.endsWith("\r") ? "\r" : "";
        buf = (keep ? buf.slice(0, -1) : buf).replace(/\r\n?/g, "\n") + keep;
        var at;
        while ((at = buf.indexOf("\n\n")) >= 0) {
          var block = buf.slice(0, at);
          buf = buf.slice(at + 2);
          var ev = parseEvent(block);
          if (ev) yield ev;
        }
      }
      buf = (buf + decoder.decode()).replace(/\r\n?/g, "\n");
      if (buf.trim()) { var last = parseEvent(buf); if (last) yield last; }
    } finally {
      try { reader.releaseLock(); } catch (e) { /* already released */ }
    }
  }
  function parseEvent(block) {
    var event = "message", data = [], seen = false;
    block.split("\n").forEach(function (line) {
      if (!line || line.charAt(0) === ":") return;
      var i = line.indexOf(":");
      var field = i < 0 ? line : line.slice(0, i);
      var value = i < 0 ? "" : line.slice(i + 1);
      if (value.charAt(0) === " ") value = value.slice(1);
      if (field === "event") { event = value; seen = true; }
      else if (field === "data") { data.push(value); seen = true; }
    });
    return seen ? { event: event, data: data.join("\n") } : null;
  }

  // For tests and host pages that want to drive the widget.
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);

  window.KetLuanWidget = { open: function () { openPanel(true); }, close: closePanel, ask: function (q) { openPanel(false); ask(q); } };
})();
