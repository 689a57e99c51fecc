// The big screen's live feed: server-sent events; reconnects by itself after a network drop, a hub
// restart or a silent line (no event for 30 s), and says so on the screen while it does.
"use strict";
(function () {
  const SILENT_MS = 30000;
  let source = null, lastEvent = Date.now(), retryTimer = null;

  function text(id, value) { const el = document.getElementById(id); if (el) el.textContent = value; }
  function link(ok) {
    const el = document.getElementById("link");
    el.textContent = ok ? "实时" : "连接中断，正在重连…";
    el.className = "link " + (ok ? "ok" : "down");
  }
  function el(tag, cls, content) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (content !== undefined) e.textContent = content;
    return e;
  }
  function render(d) {
    text("hall", d.hall + " · 政务服务“好差评”");
    text("day", d.day);
    text("t-services", d.total.services);
    text("t-rated", d.total.rated);
    text("t-participation", d.total.participation);
    text("t-satisfaction", d.total.satisfaction);
    text("t-bad", d.total.bad);
    text("m-satisfaction", d.month.satisfaction);
    text("updated", d.updated);
    const windows = document.getElementById("windows");
    // More windows, smaller cards: the whole hall stays on one screen.
    windows.className = "grid" + (d.windows.length > 24 ? " lots" : d.windows.length > 12 ? " many" : "");
    windows.replaceChildren(...d.windows.map(function (w) {
      const box = el("div", "win");
      box.append(el("div", "no", w.label), el("div", "dept", w.dept));
      const row = el("div", "row");
      const rated = el("span", null, "评价 "); rated.append(el("b", null, String(w.rated)));
      const sat = el("span", null, "满意率 "); sat.append(el("b", null, w.satisfaction));
      row.append(rated, sat); box.append(row);
      return box;
    }));
    const depts = document.getElementById("depts");
    depts.replaceChildren(...d.depts.map(function (s) {
      const tr = el("tr");
      tr.append(el("th", null, s.name), el("td", null, s.rated + " 条"), el("td", "pct", s.satisfaction));
      return tr;
    }));
    document.body.dataset.head = d.head;
  }
  function connect() {
    if (retryTimer) { clearTimeout(retryTimer); retryTimer = null; }
    if (source) source.close();
    source = new EventSource("/screen/events");
    source.addEventListener("open", function () { lastEvent = Date.now(); link(true); });
    source.addEventListener("figures", function (e) { lastEvent = Date.now(); link(true); render(JSON.parse(e.data)); });
    source.addEventListener("beat", function () { lastEvent = Date.now(); link(true); });
    source.addEventListener("error", function () {
      link(false);
      // The browser retries by itself unless the answer was an error page: then start again here.
      if (source.readyState === EventSource.CLOSED && !retryTimer) retryTimer = setTimeout(connect, 3000);
    });
  }
  function tick() {
    text("clock", new Date().toLocaleTimeString("zh-CN", { hour12: false }));
    if (Date.now() - lastEvent > SILENT_MS) { link(false); lastEvent = Date.now(); connect(); }
  }
  setInterval(tick, 1000);
  tick();
  connect();
})();
