import { Component, type ReactNode } from 'react';

interface State {
  error: Error | null;
}

/** Keeps a failing view from blanking the window: shows what went wrong and a way to try again. */
export class ErrorBoundary extends Component<{ label: string; children: ReactNode }, State> {
  override state: State = { error: null };

  static getDerivedStateFromError(error: Error): State {
    return { error };
  }

  override render() {
    if (!this.state.error) return this.props.children;
    return (
      <div
        role="alert"
        className="m-4 rounded-md border border-red-300 bg-red-50 p-4 text-sm text-red-800 dark:border-red-800 dark:bg-red-950 dark:text-red-100"
      >
        <p className="font-medium">
          The {this.props.label} view hit a problem: {this.state.error.message}
        </p>
        <button type="button" onClick={() => this.setState({ error: null })} className="mt-2 rounded-md border border-red-400 px-3 py-1">
          Try again
        </button>
      </div>
    );
  }
}
