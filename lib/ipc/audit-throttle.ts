/**
 * Refusals a client can provoke at will (calls without a session, calls its
 * role may not make, auth attempts while blocked) are audited once per
 * client, type and interval: the first is written at once, the rest of the
 * interval are counted and written as one record with `repeated: N` when the
 * interval ends. One line of 1,000 unauthenticated calls is then two records,
 * not 1,000, and a client cannot grow the log faster than its own count.
 */
import type { AuditLog, Severity } from '../audit/log';

interface Window {
  type: string;
  severity: Severity;
  client: string;
  fields: Record<string, unknown>;
  since: number;
  repeated: number;
}

/** Windows kept open at most; past it the oldest is closed (written) first: bounded memory. */
const MAX_WINDOWS = 4096;

export class AuditThrottle {
  readonly #windows = new Map<string, Window>();
  #timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly audit: () => AuditLog | undefined,
    readonly intervalMs = 10_000,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Audits one refusal of `client` (`fields` of the latest one are kept for the summary). */
  note(type: string, severity: Severity, client: string, fields: Record<string, unknown>): void {
    const key = type + '\u0000' + client;
    const now = this.clock();
    const open = this.#windows.get(key);
    if (open !== undefined && now - open.since < this.intervalMs) {
      open.repeated++;
      open.fields = fields;
      return;
    }
    if (open !== undefined) this.#close(key, open);
    if (this.#windows.size >= MAX_WINDOWS) {
      const oldest = this.#windows.keys().next().value as string;
      this.#close(oldest, this.#windows.get(oldest)!);
    }
    this.#write(type, severity, { ...fields, client });
    this.#windows.set(key, { type, severity, client, fields, since: now, repeated: 0 });
    this.#arm();
  }

  /** Writes the counts of every window that has ended (all of them with `all`). */
  flush(all = false): void {
    const now = this.clock();
    for (const [key, w] of this.#windows) {
      if (all || now - w.since >= this.intervalMs) this.#close(key, w);
    }
    if (this.#windows.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  /** Ends the throttle: writes every pending count. */
  close(): void {
    this.flush(true);
  }

  #close(key: string, w: Window): void {
    this.#windows.delete(key);
    if (w.repeated > 0) this.#write(w.type, w.severity, { ...w.fields, client: w.client, repeated: w.repeated, window_ms: this.intervalMs });
  }

  #write(type: string, severity: Severity, fields: Record<string, unknown>): void {
    try {
      this.audit()?.append(type, severity, fields);
    } catch {
      // A refusal stands whether or not its record could be written; the
      // log's own failure accounting (and `required`) covers the log.
    }
  }

  #arm(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => this.flush(), this.intervalMs);
    this.#timer.unref();
  }
}
