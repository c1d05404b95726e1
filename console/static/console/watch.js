// Lookglass console, Watch pages: the charts beyond the monitoring dashboard's own
// (monitoring/static/monitoring/dashboard.js draws the pareto, spend, rates, latency, TTFT and
// cache charts from the same JSON block). plotly.js is served locally by monitoring.dashboards.
(function () {
  "use strict";
  if (!window.Plotly) { return; }
  var config = {displaylogo: false, responsive: true};
  function layout(title, extra) {
    var base = {title: {text: title, font: {size: 14}}, margin: {l: 56, r: 24, t: 40, b: 90},
                legend: {orientation: "h", y: -0.35}, font: {size: 11}};
    return Object.assign(base, extra || {});
  }
  function data(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }
  function bars(target, title, series) {
    if (!document.getElementById(target) || !series) { return; }
    Plotly.newPlot(target, [{type: "bar", name: "spend (USD)", x: series.names, y: series.spend,
                             customdata: series.calls, hovertemplate: "%{x}<br>$%{y:.4f}, %{customdata} calls<extra></extra>"}],
                   layout(title, {yaxis: {title: {text: "USD"}}, xaxis: {automargin: true}}), config);
  }

  var dash = data("lg-dashboard-data");
  if (dash) {
    bars("lg-chart-by-model", "Spend by model", dash.byModel);
    bars("lg-chart-by-prompt-version", "Spend by prompt version", dash.byPromptVersion);
    bars("lg-chart-by-user", "Spend by end user (top " + dash.byUser.names.length + ")", dash.byUser);
  }

  var fb = data("lg-feedback-data");
  if (fb) {
    Plotly.newPlot("lg-chart-thumbs", [
      {type: "bar", name: "thumbs up", x: fb.times, y: fb.up, marker: {color: "#3a8a5b"}},
      {type: "bar", name: "thumbs down", x: fb.times, y: fb.down, marker: {color: "#c2410c"}},
      {type: "scatter", mode: "lines+markers", name: "thumbs-down rate", x: fb.times, y: fb.rate, yaxis: "y2",
       connectgaps: false, line: {color: "#1f2a5a"}}
    ], layout("Thumbs per day and the thumbs-down rate", {barmode: "stack",
      yaxis2: {overlaying: "y", side: "right", tickformat: ".0%", rangemode: "tozero"}}), config);
    [["feature", "By feature"], ["model", "By model"], ["prompt_version", "By prompt version"]].forEach(function (pair) {
      var s = fb.breakdowns[pair[0]], target = "lg-chart-thumbs-" + pair[0].replace("_", "-");
      if (!s || !document.getElementById(target)) { return; }
      Plotly.newPlot(target, [
        {type: "bar", name: "up", x: s.names, y: s.up, marker: {color: "#3a8a5b"}},
        {type: "bar", name: "down", x: s.names, y: s.down, marker: {color: "#c2410c"}}
      ], layout("Thumbs " + pair[1].toLowerCase(), {barmode: "stack", xaxis: {automargin: true}}), config);
    });
  }

  var usage = data("lg-usage-data");
  if (usage) {
    var traces = [
      {type: "bar", name: "billable units", x: usage.days, y: usage.units, marker: {color: "#3b5bdb"}},
      {type: "bar", name: "rejected events", x: usage.days, y: usage.rejected, marker: {color: "#c2410c"}}
    ];
    Plotly.newPlot("lg-chart-usage", traces, layout("Billable units per day, last 30 days", {barmode: "group", yaxis: {rangemode: "nonnegative"}}), config);
  }
})();
