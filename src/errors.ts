/**
 * Every failure a user can act on is one of these. The exit code is part of the contract:
 * 0 aligned, 1 misaligned, 2 unusable input (a file, a tensor, a flag).
 */
export const EXIT_PASS = 0;
export const EXIT_MISALIGNED = 1;
export const EXIT_UNUSABLE = 2;

export interface InputErrorDetails {
  /** The file the problem is in, as the user gave it or as found inside a folder. */
  file?: string;
  /** The tensor (or JSON key, or pickle global) concerned. */
  tensor?: string;
  expected?: string;
  actual?: string;
  cause?: unknown;
}

/** Input we cannot use: missing or corrupt file, unknown tensor, shape mismatch, hostile pickle. Exit 2. */
export class InputError extends Error {
  readonly exitCode = EXIT_UNUSABLE;
  readonly file?: string;
  readonly tensor?: string;
  readonly expected?: string;
  readonly actual?: string;

  constructor(message: string, details: InputErrorDetails = {}) {
    super(formatMessage(message, details), details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'InputError';
    this.file = details.file;
    this.tensor = details.tensor;
    this.expected = details.expected;
    this.actual = details.actual;
  }
}

function formatMessage(message: string, d: InputErrorDetails): string {
  const parts: string[] = [];
  if (d.file) parts.push(d.file);
  if (d.tensor) parts.push(`tensor ${JSON.stringify(d.tensor)}`);
  let text = parts.length ? `${parts.join(': ')}: ${message}` : message;
  if (d.expected !== undefined || d.actual !== undefined) {
    text += ` (expected ${d.expected ?? '?'}, got ${d.actual ?? '?'})`;
  }
  return text;
}

/** Maps any thrown value to an exit code: our typed errors carry theirs, anything else is a bug (exit 2 would hide it). */
export function exitCodeOf(error: unknown): number {
  if (error instanceof InputError) return error.exitCode;
  return 70; // EX_SOFTWARE: an internal fault, not a verdict
}
