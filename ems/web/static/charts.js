// ECharts options for the console's pages, built from each page's JSON data (see console.js).
(function () {
  "use strict";
  var charts = window.emsCharts = window.emsCharts || {};
  var lang = document.documentElement.lang === "en" ? "en" : "ja";
  var NAMES = {
    ja: {grid: "系統", pv: "太陽光", load: "負荷", battery: "蓄電池", ev: "EV", measured: "実測", price: "買電単価", now: "現在",
         up: "DR 上げ", down: "DR 下げ", kw: "kW", yen: "円/kWh", kwh: "kWh", dayAhead: "前日計画"},
    en: {grid: "grid", pv: "PV", load: "load", battery: "battery", ev: "EV", measured: "measured", price: "import price", now: "now",
         up: "DR up", down: "DR down", kw: "kW", yen: "yen/kWh", kwh: "kWh", dayAhead: "day-ahead plan"}
  }[lang];
  var COLOURS = {grid: "#5470c6", pv: "#fac858", load: "#91cc75", battery: "#ee6666", ev: "#73c0de"};
  var KINDS = ["grid", "pv", "battery", "ev", "load"];

  // Times arrive as ISO strings in the portfolio's zone (Asia/Tokyo, with its offset). ECharts
  // draws a time axis in the browser's zone; without the offset it reads the wall-clock time
  // as local, so the axis shows Tokyo time on any machine (Japan has no daylight saving).
  function wall(text) { return typeof text === "string" ? text.slice(0, 19) : text; }
  function points(rows) { return (rows || []).map(function (row) { return [wall(row[0]), row[1]]; }); }

  function timeAxis(data) {
    return {type: "time", min: wall(data.start), max: wall(data.end),
            axisLabel: {hideOverlap: true, formatter: "{HH}:{mm}\n{MM}-{dd}"}};
  }

  function nowLine(data) {
    return {symbol: "none", silent: true, lineStyle: {color: "#b42318", type: "solid", width: 2},
            label: {formatter: NAMES.now}, data: [{xAxis: wall(data.now)}]};
  }

  charts.sitePower = function (data, el) {
    var site = data.sites.filter(function (s) { return s.id === el.getAttribute("data-site"); })[0];
    var series = [];
    KINDS.forEach(function (kind) {
      if (site.planned[kind]) {
        series.push({name: NAMES[kind], type: "bar", stack: "plan", data: points(site.planned[kind]), barCategoryGap: "0%",
                     itemStyle: {color: COLOURS[kind], opacity: 0.75}});
      }
    });
    KINDS.forEach(function (kind) {
      if (site.measured[kind]) {
        series.push({name: NAMES[kind] + " (" + NAMES.measured + ")", type: "line", data: points(site.measured[kind]), showSymbol: false,
                     lineStyle: {color: COLOURS[kind], width: 2, type: "dashed"}, itemStyle: {color: COLOURS[kind]}});
      }
    });
    var bands = (data.dr_events || []).filter(function (e) { return e.sites.length === 0 || e.sites.indexOf(site.id) >= 0; })
      .map(function (e) { return [{name: NAMES[e.direction] || e.direction, xAxis: wall(e.start)}, {xAxis: wall(e.end)}]; });
    series.push({name: NAMES.price, type: "line", step: "start", yAxisIndex: 1, data: points(site.import_price), showSymbol: false,
                 lineStyle: {color: "#666", width: 1}, itemStyle: {color: "#666"},
                 markLine: nowLine(data), markArea: {silent: true, itemStyle: {color: "rgba(181,71,8,0.12)"}, data: bands}});
    return {
      animation: false,
      tooltip: {trigger: "axis"},
      legend: {type: "scroll", top: 0},
      grid: {left: 55, right: 60, top: 36, bottom: 40},
      xAxis: timeAxis(data),
      yAxis: [{type: "value", name: NAMES.kw}, {type: "value", name: NAMES.yen, splitLine: {show: false}}],
      series: series
    };
  };

  charts.storageSoc = function (data) {
    var palette = ["#5470c6", "#91cc75", "#fac858", "#ee6666", "#73c0de", "#3ba272", "#fc8452", "#9a60b4"];
    var series = [];
    Object.keys(data.storage).forEach(function (id, n) {
      var colour = palette[n % palette.length];
      series.push({name: id, type: "line", showSymbol: false, data: points(data.storage[id].measured),
                   lineStyle: {color: colour, width: 2}, itemStyle: {color: colour}});
      if (data.storage[id].day_ahead.length) {
        series.push({name: id + " (" + NAMES.dayAhead + ")", type: "line", step: "end", showSymbol: false,
                     data: points(data.storage[id].day_ahead), lineStyle: {color: colour, width: 1, type: "dashed"},
                     itemStyle: {color: colour}});
      }
    });
    if (series.length) { series[0].markLine = nowLine(data); }
    return {animation: false, tooltip: {trigger: "axis"}, legend: {type: "scroll", top: 0},
            grid: {left: 55, right: 30, top: 36, bottom: 40}, xAxis: timeAxis(data),
            yAxis: {type: "value", name: NAMES.kwh, min: 0}, series: series};
  };

  charts.vehicleSoc = function (data) {
    var series = Object.keys(data.soc).map(function (id) {
      return {name: id, type: "line", showSymbol: false, data: points(data.soc[id])};
    });
    if (series.length) { series[0].markLine = nowLine(data); }
    return {animation: false, tooltip: {trigger: "axis"}, legend: {type: "scroll", top: 0},
            grid: {left: 55, right: 30, top: 36, bottom: 40}, xAxis: timeAxis(data),
            yAxis: {type: "value", name: NAMES.kwh, min: 0}, series: series};
  };
})();
