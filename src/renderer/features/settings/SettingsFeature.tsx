import { useEffect, useRef, useState } from 'react';
import type { AppSettings } from '../../../shared/settings.js';
import { ExecutionProvider } from '../../../shared/providers.js';
import type { ViewProps } from '../../shell/App.js';
import { useClient } from '../../shell/client-context.js';
import { callOrThrow } from '../common/calls.js';
import { EngineSettings } from './EngineSettings.js';
import { LocalServerSettings } from './LocalServerSettings.js';
import { SettingsView } from './SettingsView.js';
import { ErrorText } from '../common/ErrorText.js';

/** The settings slot: the remembered settings (every valid change saved), the local server, then the engine's facts and controls. */
export function SettingsFeature({ status, models }: ViewProps) {
  const client = useClient();
  const [settings, setSettings] = useState<AppSettings>();
  const [error, setError] = useState<string>();
  // Only the newest change's answer may replace what is shown: earlier saves can answer later.
  const latest = useRef(0);
  useEffect(() => {
    callOrThrow(client, 'settings.get', {}).then(setSettings, (err: Error) => setError(err.message));
  }, [client]);

  async function change(next: AppSettings) {
    const request = ++latest.current;
    setSettings(next);
    try {
      const saved = await callOrThrow(client, 'settings.set', next);
      if (request === latest.current) {
        setSettings(saved);
        setError(undefined);
      }
    } catch (err) {
      if (request === latest.current) setError(`Not saved: ${(err as Error).message}`);
    }
  }

  // onnxruntime may list providers the engine never runs on (tensorrt, ...): those are not offered.
  const providers = (status?.info?.providers ?? []).flatMap((p) => {
    const name = ExecutionProvider.safeParse(p.name);
    return name.success ? [{ name: name.data, unavailable: p.loads ? undefined : (p.error ?? 'does not load here') }] : [];
  });
  return (
    // The one scrolling pane of this view: the title bar and the sidebar stay put (relative: screen-reader-only
    // text inside is positioned against this pane, not the page, so the page never scrolls).
    <section aria-label="Settings" className="relative min-h-0 flex-1 overflow-y-auto">
      <ErrorText message={error} className="m-4" />
      {settings ? (
        <SettingsView settings={settings} models={models ?? []} providers={providers} onChange={(s) => void change(s)} />
      ) : (
        !error && <p className="p-4 text-zinc-500">Loading settings…</p>
      )}
      <LocalServerSettings models={models ?? []} />
      <EngineSettings status={status} />
    </section>
  );
}
