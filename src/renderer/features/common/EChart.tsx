import { init, type EChartsCoreOption, type EChartsType } from 'echarts';
import { useEffect, useRef } from 'react';

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
    const observer = typeof ResizeObserver === 'undefined' ? undefined : new ResizeObserver(() => chart.current?.resize({ width: el.clientWidth || 480, height }));
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
