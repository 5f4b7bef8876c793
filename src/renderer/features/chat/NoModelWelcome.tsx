/**
 * The empty chat when no model is installed (a first launch without the bundled demo model): what the app
 * needs, and one button to the Models view, where the catalogue shows what fits this computer.
 */
export function NoModelWelcome({ onChooseModel }: { onChooseModel?(): void }) {
  return (
    <section aria-label="Get a model" className="flex flex-1 flex-col items-center justify-center gap-3 overflow-y-auto p-8 text-center">
      <h2 className="text-lg font-semibold">Welcome to TransPrune Studio</h2>
      <p className="max-w-md text-sm text-zinc-600 dark:text-zinc-400">
        Answers come from a vision-language model running on this computer, and none is installed yet. Pick one from the catalogue (it shows
        what fits in your memory), or import a checkpoint folder or GGUF you already have.
      </p>
      {onChooseModel && (
        <button
          type="button"
          onClick={onChooseModel}
          className="rounded-md bg-sky-600 px-4 py-2 text-sm font-medium text-white hover:bg-sky-700"
        >
          Choose a model
        </button>
      )}
    </section>
  );
}
