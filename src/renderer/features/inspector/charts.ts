import type { EChartsCoreOption } from 'echarts/core';
import { flopsUnit } from '../common/format.js';
import type { TraceView } from './traceView.js';

/** The unit of the per-layer compute axis: the one the largest (unpruned) layer reads best in. */
export function layerFlopsUnit(view: TraceView): ReturnType<typeof flopsUnit> {
  return flopsUnit(Math.max(0, ...view.layerTflopsUnpruned));
}

/** Visual tokens (bars) and compute (lines, pruned and unpruned, in an auto unit) per decoder layer, with the selected layer marked. */
export function layerChartOption(view: TraceView, layer: number): EChartsCoreOption {
  const layers = view.visualCounts.map((_, i) => String(i + 1));
  const { unit, perTflop } = layerFlopsUnit(view);
  const inUnit = (tflops: number[]) => tflops.map((t) => Number((t * perTflop).toPrecision(4)));
  return {
    animation: false,
    grid: { left: 48, right: 56, top: 32, bottom: 32 },
    legend: { top: 0, textStyle: { color: '#888' } },
    tooltip: { trigger: 'axis' },
    xAxis: { type: 'category', data: layers, name: 'layer', nameLocation: 'middle', nameGap: 22 },
    yAxis: [
      { type: 'value', name: 'visual tokens', splitLine: { show: false } },
      { type: 'value', name: unit, splitLine: { show: false } },
    ],
    series: [
      {
        name: 'visual tokens',
        type: 'bar',
        data: view.visualCounts.map((count, i) => ({ value: count, itemStyle: { color: i === layer ? '#f59e0b' : '#0ea5e9' } })),
      },
      { name: unit, type: 'line', yAxisIndex: 1, data: inUnit(view.layerTflops), symbol: 'none', lineStyle: { color: '#10b981' } },
      {
        name: `${unit} unpruned`,
        type: 'line',
        yAxisIndex: 1,
        data: inUnit(view.layerTflopsUnpruned),
        symbol: 'none',
        lineStyle: { type: 'dashed', color: '#a3a3a3' },
      },
    ],
  };
}

/** Kept patches per grid row and per column at one layer: a flat histogram means no positional bias. */
export function histogramOption(histogram: { rows: number[]; cols: number[] }): EChartsCoreOption {
  const labels = histogram.rows.map((_, i) => String(i + 1));
  return {
    animation: false,
    grid: { left: 48, right: 12, top: 32, bottom: 40 },
    legend: { top: 0, textStyle: { color: '#888' } },
    tooltip: { trigger: 'axis' },
    xAxis: { type: 'category', data: labels, name: 'row (top to bottom) or column (left to right)', nameLocation: 'middle', nameGap: 24 },
    yAxis: { type: 'value', minInterval: 1, name: 'kept patches', nameLocation: 'middle', nameGap: 32 },
    series: [
      { name: 'by row', type: 'bar', data: histogram.rows, itemStyle: { color: '#6366f1' } },
      { name: 'by column', type: 'bar', data: histogram.cols, itemStyle: { color: '#f43f5e' } },
    ],
  };
}
