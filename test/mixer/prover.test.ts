import { spawn } from "node:child_process";
import * as path from "node:path";
import { expect } from "chai";
import { isError } from "../../common/errors";
import { Prover } from "../../mixer/prover";
import { withdrawalPublicSignals } from "../../mixer/public-signals";
import { mixerWithdrawalCase, tamper } from "../fixtures/zk";

const ROOT = path.join(__dirname, "..", "..");

/**
 * Runs a TypeScript snippet in a fresh Node process. Resolves with its exit code, or "hung" if it
 * is still running `graceMs` after printing "ready" (so a slow start on a loaded machine is not
 * mistaken for a hang).
 */
function runChild(source: string, graceMs: number): Promise<number | "hung"> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", "-e", source], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "ignore"],
    });
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on("data", (chunk: Buffer) => {
      if (!timer && chunk.toString().includes("ready")) {
        timer = setTimeout(() => {
          child.kill("SIGKILL");
          resolve("hung");
        }, graceMs);
      }
    });
    child.on("exit", (code) => {
      if (timer) clearTimeout(timer);
      resolve(code ?? -1);
    });
  });
}

describe("mixer/prover", () => {
  it("lets Node exit after close(), and keeps it alive without (snarkjs worker threads)", async function () {
    this.timeout(60_000);
    const warm = `const { Prover } = require("./mixer/prover"); const p = new Prover();
      p.warm("mixer-withdraw").then(() => console.log("ready"))`;
    expect(await runChild(`${warm}.then(() => p.close());`, 20_000)).to.equal(0);
    // The control: without close() the same process never exits, which is what close() is for.
    expect(await runChild(`${warm};`, 3_000)).to.equal("hung");
  });

  it("stops its native multi-exponentiation process on close()", async function () {
    this.timeout(120_000);
    const prover = new Prover({ msm: "native" });
    await prover.warm("mixer-withdraw");
    const pid = (await prover.nativePid()) as number;
    expect(pid).to.be.a("number");
    expect(() => process.kill(pid, 0)).to.not.throw();
    await prover.close();
    expect(() => process.kill(pid, 0)).to.throw(/ESRCH/);
  });

  it("proves with precomputed base tables and on a single thread, natively and in wasm, and the proofs verify (as does a plain one)", async function () {
    this.timeout(300_000);
    const { statement, inputs } = await mixerWithdrawalCase({
      seed: 7,
      count: 3,
      recipient: "0x1111111111111111111111111111111111111111",
      relayer: "0x2222222222222222222222222222222222222222",
      fee: 3n,
    });
    const fast = new Prover({ precomputeBases: true });
    const single = new Prover({ threads: "single" });
    const plain = new Prover();
    const wasmFast = new Prover({ msm: "wasm", precomputeBases: true });
    const wasmSingle = new Prover({ msm: "wasm", threads: "single" });
    try {
      for (const prover of [fast, single, plain, wasmFast, wasmSingle]) {
        const r = await prover.prove("mixer-withdraw", inputs);
        const signals = withdrawalPublicSignals("mixer-withdraw", statement);
        expect(r.publicSignals).to.deep.equal(signals.map(String));
        expect(await plain.verify("mixer-withdraw", signals, r.proof)).to.equal(true);
        expect(await plain.verify("mixer-withdraw", tamper(r.publicSignals, 2), r.proof)).to.equal(false);
      }
    } finally {
      for (const prover of [fast, single, plain, wasmFast, wasmSingle]) await prover.close();
    }
  });

  it("refuses unknown circuits, wrong signal counts and use after close", async () => {
    const prover = new Prover();
    const fail = async (f: () => Promise<unknown>, code: "INVALID_ARGUMENT") => {
      try {
        await f();
      } catch (e) {
        expect(isError(e, code), String(e)).to.equal(true);
        return;
      }
      expect.fail("accepted");
    };
    const proof = { pi_a: [], pi_b: [], pi_c: [], protocol: "groth16", curve: "bn128" };
    await fail(() => prover.prove("no-such-circuit" as "mixer-withdraw", {}), "INVALID_ARGUMENT");
    await fail(async () => new Prover({ threads: "many" as "single" }), "INVALID_ARGUMENT");
    await fail(async () => new Prover({ msm: "gpu" as "native" }), "INVALID_ARGUMENT");
    await fail(() => prover.verify("mixer-withdraw", ["1", "2"], proof), "INVALID_ARGUMENT");
    // recipient, relayer and fee reach the circuit through extDataHash: one or the other, never both.
    await fail(
      () =>
        prover.prove("mixer-withdraw", {
          root: 1n,
          nullifierHash: 2n,
          extDataHash: 3n,
          recipient: 1n,
          relayer: 0n,
          fee: 0n,
        }),
      "INVALID_ARGUMENT",
    );
    await fail(
      () =>
        prover.prove("mixer-withdraw", { root: 1n, nullifierHash: 2n, recipient: 1n << 160n, relayer: 0n, fee: 0n }),
      "INVALID_ARGUMENT",
    );
    await prover.close();
    await fail(() => prover.verify("mixer-withdraw", ["1", "2", "3"], proof), "INVALID_ARGUMENT");
  });
});
