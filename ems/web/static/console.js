// The console's own script: countdowns and charts drawn from each page's JSON data.
// A page puts its chart data in <script type="application/json" id="..."> (no inline code, the
// Content-Security-Policy allows scripts from /static only) and a <div class="chart"
// data-chart="NAME" data-source="ID">; NAME is a function registered in window.emsCharts.
(function () {
  "use strict";
  window.emsCharts = window.emsCharts || {};

  function pad(n) { return String(n).padStart(2, "0"); }

  function tickCountdowns() {
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var left = parseInt(el.getAttribute("data-countdown"), 10);
      if (isNaN(left)) { return; }
      left = Math.max(0, left - 1);
      el.setAttribute("data-countdown", String(left));
      el.textContent = Math.floor(left / 3600) + ":" + pad(Math.floor((left % 3600) / 60)) + ":" + pad(left % 60);
    });
  }

  function drawCharts(root) {
    if (typeof echarts === "undefined") { return; }
    (root || document).querySelectorAll("[data-chart]").forEach(function (el) {
      var build = window.emsCharts[el.getAttribute("data-chart")];
      var source = document.getElementById(el.getAttribute("data-source"));
      if (!build || !source) { return; }
      var chart = echarts.getInstanceByDom(el) || echarts.init(el);
      chart.setOption(build(JSON.parse(source.textContent), el), true);
      el.setAttribute("data-drawn", "true");
      window.addEventListener("resize", function () { chart.resize(); });
      window.addEventListener("beforeprint", function () { chart.resize(); });
    });
  }

  window.emsDrawCharts = drawCharts;
  document.addEventListener("DOMContentLoaded", function () {
    tickCountdowns();
    setInterval(tickCountdowns, 1000);
    drawCharts(document);
  });
  document.addEventListener("htmx:afterSwap", function (event) { drawCharts(event.target); });
})();
