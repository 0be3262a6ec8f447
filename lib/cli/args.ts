/** Shared by the CLI's flag parsers. */
import fs from 'node:fs';

/** The value after the flag at argv[i]; throws when it is missing or is another flag. */
export function flagValue(argv: string[], i: number, flag: string): string {
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value`);
  return v;
}

/**
 * The token in an --auth-token-file, trimmed. Throws an Error that names the
 * flag and the file when it cannot be read or holds nothing (an empty token
 * would only be refused by the server, less clearly).
 */
export function readAuthTokenFile(file: string): string {
  let token: string;
  try {
    token = fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new Error(`cannot read --auth-token-file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (token === '') throw new Error(`--auth-token-file ${file} is empty`);
  return token;
}
