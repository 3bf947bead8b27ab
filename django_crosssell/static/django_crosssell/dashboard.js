/* "Cross-sell performance" charts: data from the json_script element, no inline code. */
(function () {
  "use strict";
  function start() {
    var source = document.getElementById("crosssell-chart-data");
    if (!source || !window.Chart) { return; }
    var data = JSON.parse(source.textContent);
    var traffic = document.querySelector('canvas[data-chart="traffic"]');
    var revenue = document.querySelector('canvas[data-chart="revenue"]');
    if (traffic) {
      new window.Chart(traffic, {
        type: "line",
        data: {
          labels: data.labels,
          datasets: [
            { label: data.series.impressions, data: data.impressions },
            { label: data.series.views, data: data.views },
            { label: data.series.clicks, data: data.clicks }
          ]
        },
        options: { animation: false, responsive: true }
      });
    }
    if (revenue) {
      new window.Chart(revenue, {
        type: "bar",
        data: { labels: data.labels, datasets: [{ label: data.series.revenue, data: data.revenue }] },
        options: { animation: false, responsive: true }
      });
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
