/* Charts over the customer metrics list: customers per segment and the segment counts of
   the recent snapshots. Reads the data the page put in <script id="crosssell-customers-data">
   (json_script); the tables above stay the accessible source of the same numbers. */
(function () {
  "use strict";
  var source = document.getElementById("crosssell-customers-data");
  if (!source || typeof Chart === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  var segments = document.getElementById("crosssell-chart-segments");
  if (segments && data.segments.length) {
    new Chart(segments, {
      type: "bar",
      data: {
        labels: data.segments.map(function (row) { return row[0]; }),
        datasets: [{ label: segments.dataset.label, data: data.segments.map(function (row) { return row[1]; }) }]
      },
      options: { indexAxis: "y", plugins: { legend: { display: false } }, animation: false }
    });
  }
  var history = document.getElementById("crosssell-chart-history");
  if (history && data.history.length > 1) {
    var slugs = Object.keys(data.labels);
    new Chart(history, {
      type: "line",
      data: {
        labels: data.history.map(function (row) { return row.at.slice(0, 10); }),
        datasets: slugs.map(function (slug) {
          return {
            label: data.labels[slug],
            data: data.history.map(function (row) { return row.counts[slug] || 0; })
          };
        })
      },
      options: { animation: false }
    });
  }
})();
