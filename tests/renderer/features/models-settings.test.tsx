import { cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { chatMethod, DEFAULT_SETTINGS, maxPixelsOf, type AppSettings } from '../../../src/shared/settings.js';
import type { ImportPlan } from '../../../src/shared/dtypes.js';
import { CATALOGUE, catalogueItem } from '../../../src/shared/catalogue.js';
import { ModelsView, type ModelCard } from '../../../src/renderer/features/models/ModelsView.js';
import { SettingsView } from '../../../src/renderer/features/settings/SettingsView.js';

afterEach(cleanup);

const models: ModelCard[] = [
  { id: 'demo', name: 'TransPrune demo', capabilities: ['vision', 'transprune'], builtIn: true, detail: 'LLaVA-1.5 · 8 layers' },
  { id: 'llava-7b', name: 'LLaVA-1.5 7B', capabilities: ['vision'], sizeBytes: 14_100_000_000 },
];

function modelsProps(overrides = {}) {
  return {
    models,
    activeId: 'demo',
    onUse: vi.fn(),
    onRemove: vi.fn(),
    onPlan: vi.fn(),
    onCancelPlan: vi.fn(),
    onImport: vi.fn(),
    onCancelImport: vi.fn(),
    importTask: {},
    onDownload: vi.fn(),
    onCancelDownload: vi.fn(),
    downloadTask: {},
    online: true,
    ...overrides,
  };
}

describe('models view', () => {
  it('lists models with capability badges; the demo cannot be removed, others after confirming', () => {
    const p = modelsProps();
    render(<ModelsView {...p} />);
    const demo = screen.getByRole('listitem', { name: 'TransPrune demo' });
    expect(within(demo).getByRole('list', { name: 'Capabilities' }).textContent).toBe('built-in demovisiontransprune');
    expect(within(demo).queryByRole('button', { name: /Remove/ })).toBeNull();
    const big = screen.getByRole('listitem', { name: 'LLaVA-1.5 7B' });
    expect(big.textContent).toContain('14.1 GB');
    fireEvent.click(within(big).getByRole('button', { name: 'Remove LLaVA-1.5 7B…' }));
    fireEvent.click(within(big).getByRole('button', { name: 'Remove LLaVA-1.5 7B' }));
    expect(p.onRemove).toHaveBeenCalledWith('llava-7b');
    fireEvent.click(within(big).getByRole('button', { name: 'Use' }));
    expect(p.onUse).toHaveBeenCalledWith('llava-7b');
  });

  it('imports with progress and cancel, and shows import errors', () => {
    const p = modelsProps({ importTask: { progress: { done: 3, total: 12, message: 'Converting layer 3 of 12' } } });
    const { rerender } = render(<ModelsView {...p} />);
    const bar = screen.getByRole('progressbar', { name: 'Import progress' });
    expect(bar.getAttribute('aria-valuenow')).toBe('25');
    expect(screen.getByText('Converting layer 3 of 12')).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Cancel' }));
    expect(p.onCancelImport).toHaveBeenCalled();
    const next = modelsProps({ importTask: { error: 'config.json: unknown model_type "mamba"' } });
    rerender(<ModelsView {...next} />);
    expect(screen.getByRole('alert').textContent).toContain('mamba');
    expect((screen.getByRole('button', { name: 'Import' }) as HTMLButtonElement).disabled).toBe(true);
    fireEvent.change(screen.getByLabelText('Checkpoint folder or GGUF file'), { target: { value: ' /models/llava-1.5-7b-hf ' } });
    fireEvent.click(screen.getByRole('button', { name: 'Import' }));
    expect(next.onPlan).toHaveBeenCalledWith('/models/llava-1.5-7b-hf');
    expect(next.onImport).not.toHaveBeenCalled(); // nothing is written before a precision is chosen
  });

  it('offers every precision with its size on disk and memory, the one for this computer first, before anything is written', () => {
    const GB = 1e9;
    const plan: ImportPlan = {
      path: '/models/llava-1.5-7b-hf',
      parameters: 7_063_427_072,
      architecture: 'LLaVA-1.5: CLIP ViT (24 layers) + Llama (32 layers, hidden 4096)',
      footprints: [
        { dtype: 'int4', diskBytes: 4.2 * GB, memoryBytes: 5.9 * GB },
        { dtype: 'int8', diskBytes: 7.6 * GB, memoryBytes: 9.3 * GB },
        { dtype: 'fp16', diskBytes: 14.1 * GB, memoryBytes: 29.9 * GB },
        { dtype: 'fp32', diskBytes: 28.2 * GB, memoryBytes: 29.9 * GB },
      ],
      recommended: 'int4',
      machineMemoryBytes: 16 * GB,
    };
    const p = modelsProps({ importPlan: { plan } });
    render(<ModelsView {...p} />);
    const form = screen.getByRole('form', { name: 'Import precision' });
    const option = (dtype: string) => form.querySelector(`[data-dtype="${dtype}"]`)!.textContent!;
    expect(option('int4')).toBe('int44.2 GB on disk · needs about 5.9 GB of memory · smallest; a little less accurate · recommended here');
    expect(option('fp32')).toMatch(/28\.2 GB on disk · needs about 29\.9 GB of memory .*· more memory than this computer has$/);
    expect((within(form).getByRole('radio', { name: /^int4/ }) as HTMLInputElement).checked).toBe(true);
    expect(within(form).getByText(/this computer has 16\.0 GB of memory/)).toBeTruthy();
    fireEvent.click(within(form).getByRole('radio', { name: /^int8/ }));
    fireEvent.click(within(form).getByRole('button', { name: 'Import as int8' }));
    expect(p.onImport).toHaveBeenCalledWith('/models/llava-1.5-7b-hf', 'int8');
    fireEvent.click(within(form).getByRole('button', { name: 'Back' }));
    expect(p.onCancelPlan).toHaveBeenCalled();
  });

  it('verifies a model: progress on its row, then intact with the time, or which files are damaged and what to do', () => {
    const checkedAt = new Date(2026, 11, 1, 14, 5).getTime();
    const onVerify = vi.fn();
    const p = modelsProps({ onVerify, checks: { 'llava-7b': { progress: { done: 50, total: 200, message: 'verifying layer_03.bin' } } } });
    const { rerender } = render(<ModelsView {...p} />);
    const big = screen.getByRole('listitem', { name: 'LLaVA-1.5 7B' });
    expect(within(big).getByRole('progressbar', { name: 'Verifying LLaVA-1.5 7B' }).getAttribute('aria-valuenow')).toBe('25');
    expect((within(big).getByRole('button', { name: 'Verify' }) as HTMLButtonElement).disabled).toBe(true);
    const demo = screen.getByRole('listitem', { name: 'TransPrune demo' });
    fireEvent.click(within(demo).getByRole('button', { name: 'Verify' }));
    expect(onVerify).toHaveBeenCalledWith('demo');

    const intact = { ok: true, damaged: [], files: 12, bytes: 14_100_000_000, checkedAt };
    rerender(<ModelsView {...modelsProps({ onVerify: vi.fn(), checks: { 'llava-7b': { result: intact } } })} />);
    expect(within(big).getByRole('status').textContent).toMatch(/^Verified at (0?2:05\sPM|14:05): /);
    expect(within(big).getByRole('status').textContent).toContain('all 12 weight files (14.1 GB) match the hashes recorded at import');
    expect((within(big).getByRole('button', { name: 'Verify' }) as HTMLButtonElement).disabled).toBe(false);

    const damaged = {
      ok: false,
      damaged: [
        { file: 'layer_01.bin', reason: 'changed' as const },
        { file: 'head.bin', reason: 'missing' as const },
      ],
      files: 12,
      bytes: 14_100_000_000,
      checkedAt,
    };
    rerender(<ModelsView {...modelsProps({ onVerify: vi.fn(), checks: { 'llava-7b': { result: damaged } } })} />);
    const alert = within(big).getByRole('alert').textContent;
    expect(alert).toContain('2 of 12 weight files do not match the hashes recorded at import');
    expect(alert).toContain('layer_01.bin has changed since the import');
    expect(alert).toContain('head.bin is missing or unreadable');
    expect(alert).toContain('remove this model and import its checkpoint folder again');
    expect(within(demo).queryByRole('alert')).toBeNull();
  });

  it('says how to add models where the host cannot import or download', () => {
    render(<ModelsView models={[]} onUse={() => {}} />);
    expect(screen.getByText(/npm run cli -- import/)).toBeTruthy();
    expect(screen.getByText(/not available in this build/)).toBeTruthy();
    expect(screen.getByText(/No models yet/)).toBeTruthy();
  });

  it('shows the catalogue with sizes, licence and fit; Download asks for the entry (its named files for a GGUF pair)', () => {
    const sixteenGb = 16 * 1024 ** 3;
    const catalogue = CATALOGUE.map((entry) =>
      catalogueItem(entry, sixteenGb, entry.format === 'gguf' ? { bytes: 4_700_000_000, files: 2 } : undefined),
    );
    const p = modelsProps({ catalogue });
    const { rerender } = render(<ModelsView {...p} />);
    const cards = within(screen.getByRole('list', { name: 'Model catalogue' })).getAllByRole('listitem');
    expect(cards).toHaveLength(CATALOGUE.length);
    const gguf = screen.getByRole('listitem', { name: 'LLaVA-1.5 7B (GGUF Q4_K)' });
    expect(within(gguf).getByTestId('download-size').textContent).toBe('Download 4.7 GB in 2 files');
    const llava13 = screen.getByRole('listitem', { name: 'LLaVA-1.5 13B' });
    expect(llava13.textContent).toContain('Too large for this computer');
    expect(llava13.textContent).toContain('Download about 26.7 GB (estimated: the hub did not answer)');
    fireEvent.click(within(gguf).getByRole('button', { name: 'Download LLaVA-1.5 7B (GGUF Q4_K)' }));
    expect(p.onDownload).toHaveBeenCalledWith({
      repoId: 'mys/ggml_llava-v1.5-7b',
      files: ['ggml-model-q4_k.gguf', 'mmproj-model-f16.gguf'],
      name: 'LLaVA-1.5 7B (GGUF Q4_K)',
    });
    // Its progress shows in its own card (which may be far down the list), with cancel.
    rerender(<ModelsView {...p} downloadTask={{ progress: { done: 1, total: 4, message: 'Downloading ggml-model-q4_k.gguf' } }} />);
    expect(within(gguf).getByRole('progressbar', { name: 'Downloading LLaVA-1.5 7B (GGUF Q4_K)' })).toBeTruthy();
    expect(screen.queryByRole('progressbar', { name: 'Download progress' })).toBeNull();
    fireEvent.click(within(gguf).getByRole('button', { name: /Cancel/ }));
    expect(p.onCancelDownload).toHaveBeenCalled();
  });

  it('downloads only a well-formed repo id, and explains being offline', () => {
    const p = modelsProps();
    const { rerender } = render(<ModelsView {...p} />);
    const input = screen.getByLabelText('Repository id');
    fireEvent.change(input, { target: { value: 'not a repo' } });
    expect((screen.getByRole('button', { name: 'Download' }) as HTMLButtonElement).disabled).toBe(true);
    expect(screen.getByText('A repository id looks like owner/name.')).toBeTruthy();
    fireEvent.change(input, { target: { value: ' llava-hf/llava-1.5-7b-hf ' } });
    fireEvent.click(screen.getByRole('button', { name: 'Download' }));
    expect(p.onDownload).toHaveBeenCalledWith({ repoId: 'llava-hf/llava-1.5-7b-hf', name: 'llava-hf/llava-1.5-7b-hf' });
    rerender(<ModelsView {...modelsProps({ online: false })} />);
    expect(screen.getByRole('note').textContent).toContain('You are offline');
    expect((screen.getByLabelText('Repository id') as HTMLInputElement).disabled).toBe(true);
  });
});

describe('settings view', () => {
  function setup(settings: AppSettings = DEFAULT_SETTINGS) {
    const onChange = vi.fn();
    const result = render(
      <SettingsView
        settings={settings}
        models={[{ id: 'demo', name: 'Demo' }]}
        providers={[{ name: 'cpu' }, { name: 'webgpu', unavailable: 'no adapter' }]}
        onChange={onChange}
      />,
    );
    return { onChange, ...result };
  }

  it('changes method, alpha and sampling, and hides TransPrune options for other methods', () => {
    const { onChange, rerender } = setup();
    fireEvent.change(screen.getByLabelText('α (TTV weight)'), { target: { value: '0.75' } });
    expect(onChange).toHaveBeenLastCalledWith({ ...DEFAULT_SETTINGS, alpha: 0.75 });
    fireEvent.change(screen.getByLabelText('Temperature (0 = greedy)'), { target: { value: '0.7' } });
    expect(onChange.mock.lastCall![0].sampling).toEqual({ ...DEFAULT_SETTINGS.sampling, temperature: 0.7 });
    fireEvent.change(screen.getByLabelText('Temperature (0 = greedy)'), { target: { value: '9' } });
    expect(onChange).toHaveBeenCalledTimes(2);
    fireEvent.change(screen.getByLabelText('Pruning method'), { target: { value: 'fastv' } });
    expect(onChange.mock.lastCall![0].method).toBe('fastv');
    rerender(<SettingsView settings={{ ...DEFAULT_SETTINGS, method: 'fastv' }} models={[]} providers={[]} onChange={onChange} />);
    expect(screen.queryByLabelText('α (TTV weight)')).toBeNull();
    expect(screen.queryByLabelText('Schedule')).toBeNull();
  });

  it('validates the schedule inline and commits only valid ones', () => {
    const { onChange } = setup();
    const field = screen.getByLabelText('Schedule');
    fireEvent.change(field, { target: { value: '7-12/7,9' } });
    expect(field.getAttribute('aria-invalid')).toBe('true');
    expect(onChange).not.toHaveBeenCalled();
    fireEvent.change(field, { target: { value: '3-5/3,5/0.5,0.25' } });
    expect(onChange).toHaveBeenLastCalledWith({ ...DEFAULT_SETTINGS, schedule: '3-5/3,5/0.5,0.25' });
    expect(chatMethod({ ...DEFAULT_SETTINGS, schedule: '3-5/3,5/0.5,0.25', alpha: 0.25 }).llm).toMatchObject({
      kind: 'transprune',
      alpha: 0.25,
      schedule: { accumulate: [3, 4, 5], prune: [3, 5], ratios: [0.5, 0.25] },
    });
  });

  it('a number field keeps what was typed and says why it is not used', () => {
    const { onChange } = setup();
    const field = screen.getByLabelText('Max new tokens') as HTMLInputElement;
    fireEvent.change(field, { target: { value: '5000' } });
    expect(field.value).toBe('5000');
    expect(field.getAttribute('aria-invalid')).toBe('true');
    expect(screen.getByRole('alert').textContent).toBe('Enter a number between 1 and 4096.');
    fireEvent.change(field, { target: { value: '2.5' } });
    expect(screen.getByRole('alert').textContent).toBe('Enter a whole number between 1 and 4096.');
    fireEvent.change(field, { target: { value: '' } });
    expect(screen.getByRole('alert').textContent).toBe('Enter a number.');
    expect(onChange).not.toHaveBeenCalled();
    fireEvent.change(field, { target: { value: '64' } });
    expect(onChange.mock.lastCall![0].sampling.maxTokens).toBe(64);
    expect(screen.queryByRole('alert')).toBeNull();
  });

  it("the visual-token budget (Qwen2.5-VL): 0 keeps the model's own, n tokens ask for at most n x 784 pixels", () => {
    const { onChange } = setup();
    expect(DEFAULT_SETTINGS.maxVisualTokens).toBe(0);
    expect(maxPixelsOf(DEFAULT_SETTINGS)).toBeUndefined();
    fireEvent.change(screen.getByLabelText("Image tokens, most (Qwen2.5-VL; 0 = the model's)"), { target: { value: '256' } });
    const saved = onChange.mock.lastCall![0];
    expect(saved.maxVisualTokens).toBe(256);
    expect(maxPixelsOf(saved)).toBe(256 * 28 * 28);
  });

  it('names only installed models, and says when there is none', () => {
    setup();
    expect([...(screen.getByLabelText('Model') as HTMLSelectElement).options].map((o) => o.textContent)).toEqual(['Demo']);
    cleanup();
    render(<SettingsView settings={DEFAULT_SETTINGS} models={[]} providers={[]} onChange={() => {}} />);
    expect(screen.getByText('No model installed yet: add one under Models.')).toBeTruthy();
  });

  it('offers only providers that load', () => {
    setup();
    const webgpu = screen.getByRole('option', { name: /webgpu/ }) as HTMLOptionElement;
    expect(webgpu.disabled).toBe(true);
    expect(webgpu.textContent).toBe('webgpu (does not load here)'); // short enough for a narrow window
    expect(webgpu.title).toBe('no adapter');
  });
});
