import * as fs from "node:fs";
import { expect } from "chai";
import { artifactPaths } from "../../circuits/instances";
import { isError } from "../../common/errors";
import { parseProvingKey } from "../../mixer/groth16-prover";
import { type GroupName, NativeMsm } from "../../mixer/native-msm";
import { Prover } from "../../mixer/prover";
import { withdrawalPublicSignals } from "../../mixer/public-signals";
import { snarkjs } from "../../mixer/snarkjs";
import { mixerWithdrawalCase, tamper } from "../fixtures/zk";

/** The slice of ffjavascript's curve these tests compare against (untyped upstream). */
interface RefGroup {
  g: Uint8Array;
  zero: Uint8Array;
  zeroAffine: Uint8Array;
  timesFr(p: Uint8Array, s: Uint8Array): Uint8Array;
  toAffine(p: Uint8Array): Uint8Array;
  neg(p: Uint8Array): Uint8Array;
  eq(a: Uint8Array, b: Uint8Array): boolean;
  multiExpAffine(bases: Uint8Array, scalars: Uint8Array): Promise<Uint8Array>;
}
interface RefCurve {
  G1: RefGroup;
  G2: RefGroup;
  Fr: {
    w: Uint8Array[];
    random(): Uint8Array;
    e(x: number): Uint8Array;
    fromMontgomery(a: Uint8Array): Uint8Array;
    mul(a: Uint8Array, b: Uint8Array): Uint8Array;
    sub(a: Uint8Array, b: Uint8Array): Uint8Array;
    fft(a: Uint8Array): Promise<Uint8Array>;
    ifft(a: Uint8Array): Promise<Uint8Array>;
    batchApplyKey(a: Uint8Array, first: Uint8Array, inc: Uint8Array): Promise<Uint8Array>;
  };
}

const R = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;

const le32 = (x: bigint): Uint8Array => {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((x >> BigInt(8 * i)) & 0xffn);
  return out;
};

describe("mixer/native-msm", () => {
  let curve: RefCurve;
  let msm: NativeMsm;

  before(async function () {
    this.timeout(120_000);
    curve = (await snarkjs.curves.getCurveFromName("bn128")) as unknown as RefCurve;
    msm = await NativeMsm.start(2);
  });

  after(async () => {
    await msm?.close();
  });

  const group = (g: GroupName): RefGroup => (g === "G1" ? curve.G1 : curve.G2);
  const randomScalar = (): Uint8Array => curve.Fr.fromMontgomery(curve.Fr.random());

  /** n random affine points, every seventh one at infinity. */
  function randomBases(g: GroupName, n: number): Uint8Array {
    const G = group(g);
    const size = g === "G1" ? 64 : 128;
    const out = new Uint8Array(n * size);
    for (let i = 0; i < n; i++) {
      out.set(i % 7 === 3 ? G.zeroAffine : G.toAffine(G.timesFr(G.g, curve.Fr.random())), i * size);
    }
    return out;
  }

  /** n scalars: random ones, with zeros and r-1 mixed in. */
  function scalars(n: number): Uint8Array {
    const out = new Uint8Array(n * 32);
    for (let i = 0; i < n; i++) out.set(i % 5 === 1 ? le32(0n) : i % 5 === 2 ? le32(R - 1n) : randomScalar(), i * 32);
    return out;
  }

  for (const g of ["G1", "G2"] as const) {
    it(`equals ffjavascript's multiExpAffine in ${g} for 0, 1, 2 and hundreds of points, with and without a table`, async function () {
      this.timeout(120_000);
      const G = group(g);
      for (const n of [0, 1, 2, 3, 65, 300]) {
        const bases = randomBases(g, n);
        const set = await msm.addBases(g, bases);
        for (const s of [scalars(n), new Uint8Array(n * 32), Uint8Array.from({ length: n * 32 }, () => 0xff)]) {
          const expected = await G.multiExpAffine(bases, s);
          expect(G.eq(await msm.multiExp(set, s), expected), `${g} n=${n}`).to.equal(true);
        }
        await msm.addTable(set);
        const s = scalars(n);
        expect(G.eq(await msm.multiExp(set, s), await G.multiExpAffine(bases, s)), `${g} n=${n} table`).to.equal(true);
      }
      // Repeated points and their negations under equal scalars land in the same bucket, so the
      // batched affine additions meet P + P and P + (-P), not just distinct points.
      const P1 = G.toAffine(G.timesFr(G.g, curve.Fr.random()));
      const P2 = G.toAffine(G.timesFr(G.g, curve.Fr.random()));
      const negP1 = G.toAffine(G.neg(P1));
      const size = g === "G1" ? 64 : 128;
      const same = randomScalar();
      const equalScalars = (n: number) => Uint8Array.from({ length: n * 32 }, (_, i) => same[i % 32] as number);
      for (const repeated of [
        [P1, P1, negP1, P1, P2, P1, negP1, negP1, P2, P2, P1, P1],
        [P1, negP1, P2, P2],
      ]) {
        const rb = new Uint8Array(repeated.length * size);
        repeated.forEach((p, i) => {
          rb.set(p, i * size);
        });
        const rset = await msm.addBases(g, rb);
        for (const rs of [equalScalars(repeated.length), scalars(repeated.length)]) {
          expect(G.eq(await msm.multiExp(rset, rs), await G.multiExpAffine(rb, rs)), `${g} repeated`).to.equal(true);
        }
        await msm.addTable(rset);
        const rs = equalScalars(repeated.length);
        expect(G.eq(await msm.multiExp(rset, rs), await G.multiExpAffine(rb, rs)), `${g} repeated, table`).to.equal(
          true,
        );
      }

      // A single point at infinity, and r-1 times a point (its negation).
      const inf = await msm.addBases(g, G.zeroAffine);
      expect(G.eq(await msm.multiExp(inf, le32(R - 1n)), G.zero)).to.equal(true);
      const gen = await msm.addBases(g, G.toAffine(G.g));
      const minusG = await msm.multiExp(gen, le32(R - 1n));
      expect(G.eq(await G.multiExpAffine(G.toAffine(G.g), le32(R - 1n)), minusG)).to.equal(true);
    });
  }

  it("equals multiExpAffine on the real zkey's five base sets, with and without tables", async function () {
    this.timeout(300_000);
    const key = parseProvingKey(fs.readFileSync(artifactPaths("mixer-withdraw").zkey));
    const own = await NativeMsm.start(2);
    try {
      for (const [bases, g] of [
        [key.a, "G1"],
        [key.b1, "G1"],
        [key.b2, "G2"],
        [key.c, "G1"],
        [key.h, "G1"],
      ] as const) {
        const n = bases.points.byteLength / bases.pointBytes;
        const s = scalars(n);
        const set = await own.addBases(g, bases.points);
        const expected = await group(g).multiExpAffine(bases.points, s);
        expect(group(g).eq(await own.multiExp(set, s), expected), `${g} n=${n}`).to.equal(true);
        await own.addTable(set);
        expect(group(g).eq(await own.multiExp(set, s), expected), `${g} n=${n} table`).to.equal(true);
      }
    } finally {
      await own.close();
    }
  });

  it("computes H's scalars (coset FFTs, A·B - C) exactly as ffjavascript's FFTs do", async function () {
    this.timeout(60_000);
    const { Fr } = curve;
    for (const power of [1, 2, 7, 13]) {
      const n = 1 << power;
      const evaluations = (): Uint8Array => {
        const out = new Uint8Array(n * 32);
        for (let i = 0; i < n; i++) out.set(Fr.random(), i * 32);
        return out;
      };
      const [a, b, c] = [evaluations(), evaluations(), evaluations()];
      const shift = Fr.w[power + 1] as Uint8Array;
      const odd = async (e: Uint8Array) => Fr.fft(await Fr.batchApplyKey(await Fr.ifft(e), Fr.e(1), shift));
      const [ao, bo, co] = await Promise.all([odd(a), odd(b), odd(c)]);
      const expected = new Uint8Array(n * 32);
      const at = (x: Uint8Array, i: number) => x.subarray(i * 32, (i + 1) * 32);
      for (let i = 0; i < n; i++) {
        expected.set(Fr.fromMontgomery(Fr.sub(Fr.mul(at(ao, i), at(bo, i)), at(co, i))), i * 32);
      }
      const got = await msm.quotient(n, Fr.w[power] as Uint8Array, shift, a, b, c);
      expect(Buffer.from(got).equals(Buffer.from(expected)), `n=${n}`).to.equal(true);
    }
  });

  it("refuses malformed requests with a clear error and keeps serving", async () => {
    const bases = randomBases("G1", 4);
    const set = await msm.addBases("G1", bases);
    const s6 = new Uint8Array(6 * 32);
    const fail = async (p: Promise<unknown>, pattern: RegExp): Promise<void> => {
      try {
        await p;
      } catch (e) {
        expect(String(e)).to.match(pattern);
        return;
      }
      expect.fail("accepted");
    };
    // Payload lengths that do not match the header: the child reads them and answers.
    await fail(msm.multiExp(set, new Uint8Array(4 * 32 + 5)), /4 scalars take 128 bytes, the request carries 133/);
    await fail(msm.multiExp(set, new Uint8Array(3 * 32)), /3 scalars for 4 bases/);
    await fail(msm.rawRequest(1, 0, 2, new Uint8Array(100)), /2 G1 points take 128 bytes, the request carries 100/);
    await fail(msm.multiExp(99, new Uint8Array(0)), /no base set 99/);
    await fail(msm.quotient(6, new Uint8Array(32), new Uint8Array(32), s6, s6, s6), /6 must be a power of 2/);
    // Bytes that are not a curve point in Montgomery form.
    await fail(
      msm.addBases(
        "G1",
        Uint8Array.from({ length: 64 }, (_, i) => i + 1),
      ),
      /is not an affine G1 point/,
    );
    const s = scalars(4);
    expect(curve.G1.eq(await msm.multiExp(set, s), await curve.G1.multiExpAffine(bases, s))).to.equal(true);
    // An operation the protocol does not have: refused, and the same child serves on.
    const pid = msm.pid;
    await fail(msm.rawRequest(77, 0, 3, new Uint8Array(10)), /unknown request op 77/);
    expect(msm.pid).to.equal(pid);
    expect(curve.G1.eq(await msm.multiExp(set, s), await curve.G1.multiExpAffine(bases, s))).to.equal(true);
    expect(msm.pid).to.equal(pid);
  });

  it("fails the request in flight clearly when the child is killed, and restarts it for the next", async function () {
    this.timeout(120_000);
    const bases = randomBases("G2", 200);
    const set = await msm.addBases("G2", bases);
    await msm.addTable(set);
    const s = scalars(200);
    const pid = msm.pid as number;
    // Stopped first, so it cannot answer before the kill: without this a fast machine finished
    // the 200-point multi-exponentiation between the write and the SIGKILL (a CI run did).
    process.kill(pid, "SIGSTOP");
    const inFlight = msm.multiExp(set, s);
    process.kill(pid, "SIGKILL");
    try {
      await inFlight;
      expect.fail("survived SIGKILL");
    } catch (e) {
      expect(isError(e, "PROCESS_FAILED"), String(e)).to.equal(true);
      expect(String(e)).to.match(new RegExp(`native MSM process \\(pid ${pid}\\) was killed by SIGKILL`));
    }
    // The new child gets every base set (and the table) again before the next request.
    expect(curve.G2.eq(await msm.multiExp(set, s), await curve.G2.multiExpAffine(bases, s))).to.equal(true);
    expect(msm.pid).to.not.equal(pid);
  });

  it("names a missing compiler when native is asked for, and falls back to wasm when it was only the default", async function () {
    this.timeout(120_000);
    const cc = process.env.CC;
    process.env.CC = "/nonexistent/petra-cc";
    const explicit = new Prover({ msm: "native" });
    const fallback = new Prover();
    try {
      try {
        await explicit.warm("mixer-withdraw");
        expect.fail("warmed without a compiler");
      } catch (e) {
        expect(isError(e, "PROCESS_FAILED"), String(e)).to.equal(true);
        expect(String(e)).to.match(/needs a C compiler: "\/nonexistent\/petra-cc" was not found/);
      }
      expect(await fallback.msmBackend()).to.equal("wasm");
    } finally {
      if (cc === undefined) delete process.env.CC;
      else process.env.CC = cc;
      await explicit.close();
      await fallback.close();
    }
  });

  it("proves natively: the proof verifies with snarkjs, not with a tampered signal, and survives a killed process", async function () {
    this.timeout(300_000);
    const { statement, inputs } = await mixerWithdrawalCase({
      seed: 11,
      count: 2,
      recipient: "0x3333333333333333333333333333333333333333",
      relayer: "0x4444444444444444444444444444444444444444",
      fee: 5n,
    });
    const prover = new Prover({ msm: "native" });
    const vkey = JSON.parse(fs.readFileSync(artifactPaths("mixer-withdraw").vkey, "utf8"));
    try {
      expect(await prover.msmBackend()).to.equal("native");
      const signals = withdrawalPublicSignals("mixer-withdraw", statement).map(String);
      const r = await prover.prove("mixer-withdraw", inputs);
      expect(r.publicSignals).to.deep.equal(signals);
      expect(await snarkjs.groth16.verify(vkey, r.publicSignals, r.proof)).to.equal(true);
      expect(await snarkjs.groth16.verify(vkey, tamper(r.publicSignals, 0), r.proof)).to.equal(false);
      expect(await snarkjs.groth16.verify(vkey, tamper(r.publicSignals, 2), r.proof)).to.equal(false);

      // Killed under a proof: the Prover retries it once on a new process, so it still proves.
      const pid = (await prover.nativePid()) as number;
      const proving = prover.prove("mixer-withdraw", inputs);
      process.kill(pid, "SIGKILL");
      const survived = await proving;
      expect(await snarkjs.groth16.verify(vkey, survived.publicSignals, survived.proof)).to.equal(true);
      const again = await prover.prove("mixer-withdraw", inputs);
      expect(await snarkjs.groth16.verify(vkey, again.publicSignals, again.proof)).to.equal(true);
      expect(await prover.nativePid()).to.not.equal(pid);
    } finally {
      await prover.close();
    }
  });
});
