/**
 * Built-in checks on the IPC server: the socket file's mode (read from the
 * file), where the permit secret came from, and authentication.
 */
import fs from 'node:fs';
import path from 'node:path';
import { compliant, nonCompliant, notApplicable, octal } from './check-helpers';
import type { CheckDefinition } from './types';

const NO_SERVER = 'No IPC server in this configuration: the gate is used in process.';

const socketPermissions: CheckDefinition = {
  id: 'socket-permissions',
  name: 'Socket file is private',
  description: 'The server socket (its mode read from the file itself, else the configured mode) grants nothing to group or others (0600 or stricter), and its directory cannot be written by others.',
  check(ctx) {
    const s = ctx.server;
    if (s === undefined) return notApplicable(NO_SERVER);
    let mode: number;
    let source: string;
    let st: fs.Stats | null = null;
    try {
      st = fs.lstatSync(s.socketPath);
    } catch {
      st = null;
    }
    if (st !== null) {
      if (!st.isSocket()) return nonCompliant(`${s.socketPath} is not a socket.`, 'Remove the file and restart the server.');
      mode = st.mode & 0o777;
      source = 'the socket file';
    } else if (s.socketMode !== undefined) {
      mode = s.socketMode & 0o777;
      source = 'the configuration (the socket is not present now)';
    } else {
      return nonCompliant(`${s.socketPath} does not exist and no socket mode is configured.`, 'Start the server, or give socketMode (guardkernel serve --socket-mode 600).');
    }
    if ((mode & 0o077) !== 0) {
      return nonCompliant(`The socket mode is ${octal(mode)} (from ${source}): other users can connect and call every method.`, 'Use socket mode 600 (the default of guardkernel serve).');
    }
    const dir = path.dirname(s.socketPath);
    try {
      const d = fs.statSync(dir);
      if ((d.mode & 0o022) !== 0 && (d.mode & 0o1000) === 0) {
        return nonCompliant(`The socket's directory ${dir} (mode ${octal(d.mode)}) is writable by others without the sticky bit: the socket can be replaced.`, 'Put the socket in a private directory (mode 700), e.g. $XDG_RUNTIME_DIR/guardkernel.');
      }
    } catch {
      // no directory: covered by the missing socket above
    }
    return compliant(`Socket ${s.socketPath} has mode ${octal(mode)} (from ${source}); its directory is not writable by others.`);
  },
};

const secretSource: CheckDefinition = {
  id: 'secret-source',
  name: 'Permit secret is generated or supplied',
  description: 'The permit HMAC secret was generated (random, stored 0600) or supplied by the operator, never a built-in default; a secret file must not be readable by group or others and must hold at least 32 bytes.',
  check(ctx) {
    const s = ctx.server;
    if (s === undefined) return notApplicable(`${NO_SERVER} The embedding code supplies the keyring's secrets.`);
    const source = s.secretSource as unknown;
    if (source !== 'generated' && source !== 'supplied') {
      return nonCompliant(`The permit secret's source is ${JSON.stringify(source)}, neither generated nor supplied.`, 'Use GUARD_HMAC_SECRET (base64, at least 32 bytes) or let guardkernel serve generate <state-dir>/hmac.key.');
    }
    let where = '';
    if (s.secretFile !== undefined) {
      let st: fs.Stats;
      try {
        st = fs.statSync(s.secretFile);
      } catch {
        return nonCompliant(`The secret file ${s.secretFile} does not exist.`, 'Correct the path or let the server generate the secret.');
      }
      if ((st.mode & 0o077) !== 0) return nonCompliant(`The secret file ${s.secretFile} has mode ${octal(st.mode)}: others can read the permit secret.`, `chmod 600 ${s.secretFile}, then rotate the secret.`);
      if (st.size < 32) return nonCompliant(`The secret file ${s.secretFile} holds ${st.size} bytes, fewer than 32.`, 'Use a secret of at least 32 random bytes.');
      where = ` in ${s.secretFile} (mode ${octal(st.mode)}, ${st.size} bytes)`;
    }
    return compliant(`The permit secret was ${source}${where}; guardkernel has no default secret.`);
  },
};

const authentication: CheckDefinition = {
  id: 'authentication',
  name: 'Clients must authenticate',
  description: 'The server requires the auth method (a token of at least 16 bytes) before any other method but ping and version.',
  check(ctx) {
    const s = ctx.server;
    if (s === undefined) return notApplicable(NO_SERVER);
    if (s.authEnabled !== true) {
      return nonCompliant('The server does not require authentication: any process that can open the socket can call every method.', 'Start the server with --auth-token-file (a token of at least 16 random bytes).');
    }
    return compliant('Every method but ping, version and auth requires a session from auth {token}; failures are limited per client (5 per 60 s, then a 30 s block).');
  },
};

export const SERVER_CHECKS: readonly CheckDefinition[] = [socketPermissions, secretSource, authentication];
