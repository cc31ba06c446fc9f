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

/** A CLI option's integer value, checked by `ok`; the error names the option and says what it must be. */
function parseIntWhere(name: string, what: string, ok: (n: number) => boolean): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || !ok(n)) throw new InvalidArgumentError(`${name} must be ${what}, got "${value}"`);
    return n;
  };
}

export function parsePositiveInt(name: string): (value: string) => number {
  return parseIntWhere(name, "a positive integer", (n) => n > 0);
}

export function parseIntInRange(name: string, min: number, max: number): (value: string) => number {
  return parseIntWhere(name, `an integer in [${min}, ${max}]`, (n) => n >= min && n <= max);
}

export const parseSeed = parseIntInRange("--seed", 0, 0xffffffff);

export function resolveOut(dir: string): string {
  return path.resolve(process.cwd(), dir);
}
