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
    throw new CliError(`${(err as Error).message}\nusage: npm run cli -- ${command.usage}`);
  }
}
