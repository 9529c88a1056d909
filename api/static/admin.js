/* The operator console: the admin key kept for this tab only, uploads (drag-and-drop or URL) with progress,
   the document list with replace/remove, and the question report (its chart is an SVG drawn by the server). */
(function () {
  "use strict";
  var W = JSON.parse(document.getElementById("admin-words").textContent);
  var KEY_NAME = "ketluan-admin-key";
  var $ = function (id) { return document.getElementById(id); };
  function say(key, values) {
    return (W[key] || key).replace(/\{(\w+)\}/g, function (_, k) { return values && k in values ? values[k] : ""; });
  }
  function key() { return sessionStorage.getItem(KEY_NAME) || ""; }
  function api(method, path, body) {
    var init = { method: method, headers: { Authorization: "Bearer " + key() } };
    if (body instanceof FormData) init.body = body;
    else if (body) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
    return fetch(path, init).then(function (res) {
      if (res.status === 401 || res.status === 429) { logout(true); throw new Error("auth"); }
      return res;
    });
  }
  function json(res) {
    return res.json().then(function (body) {
      if (!res.ok) throw new Error(say("error_http", { status: res.status }) + " " + (body.error && (body.error.detail || body.error.message)));
      return body;
    });
  }
  function text(el, value) { el.textContent = value == null ? "" : String(value); return el; }
  function el(tag, cls, value) { var e = document.createElement(tag); if (cls) e.className = cls; if (value != null) text(e, value); return e; }

  // --- signing in ---------------------------------------------------------------------------------
  function logout(failed) {
    sessionStorage.removeItem(KEY_NAME);
    $("console").hidden = true; $("login").hidden = false;
    $("login-error").hidden = !failed;
  }
  $("login").addEventListener("submit", function (ev) {
    ev.preventDefault();
    sessionStorage.setItem(KEY_NAME, $("admin-key").value.trim());
    $("admin-key").value = "";
    start();
  });
  $("logout").addEventListener("click", function () { logout(false); });
  function start() {
    api("GET", "/v1/admin/documents").then(json).then(function (body) {
      $("login").hidden = true; $("console").hidden = false; $("login-error").hidden = true;
      showDocuments(body.documents);
      loadStats();
    }).catch(function () {});
  }

  // --- jobs ---------------------------------------------------------------------------------------
  function showJob(label, progress, error) {
    $("job").hidden = false; text($("job-label"), label);
    $("job-progress").value = progress;
    $("job-error").hidden = !error; text($("job-error"), error || "");
  }
  // The bar runs once per change: an upload fills its first UPLOADED, the job the rest (never backwards).
  var UPLOADED = 0.3;
  // What failed, in the operator's words: adding, replacing or removing a document.
  function failed(action) { return say(action === "remove" ? "failed_remove" : action === "replace" ? "failed_replace" : "failed"); }
  function follow(accepted, start, action) {
    var from = start || 0;
    api("GET", "/v1/admin/jobs/" + encodeURIComponent(accepted.job_id)).then(json).then(function (job) {
      var value = from + (1 - from) * job.progress;
      if (job.state === "done") { showJob(say(job.action === "remove" ? "removed" : "done"), 1); loadDocuments(); return; }
      if (job.state === "failed") { showJob(failed(job.action), value, job.error); loadDocuments(); return; }
      showJob(say(job.step === "publishing" ? "publishing" : job.state), value);
      setTimeout(function () { follow(accepted, from, action); }, 700);
    }).catch(function (e) { showJob(failed(action), 0, e.message); });
  }
  function send(method, path, file) {
    var action = method === "PUT" ? "replace" : "add";
    var form = new FormData(); form.append("file", file);
    var xhr = new XMLHttpRequest();
    xhr.open(method, path);
    xhr.setRequestHeader("Authorization", "Bearer " + key());
    xhr.upload.onprogress = function (e) { if (e.lengthComputable) showJob(say("uploading", { name: file.name }), UPLOADED * e.loaded / e.total); };
    xhr.onload = function () {
      var body = {}; try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      if (xhr.status === 202) { follow(body, UPLOADED, action); return; }
      if (xhr.status === 401) { logout(true); return; }
      showJob(failed(action), 0, say("error_http", { status: xhr.status }) + " " + (body.error ? body.error.message : ""));
    };
    xhr.onerror = function () { showJob(failed(action), 0, say("error_http", { status: 0 })); };
    showJob(say("uploading", { name: file.name }), 0);
    xhr.send(form);
  }

  // --- adding -------------------------------------------------------------------------------------
  var drop = $("drop");
  drop.addEventListener("click", function () { $("file").click(); });
  drop.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("file").click(); } });
  ["dragenter", "dragover"].forEach(function (t) { drop.addEventListener(t, function (e) { e.preventDefault(); drop.classList.add("over"); }); });
  ["dragleave", "drop"].forEach(function (t) { drop.addEventListener(t, function () { drop.classList.remove("over"); }); });
  drop.addEventListener("drop", function (e) {
    e.preventDefault();
    if (e.dataTransfer.files.length) send("POST", "/v1/admin/documents", e.dataTransfer.files[0]);
  });
  $("file").addEventListener("change", function () { if (this.files.length) send("POST", "/v1/admin/documents", this.files[0]); this.value = ""; });
  $("by-url").addEventListener("submit", function (ev) {
    ev.preventDefault();
    showJob(say("queued"), 0.05);
    api("POST", "/v1/admin/documents", { url: $("url").value.trim() }).then(json).then(function (b) { follow(b, 0.05, "add"); })
      .catch(function (e) { if (e.message !== "auth") showJob(failed("add"), 0, e.message); });
  });

  // --- the document list --------------------------------------------------------------------------
  var replacing = null;
  $("replace-file").addEventListener("change", function () {
    var file = this.files[0]; this.value = "";
    if (!file || !replacing) return;
    if (confirm(say("confirm_replace", { title: replacing.title, name: file.name }))) {
      send("PUT", "/v1/admin/documents/" + encodeURIComponent(replacing.document_id), file);
    }
  });
  function loadDocuments() { api("GET", "/v1/admin/documents").then(json).then(function (b) { showDocuments(b.documents); }).catch(function () {}); }
  function showDocuments(documents) {
    var body = $("documents"); body.textContent = "";
    documents.forEach(function (d) {
      var tr = el("tr");
      var name = el("td");
      var link = el("a", null, d.title || d.document_id); link.href = "/documents/" + encodeURIComponent(d.document_id);
      name.appendChild(link);
      name.appendChild(el("div", "small muted", [d.ket_luan, d.issued, d.document_id].filter(Boolean).join(" · ")));
      tr.appendChild(name);
      var status = el("td"); status.appendChild(el("span", "status status-" + d.status, say("status_" + d.status)));
      if (d.error) status.appendChild(el("div", "small error", d.error));
      tr.appendChild(status);
      var source = el("td", "small");
      if (d.source_url) { var a = el("a", null, d.source_url.replace(/^https?:\/\//, "").slice(0, 48)); a.href = d.source_url; a.rel = "noopener noreferrer"; source.appendChild(a); }
      else text(source, [say(d.origin === "upload" ? "source_file" : "source_shipped"), d.sha256 && d.sha256.slice(0, 10)].filter(Boolean).join(" · "));
      tr.appendChild(source);
      var actions = el("td", "actions");
      if (d.status === "indexed") {
        var rep = el("button", "secondary", say("replace")); rep.type = "button";
        rep.addEventListener("click", function () { replacing = d; $("replace-file").click(); });
        var del = el("button", "secondary", say("remove")); del.type = "button";
        del.addEventListener("click", function () {
          if (!confirm(say("confirm_remove", { title: d.title }))) return;
          api("DELETE", "/v1/admin/documents/" + encodeURIComponent(d.document_id)).then(json)
            .then(function (b) { follow(b, 0, "remove"); })
            .catch(function (e) { if (e.message !== "auth") showJob(failed("remove"), 0, e.message); });
        });
        actions.appendChild(rep); actions.appendChild(text(document.createTextNode(" "), " ")); actions.appendChild(del);
      }
      tr.appendChild(actions);
      body.appendChild(tr);
    });
  }

  // --- questions ----------------------------------------------------------------------------------
  function loadStats() {
    api("GET", "/v1/admin/stats?days=30").then(json).then(function (s) {
      text($("k-questions"), s.questions);
      text($("k-rate"), s.answer_rate == null ? "—" : Math.round(s.answer_rate * 100) + " %");
      var l = s.latency_ms || {};
      text($("k-latency"), l.p50 == null ? "—" : [l.p50, l.p90, l.p99].map(function (v) { return Math.round(v) + " ms"; }).join(" / "));
      $("chart").innerHTML = s.chart_svg;  // drawn by the server from numbers only, every label escaped there
      var un = $("unanswered"); un.textContent = "";
      if (!s.unanswered.length) un.appendChild(el("li", "muted", say("no_questions")));
      s.unanswered.forEach(function (g) {
        var li = el("li", null, g.question + " — " + g.count + " " + say("times"));
        if (g.examples.length > 1) li.appendChild(el("div", "quote", g.examples.slice(1).join(" · ")));
        un.appendChild(li);
      });
      var down = $("thumbs-down"); down.textContent = "";
      if (!s.thumbs_down.length) down.appendChild(el("li", "muted", say("no_questions")));
      s.thumbs_down.forEach(function (d) {
        var li = el("li", null, d.text);
        li.appendChild(el("div", "small", say("comment") + " " + (d.comment || say("no_comment"))));
        li.appendChild(el("div", "quote", say("answer_given") + " " + d.answer));
        down.appendChild(li);
      });
    }).catch(function () {});
  }
  $("csv").addEventListener("click", function () {
    api("GET", "/v1/admin/questions.csv?limit=10000").then(function (res) { return res.blob(); }).then(function (blob) {
      var a = document.createElement("a"); a.href = URL.createObjectURL(blob); a.download = "cau-hoi.csv";
      document.body.appendChild(a); a.click(); a.remove();
    }).catch(function () {});
  });

  if (key()) start();
})();
