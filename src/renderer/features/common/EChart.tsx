import { BarChart, LineChart } from 'echarts/charts';
import { GridComponent, LegendComponent, TooltipComponent } from 'echarts/components';
import { init, use, type EChartsCoreOption, type EChartsType } from 'echarts/core';
import { SVGRenderer } from 'echarts/renderers';
import { useEffect, useRef } from 'react';

// Only the parts the inspector draws, so the bundle does not carry all of echarts.
use([BarChart, LineChart, GridComponent, LegendComponent, TooltipComponent, SVGRenderer]);

interface EChartProps {
  option: EChartsCoreOption;
  /** Read by screen readers in place of the drawing. */
  label: string;
  height?: number;
  className?: string;
}

/** An echarts chart (SVG renderer: crisp, themable with CSS, and testable in a DOM) that follows its container's width. */
export function EChart({ option, label, height = 220, className = '' }: EChartProps) {
  const element = useRef<HTMLDivElement>(null);
  const chart = useRef<EChartsType | null>(null);

  useEffect(() => {
    const el = element.current!;
    chart.current = init(el, undefined, { renderer: 'svg', height, width: el.clientWidth || 480 });
    const observer =
      typeof ResizeObserver === 'undefined'
        ? undefined
        : new ResizeObserver(() => chart.current?.resize({ width: el.clientWidth || 480, height }));
    observer?.observe(el);
    return () => {
      observer?.disconnect();
      chart.current?.dispose();
      chart.current = null;
    };
  }, [height]);

  useEffect(() => {
    chart.current?.setOption(option, { notMerge: true });
  }, [option]);

  return <div ref={element} role="img" aria-label={label} className={className} style={{ height }} />;
}
