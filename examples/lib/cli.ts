// Command-line plumbing shared by the examples: strict option parsing with node's util.parseArgs,
// typed option checks, and a main() wrapper that prints one clear line and exits non-zero on bad input.

import { parseArgs, ParseArgsConfig } from 'node:util';
import * as fg from '../../src/index.js';

/** A problem with the user's input: printed as one line without a stack trace, exit code 2. */
export class UsageError extends Error {}

export type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string; help: string; default?: string }>;

/** Parses argv strictly: unknown options, missing values and stray arguments become a UsageError. */
export function parseOptions(command: string, specs: OptionSpec, argv = process.argv.slice(2)): Record<string, string | boolean | undefined> {
  const options: ParseArgsConfig['options'] = {};
  for (const [name, spec] of Object.entries(specs)) options[name] = { type: spec.type, ...(spec.short ? { short: spec.short } : {}) };
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as Record<string, string | boolean | undefined>;
  } catch (error) {
    // Node's own hint (write --steps=-3 for a value that starts with a dash) follows on later lines, so keep them.
    throw new UsageError(`${(error as Error).message.replace(/\n/g, ' ')}\nRun npm run ${command} -- --help for the options.`);
  }
}

export function usage(command: string, summary: string, specs: OptionSpec): string {
  const width = Math.max(...Object.keys(specs).map((k) => k.length)) + 4;
  const lines = Object.entries(specs).map(([name, spec]) => {
    const flag = `--${name}`.padEnd(width);
    const fallback = spec.default === undefined ? '' : ` (default: ${spec.default})`;
    return `  ${flag}${spec.help}${fallback}`;
  });
  return `Usage: npm run ${command} -- [options]\n\n${summary}\n\nOptions:\n${lines.join('\n')}\n`;
}

/** Parses a positive integer option, or returns `fallback` when it is absent. */
export function positiveInteger(name: string, value: string | boolean | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (typeof value !== 'string' || !/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n <= 0) {
    throw new UsageError(`--${name} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** Parses a non-negative integer option, or returns `fallback` when it is absent. */
export function nonNegativeInteger(name: string, value: string | boolean | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (typeof value !== 'string' || !/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
    throw new UsageError(`--${name} must be an integer >= 0, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** Parses a number option that must be finite and greater than 0, or returns `fallback` when it is absent. */
export function positiveNumber(name: string, value: string | boolean | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} must be a number greater than 0, got ${JSON.stringify(value)}`);
  return n;
}

/** Parses a finite number option within [min, max], or returns `fallback` when it is absent. */
export function finiteNumber(name: string, value: string | boolean | undefined, fallback: number, min: number, max = Infinity): number {
  if (value === undefined) return fallback;
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  if (!Number.isFinite(n) || n < min || n > max) {
    const range = max === Infinity ? `>= ${min}` : `between ${min} and ${max}`;
    throw new UsageError(`--${name} must be a number ${range}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** Parses an option that must be one of `choices`. */
export function choice<T extends string>(name: string, value: string | boolean | undefined, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw new UsageError(`--${name} must be one of ${choices.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

/** Initializes the requested backend, turning a missing WebGPU adapter into a usage error. */
export async function initBackend(name: fg.DeviceName): Promise<fg.DeviceName> {
  try {
    return await fg.init({ backend: name });
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\nOr run on the CPU backend with --backend cpu.`);
  }
}

/**
 * Runs an async main function. A UsageError prints its message and exits with code 2; any other error
 * prints its message (with the stack when FUSEGRAD_DEBUG=1) and exits with code 1. On success the
 * process exits by itself once the WebGPU device is released.
 */
export function runMain(main: () => Promise<void>): void {
  main().then(
    () => fg.shutdown(),
    async (error: unknown) => {
      await fg.shutdown().catch(() => undefined);
      const message = error instanceof Error ? error.message : String(error);
      console.error(`error: ${message}`);
      if (process.env.FUSEGRAD_DEBUG === '1' && error instanceof Error) console.error(error.stack);
      process.exitCode = error instanceof UsageError ? 2 : 1;
    },
  );
}
