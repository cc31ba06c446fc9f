import { spawn } from "node:child_process";
import * as path from "node:path";
import { expect } from "chai";
import { isError } from "../../common/errors";
import { Prover } from "../../mixer/prover";

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
    await fail(() => prover.verify("mixer-withdraw", ["1", "2"], proof), "INVALID_ARGUMENT");
    await prover.close();
    await fail(() => prover.verify("mixer-withdraw", ["1", "2", "3", "4", "5"], proof), "INVALID_ARGUMENT");
  });
});
