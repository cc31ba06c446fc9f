/**
 * Multi-exponentiations over BN254 G1 and G2 (and the six FFTs of H's scalars) in native code
 * (mixer/native/msm.c), run as a long-lived child process: the wasm multi-exponentiations are what
 * kept a warm proof above 0.4 s, and 64-bit limbs with 128-bit products do a field multiplication
 * in a fraction of the time wasm's 32-bit ones take. A child process rather than an N-API addon
 * because it needs only gcc, nothing in `npm ci`, and a crash in it cannot take Node down with it.
 *
 * The program is compiled on first use into node_modules/.cache/petra-msm/<hash of the sources,
 * flags, compiler and CPU model>/, so a changed source gets a new binary and an unchanged one is
 * compiled once per checkout (~2 s). Bases are sent once (and again after a restart); each
 * multi-exponentiation then sends only its scalars and gets back one Jacobian point in
 * ffjavascript's layout, which the prover adds to the others with ffjavascript as before.
 */
import { type ChildProcessWithoutNullStreams, execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { isError, PetraError } from "../common/errors";

const SOURCE_DIR = path.join(__dirname, "native");
const SOURCES = ["msm.c", "curve.h"];
const CACHE_DIR = path.join(__dirname, "..", "node_modules", ".cache", "petra-msm");
const FLAGS = ["-O3", "-std=c11", "-pthread"];
/*
 * Tuned for the CPU it is built on (mulx and adx on x86-64: ~25% faster multi-exponentiations,
 * measured), which is why the CPU model is part of the cache key; a compiler that refuses the
 * flag gets the portable build.
 */
const TUNE = ["-march=native"];

/** Request operations of the child's protocol (see msm.c). */
const OP = { G1_BASES: 1, G2_BASES: 2, MULTIPLY: 3, TABLE: 4, QUOTIENT: 5 } as const;
/** Bytes per affine base and per Jacobian result. */
const SIZES = { G1: { affine: 64, jacobian: 96 }, G2: { affine: 128, jacobian: 192 } } as const;
export type GroupName = keyof typeof SIZES;

const compiler = (): string => process.env.CC || "gcc";

/** By compiler, so that a test (or a user) switching CC gets a build with the one asked for. */
const building = new Map<string, Promise<string>>();

/**
 * The path of the compiled child program, compiling it if this checkout has not yet. Concurrent
 * callers in one process share one compilation; other processes compiling at the same time each
 * write their own temporary file and rename it into place, which is atomic, so nobody runs a
 * half-written binary.
 */
export function nativeMsmBinary(): Promise<string> {
  const cc = compiler();
  let b = building.get(cc);
  if (!b) {
    b = compile(cc).catch((e: unknown) => {
      building.delete(cc);
      throw e;
    });
    building.set(cc, b);
  }
  return b;
}

async function compile(cc: string): Promise<string> {
  const hash = createHash("sha256");
  const cpu = os.cpus()[0]?.model ?? "";
  hash.update(JSON.stringify({ cc, flags: FLAGS, tune: TUNE, arch: process.arch, platform: process.platform, cpu }));
  for (const f of SOURCES) hash.update(fs.readFileSync(path.join(SOURCE_DIR, f)));
  const dir = path.join(CACHE_DIR, hash.digest("hex").slice(0, 16));
  const binary = path.join(dir, "petra-msm");
  if (fs.existsSync(binary)) return binary;
  fs.mkdirSync(dir, { recursive: true });
  const tmp = `${binary}.${process.pid}.tmp`;
  const run = (flags: string[]): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      execFile(cc, [...flags, "-o", tmp, path.join(SOURCE_DIR, "msm.c")], (err, _stdout, stderr) => {
        if (!err) return resolve();
        const missing = (err as NodeJS.ErrnoException).code === "ENOENT";
        reject(
          new PetraError(
            "PROCESS_FAILED",
            missing
              ? `native multi-exponentiation needs a C compiler: "${cc}" was not found (apt-get install gcc, or set CC)`
              : `native multi-exponentiation: ${cc} failed to compile mixer/native/msm.c: ${stderr.trim() || err.message}`,
            { compiler: cc, missing },
            { cause: err },
          ),
        );
      });
    });
  try {
    await run([...FLAGS, ...TUNE]);
  } catch (e) {
    if ((e as PetraError).info?.missing) throw e;
    await run(FLAGS);
  }
  fs.renameSync(tmp, binary);
  return binary;
}

interface Pending {
  what: string;
  resolve(payload: Buffer): void;
  reject(e: Error): void;
}

interface BaseSet {
  group: GroupName;
  /** -1 once the child refused the set (it is not sent again after a restart). */
  count: number;
  points: Uint8Array;
  /** Whether a fixed-base table was asked for (built again after a restart). */
  table: boolean;
}

/**
 * One child process and the base sets it holds. A request made after the child died (killed, out
 * of memory, a bug) starts a new one and sends it the base sets again, so a crash costs the
 * proofs in flight, which fail with an error naming what happened, and not the ones after.
 */
export class NativeMsm {
  private child?: ChildProcessWithoutNullStreams;
  private readonly sets: BaseSet[] = [];
  private pending: Pending[] = [];
  private inbox: Buffer = Buffer.alloc(0);
  private stderrTail = "";
  private closed = false;

  private constructor(
    private readonly binary: string,
    private readonly threads: number,
  ) {}

  /** Compiles the child program if needed and starts it with `threads` threads per multi-exponentiation. */
  static async start(threads: number): Promise<NativeMsm> {
    const msm = new NativeMsm(await nativeMsmBinary(), threads);
    msm.spawn();
    // A binary that cannot run here (a noexec mount, a foreign CPU) must fail now, where the
    // Prover can still fall back to wasm, not at the first proof. Op 0 does not exist: any answer,
    // a refusal included, shows the process runs.
    try {
      await msm.send(msm.request(0, 0, 0, new Uint8Array(0)), "a liveness check");
    } catch (e) {
      if (!isError(e, "INVALID_ARGUMENT")) {
        await msm.close();
        throw e;
      }
    }
    return msm;
  }

  /** The running child's process id (undefined between a crash and the next request). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Stores affine bases (ffjavascript's Montgomery form; (0, 0) is infinity) and returns their set number. */
  async addBases(group: GroupName, points: Uint8Array): Promise<number> {
    const set = this.sets.length;
    const count = points.byteLength / SIZES[group].affine;
    if (!Number.isInteger(count)) {
      throw new PetraError(
        "INVALID_ARGUMENT",
        `bases: ${points.byteLength} bytes is not a whole number of ${group} points`,
      );
    }
    const base: BaseSet = { group, count, points, table: false };
    this.sets.push(base);
    try {
      await this.send(this.basesRequest(set, base), `storing ${count} ${group} bases`);
    } catch (e) {
      // A set the child refused must not be sent again after a restart; keep the numbering.
      this.sets[set] = { ...base, count: -1 };
      throw e;
    }
    return set;
  }

  /**
   * Precomputes 2^(c·j) · base for every base of set `set` and every window j (c chosen by the
   * child, ~12 bits: ~20 x the set's memory, ~0.5 s for a circuit's five sets on 2 cores), so a
   * multi-exponentiation sums all windows into one set of buckets: one bucket reduction per
   * thread instead of one per window.
   */
  async addTable(set: number): Promise<void> {
    const base = this.sets[set];
    if (!base || base.count < 0) throw new PetraError("INVALID_ARGUMENT", `addTable: no base set ${set}`);
    base.table = true;
    await this.send(this.request(OP.TABLE, set, 0, new Uint8Array(0)), `building the table of base set ${set}`);
  }

  /**
   * Σ scalars_i · bases_i over base set `set`; scalars are 32-byte little-endian integers in
   * standard form. Returns the sum as an ffjavascript Jacobian point (x, y, z in Montgomery form).
   */
  async multiExp(set: number, scalars: Uint8Array): Promise<Uint8Array> {
    const base = this.sets[set];
    if (!base || base.count < 0) throw new PetraError("INVALID_ARGUMENT", `multiExp: no base set ${set}`);
    const count = Math.floor(scalars.byteLength / 32);
    const payload = await this.send(
      this.request(OP.MULTIPLY, set, count, scalars),
      `a ${base.group} multi-exponentiation of ${count} scalars over base set ${set}`,
    );
    if (payload.byteLength !== SIZES[base.group].jacobian) {
      throw new PetraError(
        "PROCESS_FAILED",
        `native MSM returned ${payload.byteLength} bytes for a ${base.group} point`,
      );
    }
    return new Uint8Array(payload);
  }

  /**
   * H's scalars (snarkjs' steps, natively): A, B, C given as evaluations on the domain of
   * `domainSize` points with root of unity `w` (Montgomery Fr elements, as ffjavascript keeps
   * them), each moved to the coset `shift`·⟨w⟩ by an inverse and a forward FFT, joined as A·B - C,
   * returned in standard form: what the H multi-exponentiation takes. ~10 ms where the same six
   * FFTs cost ~80 ms of wasm worker time.
   */
  async quotient(
    domainSize: number,
    w: Uint8Array,
    shift: Uint8Array,
    a: Uint8Array,
    b: Uint8Array,
    c: Uint8Array,
  ): Promise<Uint8Array> {
    const payload = Buffer.concat([w, shift, a, b, c]);
    const out = await this.send(
      this.request(OP.QUOTIENT, 0, domainSize, payload),
      `the quotient over a domain of ${domainSize}`,
    );
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }

  /** Sends a raw request (for tests of the protocol's error paths). */
  rawRequest(op: number, set: number, count: number, payload: Uint8Array): Promise<Buffer> {
    return this.send(this.request(op, set, count, payload), `raw request op ${op}`);
  }

  /** Stops the child (SIGTERM to its pid, SIGKILL if it lingers) and fails whatever is in flight. */
  async close(): Promise<void> {
    this.closed = true;
    const child = this.child;
    if (!child) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => child.kill("SIGKILL"), 2_000);
      child.once("close", () => {
        clearTimeout(force);
        resolve();
      });
      child.stdin.end();
      child.kill("SIGTERM");
    });
  }

  private basesRequest(set: number, base: BaseSet): Buffer[] {
    return this.request(base.group === "G1" ? OP.G1_BASES : OP.G2_BASES, set, base.count, base.points);
  }

  private request(op: number, set: number, count: number, payload: Uint8Array): Buffer[] {
    const head = Buffer.alloc(16);
    head.writeUInt32LE(op, 0);
    head.writeUInt32LE(set, 4);
    head.writeUInt32LE(count, 8);
    head.writeUInt32LE(payload.byteLength, 12);
    return [head, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)];
  }

  private send(parts: Buffer[], what: string): Promise<Buffer> {
    if (this.closed) return Promise.reject(new PetraError("INVALID_ARGUMENT", "native MSM: closed"));
    if (!this.child) {
      this.spawn();
      // The new child knows no bases: send them again, ahead of this request.
      this.sets.forEach((base, set) => {
        if (base.count < 0) return;
        // The request that needs the set reports any failure.
        this.enqueue(this.basesRequest(set, base), `re-storing base set ${set}`).catch(() => {});
        if (base.table) {
          this.enqueue(this.request(OP.TABLE, set, 0, new Uint8Array(0)), `rebuilding table ${set}`).catch(() => {});
        }
      });
    }
    return this.enqueue(parts, what);
  }

  private enqueue(parts: Buffer[], what: string): Promise<Buffer> {
    const child = this.child as ChildProcessWithoutNullStreams;
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.push({ what, resolve, reject });
      for (const p of parts) child.stdin.write(p);
    });
  }

  private spawn(): void {
    const child = spawn(this.binary, [String(this.threads)], { stdio: ["pipe", "pipe", "pipe"] });
    this.child = child;
    this.inbox = Buffer.alloc(0);
    this.stderrTail = "";
    child.stdout.on("data", (chunk: Buffer) => this.receive(chunk));
    child.stderr.on("data", (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-500);
    });
    // EPIPE on a dead child's stdin: "close" below reports the death itself.
    child.stdin.on("error", () => {});
    let failed = false;
    const fail = (how: string): void => {
      if (failed) return;
      failed = true;
      if (this.child === child) this.child = undefined;
      const pending = this.pending;
      this.pending = [];
      const stderr = this.stderrTail.trim();
      for (const p of pending) {
        p.reject(
          new PetraError(
            "PROCESS_FAILED",
            `native MSM process (pid ${child.pid}) ${how}; request in flight: ${p.what}${stderr ? `; its stderr: ${stderr}` : ""}`,
            { pid: child.pid },
          ),
        );
      }
    };
    child.on("error", (e) => fail(`could not run (${e.message})`));
    child.on("close", (code, signal) => {
      if (this.closed) return fail("was stopped by close()");
      fail(signal ? `was killed by ${signal}` : `exited with code ${code}`);
    });
  }

  private receive(chunk: Buffer): void {
    this.inbox = this.inbox.length ? Buffer.concat([this.inbox, chunk]) : chunk;
    while (this.inbox.length >= 8) {
      const status = this.inbox.readUInt32LE(0);
      const len = this.inbox.readUInt32LE(4);
      if (this.inbox.length < 8 + len) return;
      const payload = Buffer.from(this.inbox.subarray(8, 8 + len));
      this.inbox = this.inbox.subarray(8 + len);
      const p = this.pending.shift();
      if (!p) continue;
      if (status === 0) {
        p.resolve(payload);
      } else {
        p.reject(
          new PetraError("INVALID_ARGUMENT", `native MSM refused ${p.what}: ${payload.toString("utf8")}`, {
            pid: this.child?.pid,
          }),
        );
      }
    }
  }
}
