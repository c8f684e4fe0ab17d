// Bakery web UI behaviour: CSRF header for htmx, confirmations, copy
// buttons, tabs, and the live log panels (Server-Sent Events). Loaded as
// a file: the Content-Security-Policy allows no inline script.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";

  document.addEventListener("htmx:configRequest", function (e) {
    if (csrf) e.detail.headers["X-CSRF-Token"] = csrf;
  });

  // Forms with data-confirm ask first.
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  }, true);

  // Copy buttons copy the text of the element named by data-copy.
  document.addEventListener("click", function (e) {
    var b = e.target.closest("button[data-copy]");
    if (!b) return;
    var el = document.getElementById(b.getAttribute("data-copy"));
    if (!el) return;
    var text = el.textContent;
    var done = function () { b.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { selectCopy(el) && done(); });
    } else if (selectCopy(el)) {
      done();
    }
  });

  function selectCopy(el) {
    var r = document.createRange();
    r.selectNodeContents(el);
    var s = window.getSelection();
    s.removeAllRanges();
    s.addRange(r);
    try { return document.execCommand("copy"); } catch (_) { return false; }
  }

  // Tabs: a button with data-tab shows that panel and hides its siblings.
  document.addEventListener("click", function (e) {
    var t = e.target.closest("button[data-tab]");
    if (!t) return;
    var tabs = t.parentNode.querySelectorAll("button[data-tab]");
    tabs.forEach(function (b) {
      b.classList.toggle("on", b === t);
      var p = document.getElementById(b.getAttribute("data-tab"));
      if (p) p.hidden = b !== t;
    });
    var panel = document.getElementById(t.getAttribute("data-tab"));
    var pre = panel && panel.querySelector("pre.log[data-stream]");
    if (pre && !pre.dataset.started) followRuntime(pre);
  });

  // A log view: per-node colour, auto-scroll that pauses while the user
  // has scrolled up, a button to resume it.
  function logView(pre, resumeBtn) {
    var colours = {}, next = 0, auto = true;
    function atBottom() { return pre.scrollHeight - pre.scrollTop - pre.clientHeight < 4; }
    pre.addEventListener("scroll", function () {
      auto = atBottom();
      if (resumeBtn) resumeBtn.hidden = auto;
    });
    if (resumeBtn) resumeBtn.addEventListener("click", function () {
      auto = true;
      resumeBtn.hidden = true;
      pre.scrollTop = pre.scrollHeight;
    });
    return {
      clear: function () { pre.textContent = ""; },
      add: function (node, stream, text) {
        var line = document.createElement("span");
        if (!(node in colours)) colours[node] = next++ % 6;
        line.className = "line s-" + stream + " n" + colours[node];
        if (node) {
          var n = document.createElement("span");
          n.className = "node";
          n.textContent = node + " ";
          line.appendChild(n);
        }
        line.appendChild(document.createTextNode(text + "\n"));
        pre.appendChild(line);
        if (auto) pre.scrollTop = pre.scrollHeight;
      },
    };
  }

  // The rollout log follows the deployment's newest rollout: it polls
  // which one that is and streams it. EventSource reconnects by itself
  // with Last-Event-ID, so the server resumes after the last line seen;
  // lines are also de-duplicated by their sequence number.
  function followRollouts(pre) {
    var title = document.getElementById("log-title");
    var state = document.getElementById("log-state");
    var view = logView(pre, document.getElementById("log-resume"));
    var current = null, es = null, lastSeq = 0;
    function open(id) {
      if (es) es.close();
      current = id;
      lastSeq = 0;
      view.clear();
      title.textContent = "rollout " + id;
      state.textContent = "connecting…";
      es = new EventSource(pre.getAttribute("data-stream-prefix") + encodeURIComponent(id) + "/stream");
      pre.dataset.rollout = id;
      es.onopen = function () { state.textContent = "live"; };
      es.onerror = function () { if (es && es.readyState !== 2) state.textContent = "reconnecting…"; };
      es.addEventListener("line", function (ev) {
        var l = JSON.parse(ev.data);
        if (l.seq <= lastSeq) return;
        lastSeq = l.seq;
        view.add(l.node || "", l.stream, l.text);
      });
      es.addEventListener("end", function (ev) {
        var end = JSON.parse(ev.data);
        state.textContent = end.state + (end.message ? ": " + end.message : "");
        pre.dataset.state = end.state;
        es.close();
        es = null;
      });
    }
    var pinned = pre.getAttribute("data-pinned");
    if (pinned) {
      open(pinned);
      return;
    }
    function poll() {
      fetch(pre.getAttribute("data-current"), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (j) { if (j && j.id && j.id !== current) open(j.id); })
        .catch(function () {})
        .then(function () { setTimeout(poll, 2000); });
    }
    poll();
  }

  function followRuntime(pre) {
    pre.dataset.started = "1";
    var view = logView(pre, null);
    var es = new EventSource(pre.getAttribute("data-stream"));
    es.onerror = function () {
      if (es.readyState === 2) view.add("", "bakery", "no runtime log: the app runs on no node yet, or the server refused");
    };
    es.addEventListener("line", function (ev) {
      var l = JSON.parse(ev.data);
      view.add(l.node + (l.slot ? "/" + l.slot : ""), l.stream || "stdout", l.text);
    });
    es.addEventListener("end", function (ev) {
      var end = JSON.parse(ev.data);
      view.add("", "bakery", end.error ? "log ended: " + end.error : "log ended");
      es.close();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var log = document.getElementById("log");
    if (log) followRollouts(log);
  });
})();
