// Draws the cost and quality dashboard from the JSON block the page carries (monitoring/dashboards.py).
(function () {
  "use strict";
  var source = document.getElementById("lg-dashboard-data");
  if (!source || !window.Plotly) { return; }
  var d = JSON.parse(source.textContent);
  var config = {displaylogo: false, responsive: true};
  function layout(title, extra) {
    var base = {title: {text: title, font: {size: 14}}, margin: {l: 56, r: 56, t: 40, b: 48},
                legend: {orientation: "h", y: -0.2}, font: {size: 11}};
    return Object.assign(base, extra || {});
  }
  function line(name, x, y, extra) {
    return Object.assign({type: "scatter", mode: "lines+markers", name: name, x: x, y: y, connectgaps: false}, extra || {});
  }

  Plotly.newPlot("lg-chart-pareto", [
    {type: "bar", name: "spend (USD)", x: d.pareto.names, y: d.pareto.spend},
    {type: "scatter", mode: "lines+markers", name: "cumulative share", x: d.pareto.names, y: d.pareto.cumulative,
     yaxis: "y2"}
  ], layout("Spend by feature with the 80/20 line", {
    yaxis: {title: {text: "USD"}}, yaxis2: {overlaying: "y", side: "right", range: [0, 1.05], tickformat: ".0%"},
    shapes: [{type: "line", xref: "paper", x0: 0, x1: 1, yref: "y2", y0: 0.8, y1: 0.8,
              line: {dash: "dash", color: "#ba2121", width: 2}}]
  }), config);

  Plotly.newPlot("lg-chart-spend-by-feature", d.spendByFeature.series.map(function (s) {
    return {type: "bar", name: s.name, x: d.spendByFeature.times, y: s.spend};
  }), layout("Spend over time by feature (USD)", {barmode: "stack"}), config);

  Plotly.newPlot("lg-chart-rates", [
    line("error rate", d.times, d.errorRate),
    line("refusal rate", d.times, d.refusalRate),
    line("thumbs-down rate", d.times, d.thumbsDownRate)
  ], layout("Error, refusal and thumbs-down rates", {yaxis: {tickformat: ".0%", rangemode: "tozero"}}), config);

  Plotly.newPlot("lg-chart-latency", ["p50", "p95", "p99"].map(function (q) {
    return line("latency " + q, d.times, d.latency[q]);
  }), layout("Latency (ms)", {yaxis: {rangemode: "tozero"}}), config);

  Plotly.newPlot("lg-chart-ttft", ["p50", "p95", "p99"].map(function (q) {
    return line("TTFT " + q, d.times, d.ttft[q]);
  }), layout("Time to first token (ms)", {yaxis: {rangemode: "tozero"}}), config);

  Plotly.newPlot("lg-chart-cache", [
    {type: "bar", name: "saved by cached input", x: d.times, y: d.cacheSavings},
    {type: "bar", name: "paid for cached input", x: d.times, y: d.cachePaid}
  ], layout("Cache savings (USD)", {barmode: "stack"}), config);
})();
