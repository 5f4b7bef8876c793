import { parseArgs, type ParseArgsConfig } from 'node:util';

/** One CLI command. Each lives in its own file under src/cli/commands and is listed in commands/index.ts. */
export interface CliCommand {
  name: string;
  summary: string;
  /** Usage lines shown by `--help`, without the `npm run cli --` prefix. */
  usage: string;
  options?: ParseArgsConfig['options'];
  /** Resolves to the process exit code. */
  run(args: ParsedArgs): Promise<number>;
}

export interface ParsedArgs {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
}

/** A user-facing error: printed without a stack trace, exit code 1. */
export class CliError extends Error {}

export function parseCommandArgs(command: CliCommand, argv: string[]): ParsedArgs {
  try {
    return parseArgs({ args: argv, options: command.options ?? {}, allowPositionals: true, strict: true });
  } catch (err) {
    throw new CliError(
      `${argumentProblem(err as Error & { code?: string }, Object.keys(command.options ?? {}))}\nusage: npm run cli -- ${command.usage}`,
    );
  }
}

/** parseArgs' errors in the CLI's words: an unknown option with the nearest known one, a value that is missing. */
function argumentProblem(err: Error & { code?: string }, known: string[]): string {
  const option = /'(-[^' ]+)/.exec(err.message)?.[1];
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option) {
    const name = option.replace(/^-+/, '').split('=')[0];
    const nearest = known.map((k) => ({ k, distance: editDistance(name, k) })).sort((a, b) => a.distance - b.distance)[0];
    const hint = nearest && nearest.distance <= Math.max(2, Math.floor(name.length / 3)) ? `; did you mean --${nearest.k}?` : '';
    return `unknown option ${option.split('=')[0]}${hint}`;
  }
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option) return `${option} needs a value`;
  return err.message;
}

/** Levenshtein distance: how many one-letter edits turn `a` into `b`. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = row;
  }
  return previous[b.length];
}
