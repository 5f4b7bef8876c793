import { useState, type FormEvent } from 'react';
import type { CatalogueItem } from '../../../shared/catalogue.js';
import type { ImportPlan, WeightDtype } from '../../../shared/dtypes.js';
import type { ModelDetails } from '../../../shared/ipc.js';
import type { PackVerification } from '../../../shared/ipc-features.js';
import { formatBytes, formatParameters, formatTimeOfDay } from '../common/format.js';
import type { Progress } from '../../../shared/progress.js';
import { ProgressBar } from '../common/ProgressBar.js';
import { ErrorText } from '../common/ErrorText.js';

export interface ModelCard {
  id: string;
  name: string;
  /** Where it lives (the pack folder). */
  detail?: string;
  /** What the card states about the model, when the store knows it. */
  facts?: ModelDetails;
  /** Badges: "vision", "transprune", ... */
  capabilities: string[];
  builtIn?: boolean;
  sizeBytes?: number;
}

export interface Task {
  progress?: Progress;
  error?: string;
}

/** A model's Verify: running (progress), its answer, or why it could not run. */
export interface Check extends Task {
  result?: PackVerification;
}

interface ModelsViewProps {
  models: ModelCard[];
  activeId?: string;
  onUse(id: string): void;
  /** The optional parts are absent where the host cannot do them yet; the view then says what to do instead. */
  onRemove?(id: string): void;
  /** Re-hashes the model's weight files against the hashes recorded at import. */
  onVerify?(id: string): void;
  /** Each model's latest Verify, by id. */
  checks?: Record<string, Check>;
  /** Reads the checkpoint folder at `path` (on the machine the app runs on) and offers its precisions: nothing is written yet. */
  onPlan?(path: string): void;
  /** The folder read by onPlan, or why it could not be. */
  importPlan?: { plan?: ImportPlan; checking?: string; error?: string };
  onCancelPlan?(): void;
  /** Imports the planned folder at the chosen precision. */
  onImport?(path: string, dtype: WeightDtype): void;
  onCancelImport?(): void;
  importTask?: Task;
  /** Downloads a repo (the named files only, for a GGUF pair), then imports it at the precision recommended here. */
  onDownload?(request: DownloadChoice): void;
  onCancelDownload?(): void;
  downloadTask?: Task;
  /** The curated catalogue with sizes and whether each fits here; absent while it loads. */
  catalogue?: CatalogueItem[];
  online?: boolean;
}

export interface DownloadChoice {
  repoId: string;
  files?: string[];
  /** What the progress bar calls it. */
  name: string;
}

const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/** Installed models with their capabilities, plus import from a folder and download by repo id. */
export function ModelsView(props: ModelsViewProps) {
  const { models, activeId, onUse, onRemove, onVerify, checks = {} } = props;
  return (
    <div className="flex flex-col gap-6 p-4">
      <section aria-labelledby="installed-models">
        <h2 id="installed-models" className="mb-2 text-lg font-semibold">
          Installed models
        </h2>
        {models.length === 0 ? (
          <p className="text-sm text-zinc-500">No models yet. Import a Hugging Face checkpoint folder or download one below.</p>
        ) : (
          <ul className="divide-y divide-zinc-200 rounded-lg border border-zinc-200 dark:divide-zinc-800 dark:border-zinc-800">
            {models.map((m) => (
              <ModelRow
                key={m.id}
                model={m}
                active={m.id === activeId}
                onUse={onUse}
                onRemove={onRemove}
                onVerify={onVerify}
                check={checks[m.id]}
              />
            ))}
          </ul>
        )}
      </section>
      {props.onImport ? <ImportSection {...props} /> : <CliImportNote />}
      {props.onDownload ? (
        <DownloadSection {...props} />
      ) : (
        <p className="text-sm text-zinc-500">
          Downloading by Hugging Face repository id is not available in this build: download the folder, then import it.
        </p>
      )}
    </div>
  );
}

function ModelRow({
  model,
  active,
  onUse,
  onRemove,
  onVerify,
  check,
}: {
  model: ModelCard;
  active: boolean;
  onUse(id: string): void;
  onRemove?(id: string): void;
  onVerify?(id: string): void;
  check?: Check;
}) {
  const [confirming, setConfirming] = useState(false);
  const button =
    'rounded-md border border-zinc-300 px-2 py-1 text-xs hover:bg-zinc-100 disabled:opacity-50 dark:border-zinc-600 dark:hover:bg-zinc-800';
  return (
    <li className="flex flex-wrap items-center gap-3 p-3" aria-label={model.name}>
      <div className="min-w-0 flex-1">
        <p className="font-medium">
          {model.name} {active && <span className="text-xs text-emerald-600">(in use)</span>}
        </p>
        {model.facts && <ModelFacts facts={model.facts} />}
        <p className="truncate text-xs text-zinc-500" title={model.detail}>
          {[model.detail, model.sizeBytes !== undefined && formatBytes(model.sizeBytes)].filter(Boolean).join(' · ')}
        </p>
        <ul aria-label="Capabilities" className="mt-1 flex flex-wrap gap-1">
          {[...(model.builtIn ? ['built-in demo'] : []), ...model.capabilities].map((c) => (
            <li key={c} className="rounded-full bg-sky-100 px-2 py-0.5 text-xs text-sky-800 dark:bg-sky-900/60 dark:text-sky-100">
              {c}
            </li>
          ))}
        </ul>
      </div>
      <button type="button" className={button} disabled={active} onClick={() => onUse(model.id)}>
        Use
      </button>
      {onVerify && (
        <button
          type="button"
          className={button}
          disabled={Boolean(check?.progress)}
          onClick={() => onVerify(model.id)}
          title="Check the weight files against the hashes recorded when the model was imported"
        >
          Verify
        </button>
      )}
      {model.builtIn || !onRemove ? null : confirming ? (
        <>
          <button type="button" className={`${button} text-red-600`} onClick={() => onRemove(model.id)}>
            Remove {model.name}
          </button>
          <button type="button" className={button} onClick={() => setConfirming(false)}>
            Keep
          </button>
        </>
      ) : (
        <button type="button" className={button} onClick={() => setConfirming(true)} aria-label={`Remove ${model.name}…`}>
          Remove…
        </button>
      )}
      {check && <CheckOutcome check={check} name={model.name} />}
    </li>
  );
}

/** What the latest Verify of a model found: progress while it runs, then intact (and when) or which files are damaged and what to do. */
function CheckOutcome({ check, name }: { check: Check; name: string }) {
  const { progress, result, error } = check;
  return (
    <div className="basis-full">
      {progress && <ProgressBar label={`Verifying ${name}`} progress={progress} />}
      <ErrorText message={error} />
      {result?.ok && (
        <p role="status" className="rounded-md bg-emerald-50 p-2 text-sm text-emerald-800 dark:bg-emerald-950 dark:text-emerald-200">
          Verified at {formatTimeOfDay(result.checkedAt)}: all {result.files} weight files ({formatBytes(result.bytes)}) match the hashes
          recorded at import.
        </p>
      )}
      {result && !result.ok && (
        <div role="alert" className="rounded-md bg-red-50 p-2 text-sm text-red-800 dark:bg-red-950 dark:text-red-200">
          <p>
            Damaged (checked at {formatTimeOfDay(result.checkedAt)}): {result.damaged.length} of {result.files} weight files{' '}
            {result.damaged.length === 1 ? 'does' : 'do'} not match the hashes recorded at import.
          </p>
          <ul className="my-1 list-disc pl-5">
            {result.damaged.map(({ file, reason }) => (
              <li key={file}>
                <code className="font-mono">{file}</code>{' '}
                {reason === 'missing' ? 'is missing or unreadable' : 'has changed since the import'}
              </li>
            ))}
          </ul>
          <p>Its answers cannot be trusted: remove this model and import its checkpoint folder again.</p>
        </div>
      )}
    </div>
  );
}

function ModelFacts({ facts }: { facts: ModelDetails }) {
  return (
    <div className="text-sm text-zinc-700 dark:text-zinc-300">
      <p>{facts.architecture}</p>
      <p className="text-xs">
        <span data-testid="parameters" title={`${facts.parameters.toLocaleString('en-US')} parameters`}>
          {formatParameters(facts.parameters)} parameters
        </span>
        {` · ${facts.dtype} · ${facts.visualTokens ? `${facts.visualTokens} visual tokens` : 'text only, no images'} · ${formatBytes(facts.sizeBytes)} on disk`}
      </p>
    </div>
  );
}

function CliImportNote() {
  return (
    <section aria-labelledby="import-model" className="flex flex-col gap-2">
      <h3 id="import-model" className="font-medium">
        Add a model
      </h3>
      <p className="text-sm text-zinc-500">
        Import a Hugging Face LLaVA-1.5 or LLaVA-NeXT checkpoint folder from the command line:{' '}
        <code className="font-mono">npm run cli -- import &lt;folder&gt;</code>. It appears here once the engine restarts.
      </p>
    </section>
  );
}

function ImportSection({ onPlan, importPlan = {}, onCancelPlan, onImport, onCancelImport, importTask = {} }: ModelsViewProps) {
  const [path, setPath] = useState('');
  return (
    <section aria-labelledby="import-model" className="flex flex-col gap-2">
      <h3 id="import-model" className="font-medium">
        Import a checkpoint folder or GGUF
      </h3>
      <p className="text-sm text-zinc-500">
        A Hugging Face LLaVA-1.5, LLaVA-NeXT or Qwen2.5-VL folder (config.json, *.safetensors, tokenizer.json, preprocessor_config.json); a
        llama.cpp GGUF file, which imports as a text-only model; or the folder of a GGUF with its mmproj-*.gguf vision projector, as LM
        Studio, Jan and Ollama keep a LLaVA. It is converted to ONNX on this computer.
      </p>
      {importTask.progress ? (
        <ProgressBar label="Import progress" progress={importTask.progress} onCancel={onCancelImport} />
      ) : importPlan.plan ? (
        <PrecisionChoice plan={importPlan.plan} onImport={(dtype) => onImport?.(importPlan.plan!.path, dtype)} onBack={onCancelPlan} />
      ) : (
        <EntryForm
          id="import-path"
          label="Checkpoint folder or GGUF file"
          value={path}
          onChange={setPath}
          placeholder="/path/to/llava-1.5-7b-hf"
          mono
          submitText="Import"
          disabled={Boolean(importPlan.checking)}
          canSubmit={path.trim() !== ''}
          onSubmit={() => onPlan?.(path.trim())}
        />
      )}
      {importPlan.checking && <p className="text-sm text-zinc-500">{importPlan.checking}</p>}
      <ErrorText message={importPlan.error ?? importTask.error} />
    </section>
  );
}

const DTYPE_NOTES: Record<WeightDtype, string> = {
  int4: 'smallest; a little less accurate',
  int8: 'close to fp32, faster on a CPU',
  fp16: 'half the disk of fp32, but as much memory (expanded to fp32 to run on a CPU)',
  fp32: 'the checkpoint as it is',
};

/**
 * The precisions a checkpoint can be imported at, each with its size on disk and the memory it needs to
 * answer, the one for this computer chosen first. Nothing is written until Import.
 */
function PrecisionChoice({ plan, onImport, onBack }: { plan: ImportPlan; onImport(dtype: WeightDtype): void; onBack?(): void }) {
  const [dtype, setDtype] = useState<WeightDtype>(plan.recommended);
  return (
    <form
      aria-label="Import precision"
      className="flex flex-col gap-2 rounded-lg border border-zinc-200 p-3 dark:border-zinc-800"
      onSubmit={(e) => {
        e.preventDefault();
        onImport(dtype);
      }}
    >
      <p className="wrap-anywhere text-sm">
        <span className="font-mono">{plan.path}</span>: {plan.architecture}, {formatParameters(plan.parameters)} parameters.
      </p>
      <fieldset className="flex flex-col gap-1">
        <legend className="mb-1 text-sm font-medium">Precision (this computer has {formatBytes(plan.machineMemoryBytes)} of memory)</legend>
        {plan.footprints.map((f) => (
          <label key={f.dtype} className="flex items-baseline gap-2 text-sm" data-dtype={f.dtype}>
            <input type="radio" name="dtype" value={f.dtype} checked={dtype === f.dtype} onChange={() => setDtype(f.dtype)} />
            <span className="w-10 font-mono">{f.dtype}</span>
            <span className="min-w-0">
              {formatBytes(f.diskBytes)} on disk · needs about {formatBytes(f.memoryBytes)} of memory
              <span className="text-zinc-500"> · {DTYPE_NOTES[f.dtype]}</span>
              {f.dtype === plan.recommended && <span className="text-emerald-700 dark:text-emerald-400"> · recommended here</span>}
              {f.memoryBytes > plan.machineMemoryBytes && <span className="text-red-600"> · more memory than this computer has</span>}
            </span>
          </label>
        ))}
      </fieldset>
      <div className="flex gap-2">
        <button type="submit" className="rounded-md bg-sky-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-sky-700">
          Import as {dtype}
        </button>
        <button type="button" onClick={onBack} className="rounded-md border border-zinc-300 px-3 py-1.5 text-sm dark:border-zinc-600">
          Back
        </button>
      </div>
    </form>
  );
}

function DownloadSection({ onDownload, onCancelDownload, downloadTask = {}, online = true, catalogue }: ModelsViewProps) {
  const [repoId, setRepoId] = useState('');
  // The catalogue entry being downloaded shows its own progress (its card may be far below the section's top).
  const [fromCatalogue, setFromCatalogue] = useState<string>();
  const valid = REPO_ID.test(repoId.trim());
  const busy = !online || Boolean(downloadTask.progress);
  const inCard = (id: string) => (fromCatalogue === id && (downloadTask.progress || downloadTask.error) ? downloadTask : undefined);
  return (
    <section aria-labelledby="download-model" className="flex flex-col gap-2">
      <h3 id="download-model" className="font-medium">
        Download from Hugging Face
      </h3>
      {!online && (
        <p role="note" className="rounded-md bg-amber-50 p-2 text-sm text-amber-800 dark:bg-amber-950 dark:text-amber-200">
          You are offline, so nothing can be downloaded. You can still import a checkpoint folder you already have.
        </p>
      )}
      {!fromCatalogue && downloadTask.progress && (
        <ProgressBar label="Download progress" progress={downloadTask.progress} onCancel={onCancelDownload} />
      )}
      {!fromCatalogue && <ErrorText message={downloadTask.error} />}
      <p className="text-sm text-zinc-500">
        Each download is checked against the hub&apos;s hashes, resumes where a cut connection or Cancel left it, and is imported at the
        precision shown.
      </p>
      {catalogue ? (
        <ul aria-label="Model catalogue" className="grid grid-cols-[repeat(auto-fill,minmax(17rem,1fr))] gap-2">
          {catalogue.map((item) => (
            <CatalogueCard
              key={item.id}
              item={item}
              disabled={busy}
              task={inCard(item.id)}
              onCancel={onCancelDownload}
              onDownload={() => {
                setFromCatalogue(item.id);
                onDownload?.({ repoId: item.repoId, files: item.files, name: item.name });
              }}
            />
          ))}
        </ul>
      ) : (
        <p className="text-sm text-zinc-500">Loading the catalogue…</p>
      )}
      <p className="mt-2 text-sm">Or any LLaVA-1.5, LLaVA-NeXT or Qwen2.5-VL repository by id:</p>
      <EntryForm
        id="repo-id"
        label="Repository id"
        value={repoId}
        onChange={setRepoId}
        placeholder="llava-hf/llava-1.5-7b-hf"
        disabled={busy}
        invalid={repoId !== '' && !valid}
        submitText="Download"
        canSubmit={valid}
        onSubmit={() => {
          setFromCatalogue(undefined);
          onDownload?.({ repoId: repoId.trim(), name: repoId.trim() });
        }}
      />
      {repoId !== '' && !valid && <p className="text-xs text-red-600">A repository id looks like owner/name.</p>}
    </section>
  );
}

/** One catalogue entry: what it is, what it costs to download and to run here, and its Download button. */
function CatalogueCard({
  item,
  disabled,
  task,
  onDownload,
  onCancel,
}: {
  item: CatalogueItem;
  disabled: boolean;
  /** This entry's download, while it runs or when it failed. */
  task?: Task;
  onDownload(): void;
  onCancel?(): void;
}) {
  const here = item.footprints.find((f) => f.dtype === item.recommended)!;
  return (
    <li aria-label={item.name} className="flex flex-col gap-1 rounded-lg border border-zinc-200 p-3 text-sm dark:border-zinc-800">
      <p className="font-medium">{item.name}</p>
      <p className="text-xs text-zinc-600 dark:text-zinc-400">{item.summary}</p>
      <p className="text-xs">
        {formatParameters(item.parameters)} parameters · {item.format === 'gguf' ? 'GGUF pair' : 'safetensors'} · {item.licence}
      </p>
      <p className="text-xs" data-testid="download-size">
        Download {item.download.exact ? '' : 'about '}
        {formatBytes(item.download.bytes)}
        {item.download.exact && item.download.files ? ` in ${item.download.files} files` : ''}
        {item.download.exact ? '' : ' (estimated: the hub did not answer)'}
      </p>
      <p className="text-xs">
        As <span className="font-mono">{item.recommended}</span>: {formatBytes(here.diskBytes)} on disk, needs about{' '}
        {formatBytes(here.memoryBytes)} of memory
      </p>
      <div className="mt-auto flex items-center gap-2 pt-1">
        <span
          className={`rounded-full px-2 py-0.5 text-xs ${item.fits ? 'bg-emerald-100 text-emerald-800 dark:bg-emerald-900/60 dark:text-emerald-100' : 'bg-amber-100 text-amber-900 dark:bg-amber-900/60 dark:text-amber-100'}`}
        >
          {item.fits ? 'Fits in your memory' : 'Too large for this computer'}
        </span>
        <button
          type="button"
          disabled={disabled}
          onClick={onDownload}
          aria-label={`Download ${item.name}`}
          className="ml-auto rounded-md bg-sky-600 px-3 py-1 text-xs font-medium text-white hover:bg-sky-700 disabled:opacity-40"
        >
          Download
        </button>
      </div>
      {task?.progress && <ProgressBar label={`Downloading ${item.name}`} progress={task.progress} onCancel={onCancel} />}
      <ErrorText message={task?.error} />
    </li>
  );
}

/** One text field with its submit button: the import path and the repository id. Enter submits when `canSubmit`. */
function EntryForm(props: {
  id: string;
  label: string;
  value: string;
  onChange(value: string): void;
  placeholder: string;
  submitText: string;
  canSubmit: boolean;
  onSubmit(): void;
  disabled?: boolean;
  invalid?: boolean;
  mono?: boolean;
}) {
  const { id, label, value, onChange, placeholder, submitText, canSubmit, onSubmit, disabled = false, invalid, mono } = props;
  function submit(event: FormEvent) {
    event.preventDefault();
    if (canSubmit && !disabled) onSubmit();
  }
  return (
    <form onSubmit={submit} className="flex gap-2">
      <label htmlFor={id} className="sr-only">
        {label}
      </label>
      <input
        id={id}
        value={value}
        onChange={(e) => onChange(e.target.value)}
        placeholder={placeholder}
        disabled={disabled}
        aria-invalid={invalid}
        className={`min-w-0 flex-1 rounded-md border border-zinc-300 bg-transparent px-2 py-1.5 text-sm disabled:opacity-50 dark:border-zinc-600 ${mono ? 'font-mono' : ''}`}
      />
      <button
        type="submit"
        disabled={disabled || !canSubmit}
        className="rounded-md bg-sky-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-sky-700 disabled:opacity-40"
      >
        {submitText}
      </button>
    </form>
  );
}
