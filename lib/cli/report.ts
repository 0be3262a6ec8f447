/**
 * `guardkernel report`: a compliance report from a running server (the
 * compliance_report method over its socket) or from a configuration file.
 */
import { connectFailure } from './no-server';
import { flagValue, readAuthTokenFile } from './args';
import { GuardClient } from '../ipc/client';
import { defaultSocket } from './serve';
import { loadComplianceConfig } from '../compliance/config';
import { exportReport, renderReport, validateReport } from '../compliance/export';
import { ComplianceReporter } from '../compliance/reporter';
import { EXPORT_FORMATS, STANDARD_IDS, type ComplianceReport, type ExportFormat } from '../compliance/types';

export const REPORT_USAGE = `Usage: guardkernel report --standard STANDARD [options]

Writes a compliance report: the checks of STANDARD run over a running server's live objects
(through its socket), or over a setup described by a configuration file.

Options:
  --standard STANDARD     ${STANDARD_IDS.join(', ')} (required)
  --format FORMAT         ${EXPORT_FORMATS.join(', ')} (default json)
  --out FILE              write the report here (mode 0600); default standard output (required for pdf)
  --socket PATH           the server's socket (default $XDG_RUNTIME_DIR/guardkernel/core.sock, else
                          <state-dir>/core.sock, as guardkernel serve)
  --auth-token-file FILE  authenticate first, for a server started with --auth-token-file
  --config FILE           report on the setup this JSON/YAML file describes instead of a server
                          (format: README, "Compliance reports")
  --help                  this text

Exit status: 0 when no check is non-compliant, 1 when some are (the report is still written),
2 on bad usage or when no report could be produced.
`;

export interface ReportArgs {
  standard: string;
  format: ExportFormat;
  out?: string;
  socket?: string;
  authTokenFile?: string;
  config?: string;
}

/** Parses report's flags; throws an Error naming the problem. */
export function parseReportArgs(argv: string[]): ReportArgs | 'help' {
  const out: Partial<ReportArgs> = {};
  const value = (i: number, flag: string) => flagValue(argv, i, flag);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--help':
      case '-h':
        return 'help';
      case '--standard':
        out.standard = value(i++, a);
        break;
      case '--format': {
        const f = value(i++, a);
        if (!EXPORT_FORMATS.includes(f as ExportFormat)) throw new Error(`--format must be one of ${EXPORT_FORMATS.join(', ')}, not ${JSON.stringify(f)}`);
        out.format = f as ExportFormat;
        break;
      }
      case '--out':
        out.out = value(i++, a);
        break;
      case '--socket':
        out.socket = value(i++, a);
        break;
      case '--auth-token-file':
        out.authTokenFile = value(i++, a);
        break;
      case '--config':
        out.config = value(i++, a);
        break;
      default:
        throw new Error(`unknown option ${JSON.stringify(a)}`);
    }
  }
  if (out.standard === undefined) throw new Error(`--standard is required (one of ${STANDARD_IDS.join(', ')})`);
  if (!(STANDARD_IDS as readonly string[]).includes(out.standard)) throw new Error(`--standard must be one of ${STANDARD_IDS.join(', ')}, not ${JSON.stringify(out.standard)}`);
  if (out.config !== undefined && (out.socket !== undefined || out.authTokenFile !== undefined)) throw new Error('--config reports on a file; it cannot be combined with --socket or --auth-token-file');
  out.format ??= 'json';
  if (out.format === 'pdf' && out.out === undefined) throw new Error('--format pdf needs --out FILE');
  return out as ReportArgs;
}

async function fromServer(args: ReportArgs): Promise<ComplianceReport> {
  const socket = args.socket ?? defaultSocket();
  // Read before connecting: a missing or empty token file is named as such.
  const token = args.authTokenFile === undefined ? undefined : readAuthTokenFile(args.authTokenFile);
  let client: GuardClient;
  try {
    client = await GuardClient.connect(socket);
  } catch (err) {
    throw new Error(connectFailure(socket, err));
  }
  try {
    if (token !== undefined) await client.auth(token);
    const report = await client.call<unknown>('compliance_report', { standard: args.standard });
    validateReport(report); // the server's answer is data like any other
    return report;
  } finally {
    client.close();
  }
}

async function fromConfig(args: ReportArgs): Promise<ComplianceReport> {
  const loaded = await loadComplianceConfig(args.config!);
  try {
    return new ComplianceReporter(loaded.context).generate(args.standard);
  } finally {
    loaded.close();
  }
}

/** Produces and writes the report; resolves to the exit status. */
export async function runReport(args: ReportArgs, io: { stdout: (s: string | Buffer) => void; stderr: (s: string) => void }): Promise<number> {
  let report: ComplianceReport;
  try {
    report = args.config !== undefined ? await fromConfig(args) : await fromServer(args);
    if (args.out !== undefined) {
      const written = await exportReport(report, args.format, args.out);
      const s = report.summary;
      io.stderr(`guardkernel report: ${report.standard}: ${s.compliant} compliant, ${s.non_compliant} non-compliant, ${s.not_applicable} not applicable; wrote ${written}\n`);
    } else {
      io.stdout(await renderReport(report, args.format));
    }
  } catch (err) {
    io.stderr(`guardkernel report: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  return report.summary.non_compliant > 0 ? 1 : 0;
}

/** The command: parses, runs, sets the exit status. Returns 2 at once for bad usage, -1 while running. */
export function reportCommand(argv: string[]): number {
  let args: ReturnType<typeof parseReportArgs>;
  try {
    args = parseReportArgs(argv);
  } catch (err) {
    process.stderr.write(`guardkernel report: ${(err as Error).message}\n\n${REPORT_USAGE}`);
    return 2;
  }
  if (args === 'help') {
    process.stdout.write(REPORT_USAGE);
    return 0;
  }
  runReport(args, { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) }).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`guardkernel report: ${(err as Error).message}\n`);
      process.exitCode = 2;
    },
  );
  return -1;
}
