import * as echarts from 'echarts';
import sharp from 'sharp';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/files.js';
import type { EvalReport } from './harness.js';

/** The evaluation's outputs: eval.json (everything), eval.md (the table), eval.png (accuracy against TFLOPs). */

export interface ReportContext {
  command: string;
  data: string;
  createdAt: string;
}

export async function writeReport(dir: string, report: EvalReport, context: ReportContext): Promise<string[]> {
  const files = { json: join(dir, 'eval.json'), md: join(dir, 'eval.md'), png: join(dir, 'eval.png') };
  await writeFileAtomic(files.json, `${JSON.stringify({ ...context, ...report }, null, 1)}\n`);
  await writeFileAtomic(
    files.md,
    `${markdownTable(report)}\n\nMade by \`${context.command}\` on ${context.createdAt}; data: ${context.data}; model ${report.model.id} (${report.model.numLayers} layers) on ${report.provider}.\n`,
  );
  await writeFileAtomic(files.png, await chartPng(report));
  return Object.values(files);
}

/** Methods as rows: accuracy overall and per family, visual tokens kept, TFLOPs in both conventions, prefill time. */
export function markdownTable(report: EvalReport): string {
  const families = [...new Set(report.methods.flatMap((m) => Object.keys(m.perFamily)))].sort();
  const withErrors = report.methods.some((m) => m.errors > 0);
  const header = [
    'method',
    'accuracy %',
    ...families.map((f) => `${f} %`),
    'visual kept',
    'TFLOPs (paper)',
    'TFLOPs (full)',
    'prefill ms',
    ...(withErrors ? ['errors'] : []),
  ];
  const rows = report.methods.map((m) => [
    m.method,
    percent(m.overall.accuracy),
    ...families.map((f) => (m.perFamily[f] ? percent(m.perFamily[f].accuracy) : '-')),
    m.meanVisualKept.toFixed(0),
    m.tflopsPaper.toPrecision(3),
    m.tflopsFull.toPrecision(3),
    m.meanPrefillMs.toFixed(1),
    ...(withErrors ? [String(m.errors)] : []),
  ]);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map((_, i) => (i === 0 ? '---' : '---:'))), ...rows.map(line)].join('\n');
}

/** One point per method (a legend names them): accuracy against the prefill's real TFLOPs. Rendered server-side to SVG, then PNG. */
export async function chartPng(report: EvalReport, width = 1000, height = 560): Promise<Buffer> {
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width, height });
  chart.setOption({
    animation: false,
    backgroundColor: '#ffffff',
    title: {
      text: `Accuracy against prefill compute (${report.model.id}, ${report.items} questions)`,
      left: 'center',
      textStyle: { fontSize: 15 },
    },
    grid: { left: 70, right: 300, top: 60, bottom: 60 },
    xAxis: { type: 'value', name: 'prefill TFLOPs (full count, 2 per MAC)', nameLocation: 'middle', nameGap: 32, scale: true },
    yAxis: { type: 'value', name: 'exact match %', nameLocation: 'middle', nameGap: 45, scale: true, max: 100 },
    legend: { orient: 'vertical', left: width - 270, top: 'middle', textStyle: { fontSize: 12, width: 250, overflow: 'break' } },
    // One series per point, so the legend names each method in its colour and no labels collide.
    series: chartPoints(report).map((p) => ({ type: 'scatter', name: p.name, symbolSize: 12, data: [p.value] })),
  });
  const svg = chart.renderToSVGString();
  chart.dispose();
  return sharp(Buffer.from(svg)).png().toBuffer();
}

/** Methods that land on the same point (same kept counts, same accuracy) share one label. */
function chartPoints(report: EvalReport): Array<{ name: string; value: [number, number] }> {
  const points = new Map<string, { name: string; value: [number, number] }>();
  for (const m of report.methods) {
    const value: [number, number] = [m.tflopsFull, 100 * m.overall.accuracy];
    const key = value.map((v) => v.toPrecision(6)).join();
    const point = points.get(key);
    if (point) point.name += ` / ${m.method}`;
    else points.set(key, { name: m.method, value });
  }
  return [...points.values()];
}

function percent(x: number): string {
  return (100 * x).toFixed(1);
}
