// The qwen2.5-vl-7b FLOPs preset against the paper's Table 3 (method spec §4, §6.4): Qwen2.5-VL-7B's published config
// dims, the visual token count smart_resize gives the preset's 1024 x 768 image, Eq. 7 written out, and the percentages
// the paper reports for TransPrune (45.1%) and FastV (53.6%) under the schedules that produce them.
import { describe, expect, it } from 'vitest';
import { qwenTokenGrid } from '../../src/engine/image/qwen.js';
import { FLOPS_PRESETS, fullFlops, paperFlops, planPrefill } from '../../src/engine/pruning/flops.js';
import { parseMethod } from '../../src/shared/pruning.js';

const preset = FLOPS_PRESETS['qwen2.5-vl-7b'];
const eq7 = (n: number, d: number, m: number) => 4 * n * d * d + 2 * n * n * d + 3 * n * d * m;
const prompt = { textTokens: 64, instructionTokens: 20 };
const percent = (method: string) => {
  const { visualPerLayer } = planPrefill(parseMethod(method), preset, prompt);
  const d = preset.decoder;
  return (
    (100 * paperFlops(visualPerLayer, d.hidden, d.intermediate)) /
    paperFlops(Array(d.numLayers).fill(preset.visualTokens), d.hidden, d.intermediate)
  );
};

describe('qwen2.5-vl-7b FLOPs preset', () => {
  it("holds Qwen2.5-VL-7B-Instruct's dims and the 1024 x 768 image's tokens at the default max_pixels", () => {
    expect(preset.decoder).toEqual({ numLayers: 28, hidden: 3584, intermediate: 18944, numHeads: 28, numKvHeads: 4, vocab: 152064 });
    const defaults = { minPixels: 56 * 56, maxPixels: 28 * 28 * 1280, patchSize: 14, mergeSize: 2, temporalPatchSize: 2 };
    const grid = qwenTokenGrid(1024, 768, { ...defaults, rescaleFactor: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1] });
    expect(grid).toEqual({ rows: 27, cols: 37 });
    expect(preset.visualTokens).toBe(grid.rows * grid.cols);
    expect(preset.vision.tokensPerImage).toBe(preset.visualTokens * 4);
  });

  it('the unpruned paper count is Eq. 7 over 28 layers of N visual tokens', () => {
    const { visualPerLayer } = planPrefill(parseMethod('none'), preset, prompt);
    expect(paperFlops(visualPerLayer, 3584, 18944)).toBe(28 * eq7(999, 3584, 18944));
  });

  it("reproduces Table 3's ratios with the released absolute layers (7/9/12; FastV K=2 R=0.5), within 0.8 points", () => {
    expect(Math.abs(percent('transprune@7-12/7,9,12/0.875,0.625,0.125') - 45.1)).toBeLessThan(0.8);
    expect(Math.abs(percent('fastv') - 53.6)).toBeLessThan(0.8);
    // The depth-scaled preset prunes earlier (6/8/11 of 28): fewer FLOPs than the paper's row.
    expect(percent('transprune-high')).toBeLessThan(percent('transprune@7-12/7,9,12/0.875,0.625,0.125'));
  });

  it('the full count charges the Qwen ViT (windowed attention) and the merger', () => {
    const none = fullFlops(planPrefill(parseMethod('none'), preset, prompt), preset);
    const P = preset.vision.tokensPerImage;
    const dense = 2 * 32 * P * (4 * 1280 ** 2 + 3 * 3420 * 1280);
    const attention = 2 * (4 * 2 * P * P * 1280 + 28 * 2 * P * 64 * 1280);
    const patchEmbed = 2 * P * 3 * 2 * 14 * 14 * 1280;
    expect(none.vision).toBe(dense + attention + patchEmbed);
    expect(none.projector).toBe(2 * 999 * (5120 * 5120 + 5120 * 3584));
  });
});
