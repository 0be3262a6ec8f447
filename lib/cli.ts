#!/usr/bin/env node
/** The `guardkernel` command. */
import { doctorReport } from './doctor';
import { backends } from './native';
import { VERSION } from './version';

const USAGE = `Usage: guardkernel <command> [options]

Commands:
  doctor [--json]   Show the active backends, why any fallback is used, and the GPU devices found
  version           Print the version
  help              Show this help
`;

export function main(argv: string[]): number {
  const [command, ...rest] = argv;
  switch (command) {
    case 'doctor': {
      const unknown = rest.filter((a) => a !== '--json');
      if (unknown.length > 0) {
        process.stderr.write(`guardkernel doctor: unknown option ${unknown[0]}\n`);
        return 2;
      }
      if (rest.includes('--json')) process.stdout.write(JSON.stringify(backends(), null, 2) + '\n');
      else process.stdout.write(doctorReport() + '\n');
      return 0;
    }
    case 'version':
    case '--version':
    case '-v':
      process.stdout.write(`${VERSION}\n`);
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`guardkernel: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2));
}
