/**
 * The report page's own script, run in the browser after uPlot's: it draws each plot of the
 * `report-plots` JSON block into its container, marks the timeline events on it, and, once a plot
 * has drawn, sets `data-drawn="true"` and `data-points` (the values uPlot drew, over all lines) on
 * its container so that a test (or a person) can tell it drew its data.
 *
 * Plain browser JavaScript kept in a string: it is inlined into the page as it is, and the package
 * is built and type-checked without the DOM's types.
 */
export const pageScript = `(() => {
  'use strict';
  const spec = JSON.parse(document.getElementById('report-plots').textContent);
  const height = 260;
  const charts = [];

  function formatter(decimals, unit) {
    return (u, value) => (value == null ? '--' : value.toFixed(decimals) + unit);
  }

  // The timeline events as vertical lines, each labelled with its number and kind.
  function eventsPlugin() {
    return {
      hooks: {
        draw: [
          (u) => {
            const ctx = u.ctx;
            const { left, top, width, height: plotHeight } = u.bbox;
            const ratio = window.devicePixelRatio || 1;
            ctx.save();
            ctx.lineWidth = 1.5 * ratio;
            ctx.setLineDash([5 * ratio, 3 * ratio]);
            ctx.font = 11 * ratio + 'px system-ui, sans-serif';
            ctx.textAlign = 'left';
            ctx.textBaseline = 'bottom';
            ctx.globalAlpha = 1;
            for (const event of spec.events) {
              const x = Math.round(u.valToPos(event.t, 'x', true));
              if (!(x >= left - 1 && x <= left + width + 1)) continue;
              ctx.strokeStyle = event.color;
              ctx.beginPath();
              ctx.moveTo(x, top);
              ctx.lineTo(x, top + plotHeight);
              ctx.stroke();
              ctx.save();
              ctx.translate(x + 2 * ratio, top + 4 * ratio);
              ctx.rotate(Math.PI / 2);
              // A light backing, so the label stays readable over the lines it crosses.
              ctx.fillStyle = 'rgba(255, 255, 255, 0.75)';
              ctx.fillRect(0, -13 * ratio, ctx.measureText(event.label).width, 13 * ratio);
              ctx.fillStyle = event.color;
              ctx.fillText(event.label, 0, 0);
              ctx.restore();
            }
            ctx.restore();
          },
        ],
      },
    };
  }

  // The values uPlot drew: those not null, of the lines shown, within the x range in view.
  function drawnPoints(u) {
    const range = u.series[0].idxs;
    const first = range ? range[0] : 0;
    const last = range ? range[1] : u.data[0].length - 1;
    let points = 0;
    for (let i = 1; i < u.series.length; i++) {
      if (!u.series[i].show) continue;
      const values = u.data[i];
      for (let j = first; j <= last; j++) if (values[j] != null) points++;
    }
    return points;
  }

  function markDrawn(u) {
    const container = u.root.parentElement;
    container.dataset.points = String(drawnPoints(u));
    container.dataset.drawn = 'true';
  }

  function draw(plot, container) {
    const hasRight = plot.series.some((line) => line.axis === 'y2');
    const axes = [
      { label: 'seconds since start' },
      { scale: 'y', label: plot.yLabel },
    ];
    if (hasRight) axes.push({ scale: 'y2', label: plot.y2Label || '', side: 1, grid: { show: false } });
    const options = {
      width: Math.max(320, container.clientWidth),
      height,
      scales: {
        x: { time: false, range: () => [spec.xRange[0], spec.xRange[1]] },
        y: plot.logScale ? { distr: 3, log: 10 } : {},
        y2: {},
      },
      series: [{ label: 'time', value: formatter(2, ' s') }].concat(
        plot.series.map((line) => ({
          label: line.label,
          scale: line.axis,
          stroke: line.color,
          width: 1.5,
          points: { show: false },
          value: formatter(line.decimals, ''),
        })),
      ),
      axes,
      plugins: [eventsPlugin()],
      hooks: { draw: [markDrawn] },
    };
    const data = [spec.x].concat(plot.series.map((line) => line.values));
    for (const pending of container.querySelectorAll('.plot-pending')) pending.remove();
    charts.push({ chart: new uPlot(options, data, container), container });
  }

  for (const plot of spec.plots) {
    const container = document.getElementById('plot-' + plot.id);
    if (!container || plot.points === 0) continue; // drawn as "no data" by the page itself
    try {
      draw(plot, container);
    } catch (error) {
      container.dataset.drawn = 'error';
      container.textContent = 'This plot could not be drawn: ' + error;
      console.error(error);
    }
  }

  let resizing = 0;
  window.addEventListener('resize', () => {
    cancelAnimationFrame(resizing);
    resizing = requestAnimationFrame(() => {
      for (const { chart, container } of charts)
        chart.setSize({ width: Math.max(320, container.clientWidth), height });
    });
  });
})();
`;
