import { useEffect, useState } from 'react';

/** The app's colour theme: the system's (light or dark as the OS says), or one chosen for this app. */
export type Theme = 'system' | 'light' | 'dark';
const THEMES: { value: Theme; label: string }[] = [
  { value: 'system', label: 'System' },
  { value: 'light', label: 'Light' },
  { value: 'dark', label: 'Dark' },
];

// A window preference, so it applies before the first render and without waiting for the app's settings.
const KEY = 'transprune.theme';
const systemDark = () => window.matchMedia?.('(prefers-color-scheme: dark)').matches ?? false;

export function storedTheme(): Theme {
  const value = localStorage.getItem(KEY);
  return value === 'light' || value === 'dark' ? value : 'system';
}

/** Puts the `dark` class on <html> for the theme; Tailwind's `dark:` variant keys off it (styles.css). */
export function applyTheme(theme: Theme): void {
  document.documentElement.classList.toggle('dark', theme === 'dark' || (theme === 'system' && systemDark()));
}

/** The theme, applied now and whenever it or (for `system`) the OS setting changes. */
export function useTheme(): [Theme, (theme: Theme) => void] {
  const [theme, setTheme] = useState<Theme>(storedTheme);
  useEffect(() => {
    applyTheme(theme);
    if (theme !== 'system') return;
    const media = window.matchMedia?.('(prefers-color-scheme: dark)');
    const follow = () => applyTheme('system');
    media?.addEventListener('change', follow);
    return () => media?.removeEventListener('change', follow);
  }, [theme]);
  const choose = (next: Theme) => {
    localStorage.setItem(KEY, next);
    setTheme(next);
  };
  return [theme, choose];
}

export function ThemeSelect() {
  const [theme, setTheme] = useTheme();
  return (
    <select
      aria-label="Theme"
      value={theme}
      onChange={(e) => setTheme(e.target.value as Theme)}
      className="rounded-md border border-zinc-200 bg-transparent px-2 py-1 text-xs text-zinc-700 dark:border-zinc-700 dark:bg-zinc-950 dark:text-zinc-300"
    >
      {THEMES.map((t) => (
        <option key={t.value} value={t.value}>
          {t.label}
        </option>
      ))}
    </select>
  );
}
