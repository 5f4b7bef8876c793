import { useState } from 'react';
import { parseMethod } from '../../../shared/pruning.js';

/**
 * The pruning methods offered in pickers, as CLI method strings (src/shared/pruning.ts parses them).
 * Preset labels carry no token counts: the schedule scales with the model's depth and a pack may
 * override it, so the counts belong to the inspector, which shows those of the run.
 */
export interface MethodChoice {
  value: string;
  label: string;
}

export const METHOD_CHOICES: MethodChoice[] = [
  { value: 'none', label: 'No pruning' },
  { value: 'transprune-high', label: 'TransPrune High' },
  { value: 'transprune-low', label: 'TransPrune Low' },
  { value: 'ttv', label: 'TransPrune, TTV only (α = 1)' },
  { value: 'iga', label: 'TransPrune, IGA only (α = 0)' },
  { value: 'fastv', label: 'FastV (K = 2, R = 50%)' },
  { value: 'pdrop', label: 'PDrop (4 stages, λ = 0.5)' },
  { value: 'random', label: 'Random, TransPrune High budget' },
  { value: 'divprune:ratio=0.5', label: 'DivPrune, half the tokens' },
  { value: 'divprune:ratio=0.5+transprune-high', label: 'DivPrune half + TransPrune High' },
];

/** The choices, plus `current` when it is a custom method string not in the list. */
export function choicesWith(current: string): MethodChoice[] {
  return METHOD_CHOICES.some((c) => c.value === current) ? METHOD_CHOICES : [...METHOD_CHOICES, { value: current, label: current }];
}

const CUSTOM = '__custom__';

/** A method picker: the common choices, or any method string the CLI accepts (checked as it is typed). */
export function MethodSelect({ id, value, onChange, label }: { id: string; value: string; onChange(value: string): void; label: string }) {
  const [custom, setCustom] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const field = 'rounded-md border border-zinc-300 bg-white px-2 py-1 text-sm dark:border-zinc-600 dark:bg-zinc-900';

  function editCustom(text: string) {
    setCustom(text);
    try {
      parseMethod(text);
      setError(null);
      onChange(text.trim());
    } catch (err) {
      setError((err as Error).message);
    }
  }

  return (
    <span className="inline-flex flex-wrap items-center gap-2">
      <select
        id={id}
        aria-label={label}
        value={custom === null ? value : CUSTOM}
        onChange={(e) => {
          if (e.target.value === CUSTOM) return setCustom(value);
          setCustom(null);
          setError(null);
          onChange(e.target.value);
        }}
        className={field}
      >
        {choicesWith(value).map((c) => (
          <option key={c.value} value={c.value}>
            {c.label}
          </option>
        ))}
        <option value={CUSTOM}>Custom…</option>
      </select>
      {custom !== null && (
        <input
          aria-label={`${label}, as a method string`}
          aria-invalid={error !== null}
          title={error ?? 'e.g. fastv:k=3,r=0.75 or divprune:ratio=0.25+transprune-low'}
          value={custom}
          onChange={(e) => editCustom(e.target.value)}
          className={`${field} font-mono ${error ? 'border-red-500' : ''}`}
        />
      )}
    </span>
  );
}
