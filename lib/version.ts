/** The package version, read from package.json so there is one source of truth. */
import path from 'node:path';

export const VERSION: string = (require(path.join(__dirname, '..', 'package.json')) as { version: string }).version;
