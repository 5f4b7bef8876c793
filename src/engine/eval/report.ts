import * as echarts from 'echarts';
import sharp from 'sharp';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/files.js';
import type { EvalReport } from './harness.js';
import { positionStats } from './positions.js';

/**
 * The evaluation's outputs: eval.json (everything), eval.md (the table), eval.png (accuracy against
 * TFLOPs), and with positions, positions.png (where the kept tokens sit) and its table in eval.md.
 */

export interface ReportContext {
  command: string;
  data: string;
  createdAt: string;
}

export async function writeReport(dir: string, report: EvalReport, context: ReportContext): Promise<string[]> {
  const files: Record<string, string> = { json: join(dir, 'eval.json'), md: join(dir, 'eval.md'), png: join(dir, 'eval.png') };
  await writeFileAtomic(files.json, `${JSON.stringify({ ...context, ...report }, null, 1)}\n`);
  const tables = [markdownTable(report), ...(report.positions ? [positionsTable(report)] : [])].join('\n\n');
  await writeFileAtomic(
    files.md,
    `${tables}\n\nMade by \`${context.command}\` on ${context.createdAt}; data: ${context.data}; model ${report.model.id} (${report.model.numLayers} layers) on ${report.provider}.\n`,
  );
  await writeFileAtomic(files.png, await chartPng(report));
  if (report.positions) {
    files.positions = join(dir, 'positions.png');
    await writeFileAtomic(files.positions, await positionsPng(report));
  }
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

/** Per method, the positional-bias measures of method spec §7.2 over the tokens kept after the last stage. */
export function positionsTable(report: EvalReport): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const rows = Object.entries(report.positions ?? {}).map(([method, positions]) => {
    const s = positionStats(positions);
    return [method, percent(s.edgeRowShare), s.relativeEntropy.toFixed(3), s.centroidOffset.toFixed(2)];
  });
  const header = ['method (tokens kept after the last stage)', 'first + last row %', 'entropy / uniform', 'centroid offset (patches)'];
  return [line(header), line(header.map((_, i) => (i === 0 ? '---' : '---:'))), ...rows.map(line)].join('\n');
}

/** Share of the kept tokens per grid row, one line per method. */
export async function positionsPng(report: EvalReport, width = 1000, height = 520): Promise<Buffer> {
  const entries = Object.entries(report.positions ?? {});
  const rows = entries.length > 0 ? entries[0][1].counts.length / entries[0][1].gridCols : 0;
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width, height });
  chart.setOption({
    animation: false,
    backgroundColor: '#ffffff',
    title: {
      text: `Where the kept visual tokens sit (${report.model.id}, ${report.items} questions)`,
      left: 'center',
      textStyle: { fontSize: 15 },
    },
    grid: { left: 70, right: 220, top: 60, bottom: 60 },
    xAxis: {
      type: 'category',
      name: 'image row of the patch grid (0 = top)',
      nameLocation: 'middle',
      nameGap: 32,
      data: [...Array(rows).keys()],
    },
    yAxis: { type: 'value', name: 'share of kept tokens %', nameLocation: 'middle', nameGap: 45 },
    legend: { orient: 'vertical', left: width - 200, top: 'middle' },
    series: entries.map(([method, positions]) => ({
      type: 'line',
      name: method,
      showSymbol: false,
      lineStyle: { width: 2 },
      data: positionStats(positions).rowShares.map((s) => +(100 * s).toFixed(3)),
    })),
  });
  const svg = chart.renderToSVGString();
  chart.dispose();
  return sharp(Buffer.from(svg)).png().toBuffer();
}

function percent(x: number): string {
  return (100 * x).toFixed(1);
}
