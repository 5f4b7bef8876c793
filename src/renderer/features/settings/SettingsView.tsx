import { useState } from 'react';
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
      className="grid max-w-xl grid-cols-[auto_1fr] items-center gap-x-4 gap-y-3 p-4"
      onSubmit={(e) => e.preventDefault()}
      aria-label="Preferences"
    >
      <h2 className="col-span-2 text-lg font-semibold">Settings</h2>

      <label htmlFor="settings-model">Model</label>
      <select
        id="settings-model"
        className={field}
        value={settings.modelId ?? ''}
        onChange={(e) => set({ modelId: e.target.value || undefined })}
      >
        <option value="">Built-in demo model</option>
        {models.map((m) => (
          <option key={m.id} value={m.id}>
            {m.name}
          </option>
        ))}
      </select>

      <label htmlFor="settings-provider">Execution provider</label>
      <select
        id="settings-provider"
        className={field}
        value={settings.provider}
        onChange={(e) => set({ provider: ProviderRequest.parse(e.target.value) })}
      >
        <option value="auto">Automatic (fastest that works)</option>
        {providers.map((p) => (
          <option key={p.name} value={p.name} disabled={Boolean(p.unavailable)}>
            {p.name}
            {p.unavailable ? ` (unavailable: ${p.unavailable})` : ''}
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

function NumberField({ id, label, value, min, max, step, onChange }: NumberFieldProps) {
  return (
    <>
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        type="number"
        className={`${field} w-32`}
        value={value}
        min={min}
        max={max}
        step={step}
        onChange={(e) => {
          const next = Number(e.target.value);
          if (e.target.value !== '' && Number.isFinite(next) && next >= min && next <= max) onChange(next);
        }}
      />
    </>
  );
}
