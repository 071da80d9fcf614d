// netlab's HTML reports: draws every chart from the page's JSON, sorts tables.
// Chart configurations come from Python (netlab/html); only what JSON cannot say is added
// here: tooltips from each point's own "label", lane names, lane spans, the fan on hover.
(function () {
  "use strict";
  const specs = JSON.parse(document.getElementById("netlab-charts").textContent);
  Chart.defaults.animation = false; // the same picture on screen, in print and in tests
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.maintainAspectRatio = false;

  const lanesPlugin = {
    id: "netlabLanes",
    beforeDatasetsDraw(chart, _args, opts) {
      if (!opts.spans) return;
      const { ctx, chartArea, scales } = chart;
      ctx.save();
      ctx.fillStyle = "rgba(80, 120, 200, 0.13)";
      for (const [lane, t0, t1] of opts.spans) {
        const x0 = Math.max(scales.x.getPixelForValue(t0), chartArea.left);
        const x1 = Math.min(scales.x.getPixelForValue(t1), chartArea.right);
        const y = scales.y.getPixelForValue(lane);
        ctx.fillRect(x0, y - 7, Math.max(1, x1 - x0), 14);
      }
      ctx.restore();
    },
    afterDatasetsDraw(chart) {
      // The fan: from the hovered message to each delivery on its receiver's lane.
      const active = chart.getActiveElements();
      if (!active.length) return;
      const { ctx, scales } = chart;
      ctx.save();
      ctx.lineWidth = 1;
      for (const { datasetIndex, index } of active) {
        const raw = chart.data.datasets[datasetIndex].data[index];
        if (!raw || !raw.fan) continue;
        const x0 = scales.x.getPixelForValue(raw.x), y0 = scales.y.getPixelForValue(raw.y);
        for (const [x, y, lost] of raw.fan) {
          ctx.strokeStyle = lost ? "rgba(198, 40, 40, 0.9)" : "rgba(26, 127, 55, 0.7)";
          ctx.setLineDash(lost ? [4, 3] : []);
          ctx.beginPath();
          ctx.moveTo(x0, y0);
          const x1 = scales.x.getPixelForValue(x), y1 = scales.y.getPixelForValue(y);
          ctx.lineTo(x1, y1);
          ctx.stroke();
          ctx.beginPath(); // the copy's arrival on its receiver's lane
          ctx.arc(x1, y1, 3, 0, 2 * Math.PI);
          ctx.fillStyle = ctx.strokeStyle;
          ctx.fill();
        }
      }
      ctx.restore();
    },
  };

  function prepare(spec) {
    const config = spec.config;
    const options = (config.options = config.options || {});
    const plugins = (options.plugins = options.plugins || {});
    const tooltip = (plugins.tooltip = plugins.tooltip || {});
    tooltip.callbacks = {
      label(item) {
        const raw = item.raw;
        if (raw && typeof raw === "object" && raw.label !== undefined) return raw.label;
        const y = item.formattedValue;
        return `${item.dataset.label}: ${y}`;
      },
    };
    if (spec.lanes) {
      const lanes = spec.lanes;
      // One tick per lane, named: the axis runs from -0.5 so that lanes sit between lines.
      options.scales.y.afterBuildTicks = (axis) => {
        axis.ticks = lanes.map((_, value) => ({ value }));
      };
      options.scales.y.ticks = { autoSkip: false, callback: (value) => lanes[value] ?? "" };
      plugins.netlabLanes = { spans: spec.spans || [] };
      config.plugins = [lanesPlugin];
    }
    return config;
  }

  const charts = [];
  for (const spec of specs) {
    const canvas = document.getElementById(spec.id);
    if (canvas) charts.push(new Chart(canvas, prepare(spec)));
  }
  window.netlabCharts = charts; // for the browser test and anyone scripting the page

  // Sortable tables: click a heading; numbers sort as numbers, "-" (unknown) last.
  for (const table of document.querySelectorAll("table.sortable")) {
    const heads = table.tHead.rows[0].cells;
    for (let col = 0; col < heads.length; col++) {
      heads[col].addEventListener("click", () => {
        const ascending = heads[col].getAttribute("aria-sort") !== "ascending";
        for (const th of heads) th.removeAttribute("aria-sort");
        heads[col].setAttribute("aria-sort", ascending ? "ascending" : "descending");
        const body = table.tBodies[0];
        const key = (row) => {
          const cell = row.cells[col];
          const text = cell.dataset.v ?? cell.textContent.trim();
          const number = Number(text);
          return text === "" || text === "-" ? null : Number.isNaN(number) ? text : number;
        };
        const rows = Array.from(body.rows);
        rows.sort((a, b) => {
          const x = key(a), y = key(b);
          if (x === null || y === null) return x === y ? 0 : x === null ? 1 : -1;
          const order = typeof x === "number" && typeof y === "number"
            ? x - y : String(x).localeCompare(String(y));
          return ascending ? order : -order;
        });
        for (const row of rows) body.appendChild(row);
      });
    }
  }

  // Printing: the charts redraw at the paper's width, and the cases that matter open.
  window.addEventListener("beforeprint", () => {
    for (const details of document.querySelectorAll("details.print-open")) details.open = true;
    for (const chart of charts) chart.resize();
  });
})();
