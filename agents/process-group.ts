import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PetraError } from "../common/errors";

export const ROOT = path.resolve(__dirname, "..");

export interface Managed {
  name: string;
  pid: number;
  child: ChildProcess;
  /** Everything written to stdout and stderr, last 64 KiB. */
  output(): string;
  exited: Promise<number | null>;
}

/**
 * The processes a run started. Each is spawned in its own process group and stopped by its PID
 * (the group, so a wrapper's children go too), on stop(), on SIGINT/SIGTERM, on an uncaught
 * crash and on exit. Nothing else is ever signalled.
 */
export class ProcessGroup {
  readonly #procs: Managed[] = [];
  readonly #onSignal = (signal: NodeJS.Signals) => {
    this.killAllNow();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  readonly #onExit = () => this.killAllNow();
  readonly #onCrash = (e: unknown) => {
    this.killAllNow();
    console.error(e);
    process.exit(1);
  };

  constructor() {
    process.on("SIGINT", this.#onSignal);
    process.on("SIGTERM", this.#onSignal);
    process.on("exit", this.#onExit);
    process.on("uncaughtException", this.#onCrash);
  }

  spawn(
    name: string,
    command: string,
    args: string[],
    opts: { cwd?: string; env?: NodeJS.ProcessEnv; logFile?: string } = {},
  ): Managed {
    const child = spawn(command, args, {
      cwd: opts.cwd ?? ROOT,
      env: opts.env ?? process.env,
      detached: true,
      stdio: ["pipe", "pipe", "pipe"],
    });
    if (child.pid === undefined)
      throw new PetraError("PROCESS_FAILED", `${name}: could not spawn ${command}`, { name });
    let out = "";
    const log = opts.logFile ? fs.createWriteStream(opts.logFile, { flags: "a" }) : undefined;
    const take = (d: Buffer) => {
      out = (out + d.toString()).slice(-65536);
      log?.write(d);
    };
    child.stdout?.on("data", take);
    child.stderr?.on("data", take);
    // A child that outlives its stdin knows its runner is gone (prosumer-process exits on it).
    child.stdin?.on("error", () => undefined);
    const exited = new Promise<number | null>((resolve) =>
      child.once("exit", (code) => {
        log?.end();
        resolve(code);
      }),
    );
    const m: Managed = { name, pid: child.pid, child, output: () => out, exited };
    this.#procs.push(m);
    return m;
  }

  list(): readonly Managed[] {
    return this.#procs;
  }

  /** Stops one process: SIGTERM to its group, SIGKILL after `graceMs`. */
  async stop(m: Managed, graceMs = 3000): Promise<void> {
    if (m.child.exitCode !== null || m.child.signalCode !== null) return;
    signalGroup(m.pid, "SIGTERM");
    const timer = setTimeout(() => signalGroup(m.pid, "SIGKILL"), graceMs);
    await m.exited;
    clearTimeout(timer);
  }

  /** Stops everything, newest first (households before the DSO before the node). */
  async stopAll(graceMs = 3000): Promise<void> {
    for (const m of [...this.#procs].reverse()) await this.stop(m, graceMs);
    this.dispose();
  }

  killAllNow(): void {
    for (const m of this.#procs)
      if (m.child.exitCode === null && m.child.signalCode === null) signalGroup(m.pid, "SIGKILL");
  }

  /** Removes the process-wide handlers (after stopAll). */
  dispose(): void {
    process.removeListener("SIGINT", this.#onSignal);
    process.removeListener("SIGTERM", this.#onSignal);
    process.removeListener("exit", this.#onExit);
    process.removeListener("uncaughtException", this.#onCrash);
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Waits until `m` prints a line matching `pattern`; throws naming the process if it exits or times out first. */
export async function waitForOutput(m: Managed, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = m.output().match(pattern);
    if (match) return match;
    if (m.child.exitCode !== null || m.child.signalCode !== null) {
      throw new PetraError(
        "PROCESS_FAILED",
        `${m.name} exited (${m.child.exitCode ?? m.child.signalCode}) before it was ready: ${m.output().slice(-2000)}`,
        { name: m.name },
      );
    }
    if (Date.now() > deadline) {
      throw new PetraError("PROCESS_FAILED", `${m.name} not ready within ${timeoutMs} ms: ${m.output().slice(-2000)}`, {
        name: m.name,
      });
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * CPU seconds (user + system) and the command name in a /proc/<pid>/stat or
 * /proc/<pid>/task/<tid>/stat text. The name sits in parentheses and may hold spaces, so the
 * fields are counted after the last ")": utime and stime are the 12th and 13th there. Linux
 * reports them in clock ticks of 1/100 s (USER_HZ) on every architecture Node runs on.
 */
export function cpuFromProcStat(stat: string): { name: string; cpuS: number } {
  const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { name, cpuS: (Number(fields[11]) + Number(fields[12])) / 100 };
}
