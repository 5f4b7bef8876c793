import { commands } from './commands/index.js';
import { CliError, parseCommandArgs } from './command.js';
import { endOpenLine, followStderrLines } from './progress-line.js';

function printHelp(): void {
  const width = Math.max(...commands.map((c) => c.name.length), 4);
  console.log('TransPrune Studio command line\n\nusage: npm run cli -- <command> [options]\n\ncommands:');
  for (const c of commands) console.log(`  ${c.name.padEnd(width)}  ${c.summary}`);
  console.log("\nRun `npm run cli -- <command> --help` for a command's options.");
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    printHelp();
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    console.error(`unknown command "${name}"; known: ${commands.map((c) => c.name).join(', ')}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(`${command.summary}\n\nusage: npm run cli -- ${command.usage}`);
    return 0;
  }
  return command.run(parseCommandArgs(command, rest));
}

followStderrLines();
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    endOpenLine();
    if (err instanceof CliError) console.error(`error: ${err.message}`);
    else console.error(err);
    process.exitCode = 1;
  },
);
