import { useEffect, useState } from 'react';
import { ProviderRequest, type ExecutionProvider } from '../../../shared/providers.js';
import { parseMethod, parseSchedule } from '../../../shared/pruning.js';
import type { AppSettings, Sampling } from '../../../shared/settings.js';
import { MethodSelect } from './methods.js';

export interface ProviderOption {
  name: ExecutionProvider;
  /** Why it cannot be chosen (failed to load on this machine). */
  unavailable?: string;
}

/** The sampling settings, each a number field with its range. */
const SAMPLING_FIELDS: { key: keyof Sampling; label: string; min: number; max: number; step: number }[] = [
  { key: 'temperature', label: 'Temperature (0 = greedy)', min: 0, max: 2, step: 0.1 },
  { key: 'topP', label: 'Top-p', min: 0.05, max: 1, step: 0.05 },
  { key: 'maxTokens', label: 'Max new tokens', min: 1, max: 4096, step: 1 },
  { key: 'seed', label: 'Seed', min: 0, max: 2 ** 31 - 1, step: 1 },
];

interface SettingsViewProps {
  settings: AppSettings;
  models: { id: string; name: string }[];
  providers: ProviderOption[];
  /** Called with every valid change; the container saves it. */
  onChange(settings: AppSettings): void;
}

const field = 'rounded-md border border-zinc-300 bg-white px-2 py-1 text-sm dark:border-zinc-600 dark:bg-zinc-900';

/** Model, execution provider, pruning method (schedule, alpha) and sampling. Remembered by the container. */
export function SettingsView({ settings, models, providers, onChange }: SettingsViewProps) {
  const kind = parseMethod(settings.method).llm.kind;
  const set = (patch: Partial<AppSettings>) => onChange({ ...settings, ...patch });
  const setSampling = (patch: Partial<Sampling>) => set({ sampling: { ...settings.sampling, ...patch } });

  return (
    <form
      className="grid max-w-xl grid-cols-[auto_minmax(0,1fr)] items-center gap-x-4 gap-y-3 p-4"
      onSubmit={(e) => e.preventDefault()}
      aria-label="Preferences"
    >
      <h2 className="col-span-2 text-lg font-semibold">Settings</h2>

      <label htmlFor="settings-model">Model</label>
      {models.length > 0 ? (
        <select
          id="settings-model"
          className={`${field} min-w-0`}
          value={(models.find((m) => m.id === settings.modelId) ?? models[0]).id}
          onChange={(e) => set({ modelId: e.target.value })}
        >
          {models.map((m) => (
            <option key={m.id} value={m.id}>
              {m.name}
            </option>
          ))}
        </select>
      ) : (
        <p id="settings-model" className="text-sm text-zinc-500">
          No model installed yet: add one under Models.
        </p>
      )}

      <label htmlFor="settings-provider">Execution provider</label>
      <select
        id="settings-provider"
        className={`${field} min-w-0`}
        value={settings.provider}
        onChange={(e) => set({ provider: ProviderRequest.parse(e.target.value) })}
      >
        <option value="auto">Automatic (fastest that works)</option>
        {providers.map((p) => (
          // The reason a provider does not load can be long (a library path): it shows as the option's tooltip.
          <option key={p.name} value={p.name} disabled={Boolean(p.unavailable)} title={p.unavailable}>
            {p.name}
            {p.unavailable ? ' (does not load here)' : ''}
          </option>
        ))}
      </select>

      <label htmlFor="settings-method">Pruning method</label>
      <MethodSelect id="settings-method" label="Pruning method" value={settings.method} onChange={(method) => set({ method })} />

      {(kind === 'transprune' || kind === 'random') && <ScheduleField settings={settings} onChange={(schedule) => set({ schedule })} />}

      {kind === 'transprune' && (
        <>
          <label htmlFor="settings-alpha">α (TTV weight)</label>
          <div className="flex items-center gap-2">
            <input
              id="settings-alpha"
              type="range"
              min={0}
              max={1}
              step={0.05}
              value={settings.alpha}
              onChange={(e) => set({ alpha: Number(e.target.value) })}
              className="flex-1 accent-sky-600"
            />
            <output htmlFor="settings-alpha" className="w-10 font-mono text-sm">
              {settings.alpha.toFixed(2)}
            </output>
          </div>
        </>
      )}

      <NumberField
        id="settings-max-visual-tokens"
        label="Image tokens, most (Qwen2.5-VL; 0 = the model's)"
        value={settings.maxVisualTokens}
        min={0}
        max={16384}
        step={1}
        onChange={(maxVisualTokens) => set({ maxVisualTokens })}
      />

      <h3 className="col-span-2 mt-2 font-medium">Sampling</h3>
      {SAMPLING_FIELDS.map(({ key, label, min, max, step }) => (
        <NumberField
          key={key}
          id={`settings-${key}`}
          label={label}
          value={settings.sampling[key]}
          min={min}
          max={max}
          step={step}
          onChange={(value) => setSampling({ [key]: value })}
        />
      ))}
    </form>
  );
}

/** The schedule as `accumulate/prune/ratios` text; committed only when it parses, otherwise the error shows inline. */
function ScheduleField({ settings, onChange }: { settings: AppSettings; onChange(schedule: string | undefined): void }) {
  const [text, setText] = useState(settings.schedule ?? '');
  const [error, setError] = useState<string | null>(null);
  function edit(value: string) {
    setText(value);
    if (value.trim() === '') {
      setError(null);
      return onChange(undefined);
    }
    try {
      parseSchedule(value.trim());
      setError(null);
      onChange(value.trim());
    } catch (err) {
      setError((err as Error).message);
    }
  }
  return (
    <>
      <label htmlFor="settings-schedule">Schedule</label>
      <div className="flex flex-col gap-1">
        <input
          id="settings-schedule"
          className={`${field} font-mono`}
          value={text}
          placeholder="preset (e.g. 7-12/7,9,12/0.875,0.625,0.125)"
          aria-invalid={error !== null}
          aria-describedby="settings-schedule-help"
          onChange={(e) => edit(e.target.value)}
        />
        <p id="settings-schedule-help" className={`text-xs ${error ? 'text-red-600' : 'text-zinc-500'}`}>
          {error ?? 'Accumulate layers / prune layers / keep ratios of the original tokens (1-based). Empty uses the preset.'}
        </p>
      </div>
    </>
  );
}

interface NumberFieldProps {
  id: string;
  label: string;
  value: number;
  min: number;
  max: number;
  step: number;
  onChange(value: number): void;
}

/** A number setting: what is typed stays in the box; a valid value is saved, anything else says why it is not. */
function NumberField({ id, label, value, min, max, step, onChange }: NumberFieldProps) {
  const [text, setText] = useState(String(value));
  const [error, setError] = useState<string | null>(null);
  const integer = Number.isInteger(step);
  // A value saved elsewhere (or loaded later) replaces what is shown, unless the box holds an edit that is not a number yet.
  useEffect(
    () => setText((shown) => (numberProblem(shown, { min, max, integer }) === null ? String(value) : shown)),
    [value, min, max, integer],
  );
  function edit(next: string) {
    setText(next);
    const problem = numberProblem(next, { min, max, integer });
    setError(problem);
    if (!problem) onChange(Number(next));
  }
  const errorId = `${id}-error`;
  return (
    <>
      <label htmlFor={id}>{label}</label>
      <div className="flex flex-wrap items-center gap-2">
        <input
          id={id}
          type="number"
          className={`${field} w-32 ${error ? 'border-red-500' : ''}`}
          value={text}
          min={min}
          max={max}
          step={step}
          aria-invalid={error !== null}
          aria-describedby={error ? errorId : undefined}
          onChange={(e) => edit(e.target.value)}
        />
        {error && (
          <span id={errorId} data-testid={errorId} role="alert" className="text-xs text-red-600">
            {error}
          </span>
        )}
      </div>
    </>
  );
}

/** Why a typed number cannot be used, or null when it can. */
export function numberProblem(text: string, { min, max, integer }: { min: number; max: number; integer: boolean }): string | null {
  if (text.trim() === '') return 'Enter a number.';
  const value = Number(text);
  if (!Number.isFinite(value)) return 'Enter a number.';
  if (integer && !Number.isInteger(value)) return `Enter a whole number between ${min} and ${max}.`;
  if (value < min || value > max) return `Enter a number between ${min} and ${max}.`;
  return null;
}
