// The loss plot: a Vega-Lite line chart of training and validation loss by step, rendered to SVG by Vega's
// headless view (no browser or canvas needed).

import * as vega from 'vega';
import { compile, TopLevelSpec } from 'vega-lite';

export interface LossHistory {
  /** [step, loss] of every training step. */
  train: [number, number][];
  /** [step, loss] of every evaluation. */
  validation: [number, number][];
}

/** Averages consecutive training losses in windows, so a long run plots a few hundred points. */
function smooth(points: [number, number][], maxPoints: number): [number, number][] {
  const window = Math.max(1, Math.ceil(points.length / maxPoints));
  if (window === 1) return points;
  const out: [number, number][] = [];
  for (let i = 0; i < points.length; i += window) {
    const chunk = points.slice(i, i + window);
    out.push([chunk[chunk.length - 1][0], chunk.reduce((s, [, loss]) => s + loss, 0) / chunk.length]);
  }
  return out;
}

/** Renders the loss curves as an SVG document; `uniformLoss` (ln of the vocabulary size) is drawn as a reference line. */
export async function lossPlotSvg(history: LossHistory, title: string, uniformLoss: number): Promise<string> {
  const values = [
    ...smooth(history.train, 400).map(([step, loss]) => ({ step, loss, series: 'train' })),
    ...history.validation.map(([step, loss]) => ({ step, loss, series: 'validation' })),
  ];
  const x = { field: 'step', type: 'quantitative', title: 'step' } as const;
  const y = { field: 'loss', type: 'quantitative', title: 'cross-entropy loss (nats per character)', scale: { zero: false } } as const;
  const color = { field: 'series', type: 'nominal', title: null } as const;
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 640,
    height: 360,
    data: { values },
    layer: [
      { transform: [{ filter: "datum.series === 'train'" }], mark: { type: 'line', strokeWidth: 1.5 }, encoding: { x, y, color } },
      { transform: [{ filter: "datum.series === 'validation'" }], mark: { type: 'line', point: true, strokeWidth: 2.5 }, encoding: { x, y, color } },
      {
        data: { values: [{ loss: uniformLoss, label: `uniform guess: ln(vocab) = ${uniformLoss.toFixed(2)}` }] },
        layer: [
          { mark: { type: 'rule', strokeDash: [4, 4], color: 'gray' }, encoding: { y: { field: 'loss', type: 'quantitative' } } },
          { mark: { type: 'text', align: 'right', dy: -6, color: 'gray' }, encoding: { y: { field: 'loss', type: 'quantitative' }, x: { value: 636 }, text: { field: 'label' } } },
        ],
      },
    ],
  };
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
