import * as path from "node:path";
import { type Command, InvalidArgumentError } from "commander";

/** Options shared by commands: every command that writes results takes --out, every market run --scenario and --seed. */
export function withOut(cmd: Command, defaultDir: string): Command {
  return cmd.option("--out <dir>", "directory to write results into (created if missing)", defaultDir);
}

export function withScenario(cmd: Command, defaultScenario: string): Command {
  return cmd.option(
    "--scenario <name|file>",
    "scenario name (see scenarios/) or path to a scenario JSON file",
    defaultScenario,
  );
}

export function withSeed(cmd: Command): Command {
  return cmd.option("--seed <n>", "seed for every random choice of the run", parseSeed, 1);
}

export function parseSeed(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new InvalidArgumentError(`--seed must be an integer in [0, 4294967295], got "${value}"`);
  }
  return n;
}

export function parsePositiveInt(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0)
      throw new InvalidArgumentError(`${name} must be a positive integer, got "${value}"`);
    return n;
  };
}

export function parseIntInRange(name: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max}], got "${value}"`);
    return n;
  };
}

export function resolveOut(dir: string): string {
  return path.resolve(process.cwd(), dir);
}
