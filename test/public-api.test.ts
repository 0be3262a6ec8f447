// The layout change moved every file of lib/ and changed no behaviour: the
// names the package exports (CommonJS, ESM and types) and every help screen of
// the `guardkernel` command are those recorded before the move.
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { surface, snapshotFile } = require('../scripts/public-api.js') as {
  surface: () => Promise<Record<string, unknown>>;
  snapshotFile: string;
};

describe('public API', () => {
  it('exports, types and CLI help texts are unchanged', async () => {
    const recorded = JSON.parse(fs.readFileSync(snapshotFile, 'utf8'));
    const now = await surface();
    expect(now.require).toEqual(recorded.require);
    expect(now.import).toEqual(recorded.import);
    expect(now.types).toEqual(recorded.types);
    expect(now.bin).toEqual(recorded.bin);
    expect(now.help).toEqual(recorded.help);
  });
});
