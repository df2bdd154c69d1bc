// Keeps every countdown on the page current between reloads: the server renders the same words, this
// only moves them on each second. Words follow the page's language (zh-CN or en).
(function () {
  "use strict";
  var zh = (document.documentElement.lang || "").indexOf("zh") === 0;
  function span(seconds) {
    var minutes = Math.floor(Math.abs(seconds) / 60);
    var days = Math.floor(minutes / 1440);
    var hours = Math.floor((minutes % 1440) / 60);
    var mins = minutes % 60;
    var units = zh ? ["天", "小时", "分钟"] : ["d", "h", "m"];
    var parts = [];
    [days, hours, mins].forEach(function (n, i) { if (n) { parts.push(n + units[i]); } });
    if (!parts.length) { return zh ? "不足1分钟" : "<1m"; }
    return parts.slice(0, 2).join(zh ? "" : " ");
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-due]").forEach(function (el) {
      var left = Math.trunc((Date.parse(el.getAttribute("data-due")) - now) / 1000);
      el.setAttribute("data-remaining", String(left));
      if (left > 0) {
        el.textContent = zh ? "剩余 " + span(left) : span(left) + " left";
      } else {
        el.textContent = zh ? "已逾期 " + span(-left) : "overdue by " + span(-left);
        el.classList.add("overdue");
      }
    });
  }
  tick();
  window.setInterval(tick, 1000);
})();
