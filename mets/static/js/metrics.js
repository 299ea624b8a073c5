// The metrics pages (templates/metrics/): each <canvas data-chart> becomes a Chart.js bar chart (the vendored global
// `Chart`), drawn from the spec the server wrote from the table beside it (services/metrics/charts.py). Charts are
// drawn when the page loads and whenever htmx swaps figures in, and destroyed with the canvas they were drawn on.
(function () {
  if (window.metsCharts) return;
  window.metsCharts = true;

  function minutes(value) {
    var m = Math.round(value), d = Math.floor(m / 1440), h = Math.floor((m % 1440) / 60), rest = m % 60;
    var parts = [];
    if (d) parts.push(d + "d");
    if (h) parts.push(h + "h");
    if (rest || !parts.length) parts.push(rest + "m");
    return parts.join(" ");
  }

  function format(unit, value) {
    if (value === null || value === undefined) return "none";
    if (unit === "minutes") return minutes(value);
    if (unit === "percent") return value.toFixed(1) + "%";
    return String(value);
  }

  function draw(canvas) {
    if (typeof Chart === "undefined" || Chart.getChart(canvas)) return;
    var spec = JSON.parse(canvas.getAttribute("data-chart"));
    var styles = getComputedStyle(canvas);
    var fallback = {"--series-1": "#2f5bd3", "--series-2": "#1f8a70", "--series-3": "#b42318",
                    "--chart-text": "#5b6378", "--chart-grid": "#dde1ea"};
    function css(name) { return styles.getPropertyValue(name).trim() || fallback[name]; }
    var valueAxis = {
      beginAtZero: true,
      grid: {color: css("--chart-grid")},
      ticks: {color: css("--chart-text"), precision: spec.unit === "count" ? 0 : undefined,
              callback: function (value) { return format(spec.unit, value); }}
    };
    if (spec.unit === "percent") valueAxis.max = 100;
    var labelAxis = {grid: {display: false}, ticks: {color: css("--chart-text"), autoSkip: !spec.horizontal}};
    new Chart(canvas, {
      type: spec.type === "line" ? "line" : "bar",
      data: {
        labels: spec.labels,
        datasets: spec.datasets.map(function (d) {
          var colour = css("--series-" + d.series);
          return {label: d.label, data: d.data, backgroundColor: colour, borderColor: colour, pointRadius: 2};
        })
      },
      options: {
        indexAxis: spec.horizontal ? "y" : "x",
        animation: false,
        responsive: true,
        scales: spec.horizontal ? {x: valueAxis, y: labelAxis} : {x: labelAxis, y: valueAxis},
        plugins: {
          legend: {display: spec.datasets.length > 1, labels: {color: css("--chart-text")}},
          tooltip: {callbacks: {label: function (item) {
            return item.dataset.label + ": " + format(spec.unit, item.raw);
          }}}
        }
      }
    });
  }

  function drawAll(root) {
    (root.querySelectorAll ? root : document).querySelectorAll("canvas[data-chart]").forEach(draw);
    if (root.matches && root.matches("canvas[data-chart]")) draw(root);
  }

  document.addEventListener("htmx:load", function (event) { drawAll(event.target); });
  document.addEventListener("htmx:beforeCleanupElement", function (event) {
    var chart = typeof Chart !== "undefined" && event.target.matches && event.target.matches("canvas[data-chart]")
      ? Chart.getChart(event.target) : null;
    if (chart) chart.destroy();
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  } else {
    drawAll(document);
  }
})();
