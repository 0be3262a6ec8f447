/** Shared by the CLI's flag parsers. */

/** The value after the flag at argv[i]; throws when it is missing or is another flag. */
export function flagValue(argv: string[], i: number, flag: string): string {
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value`);
  return v;
}
