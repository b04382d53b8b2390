// Charts of the BCP and Nightly DR pages, registered in window.emsCharts (console.js draws them
// from each page's JSON data once the page or an htmx fragment is in place).
(function () {
  "use strict";
  var charts = window.emsCharts = window.emsCharts || {};
  var tokyo = { timeZone: "Asia/Tokyo", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false };

  function label(iso) { return new Date(iso).toLocaleString("ja-JP", tokyo); }

  // One grid per shelter: PV, stationary battery and vehicles stacked, the critical load as a line.
  charts["bcp-supply"] = function (supply) {
    var shelters = Object.keys(supply);
    var grids = [], xAxes = [], yAxes = [], series = [], titles = [];
    var height = 100 / Math.max(1, shelters.length);
    shelters.forEach(function (shelter, i) {
      var s = supply[shelter];
      var top = i * height;
      grids.push({ left: 55, right: 20, top: (top + 6) + "%", height: (height - 12) + "%" });
      xAxes.push({ type: "category", gridIndex: i, data: s.time.map(label), axisLabel: { show: i === shelters.length - 1 } });
      yAxes.push({ type: "value", gridIndex: i, name: "kW" });
      titles.push({ text: shelter, top: top + "%", left: 60, textStyle: { fontSize: 12 } });
      var pvToLoad = s.served_kw.map(function (v, k) { return Math.max(0, v - Math.max(0, s.battery_kw[k]) - Math.max(0, s.vehicle_kw[k])); });
      [["PV", pvToLoad, "#e6b800"], ["battery", s.battery_kw.map(function (v) { return Math.max(0, v); }), "#2ca02c"],
       ["vehicles (V2H)", s.vehicle_kw.map(function (v) { return Math.max(0, v); }), "#1f77b4"]].forEach(function (part) {
        series.push({ name: part[0], type: "line", step: "end", stack: shelter, areaStyle: {}, symbol: "none",
                      xAxisIndex: i, yAxisIndex: i, data: part[1], color: part[2], lineStyle: { width: 0 } });
      });
      series.push({ name: "critical load", type: "line", step: "end", symbol: "none", xAxisIndex: i, yAxisIndex: i,
                    data: s.demand_kw, color: "#000" });
    });
    return { animation: false, title: titles, tooltip: { trigger: "axis" },
             legend: { top: 0, right: 10, data: ["PV", "battery", "vehicles (V2H)", "critical load"] },
             grid: grids, xAxis: xAxes, yAxis: yAxes, series: series };
  };

  // Probability of riding out an outage of each length, per shelter, with and without the fleet.
  charts["bcp-resilience"] = function (rows) {
    var groups = {};
    rows.forEach(function (r) {
      var key = r.shelter + (r.with_fleet ? " (fleet)" : " (no fleet)");
      (groups[key] = groups[key] || []).push([r.duration_hours, r.probability]);
    });
    return { animation: false, tooltip: { trigger: "axis" }, legend: { type: "scroll", top: 0 },
             grid: { left: 55, right: 20, top: 40, bottom: 40 },
             xAxis: { type: "value", name: "h" }, yAxis: { type: "value", min: 0, max: 1, name: "P" },
             series: Object.keys(groups).map(function (k) {
               return { name: k, type: "line", data: groups[k].sort(function (a, b) { return a[0] - b[0]; }),
                        lineStyle: { type: k.indexOf("no fleet") >= 0 ? "dashed" : "solid" } };
             }) };
  };

  // The offer: kW down and up per 3-hour block (or per slot), bars around zero.
  charts["night-flexibility"] = function (flex) {
    var rows = flex.blocks && flex.blocks.length ? flex.blocks : (flex.slots || []);
    return { animation: false, tooltip: { trigger: "axis" }, legend: { top: 0 },
             grid: { left: 55, right: 20, top: 40, bottom: 50 },
             xAxis: { type: "category", data: rows.map(function (r) { return label(r.start).slice(-5) + "-" + label(r.end).slice(-5); }) },
             yAxis: { type: "value", name: "kW" },
             series: [{ name: "down", type: "bar", data: rows.map(function (r) { return r.down_kw || 0; }), color: "#1f77b4" },
                      { name: "up", type: "bar", data: rows.map(function (r) { return -(r.up_kw || 0); }), color: "#d62728" }] };
  };
})();
