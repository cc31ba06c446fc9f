import { expect } from "chai";
import fc from "fast-check";
import {
  type Allowance,
  allowanceCommitment,
  allowanceInner,
  allowanceLeaf,
  splitAllowance,
} from "../../mixer/allowance";
import { buildPoseidon } from "../../mixer/poseidon";
import { counterBytes } from "../fixtures/zk";

// Pure TypeScript, so CI affords many runs; PETRA_PROPERTY_RUNS raises it like the other suites.
const RUNS = Number(process.env.PETRA_PROPERTY_RUNS ?? 300);
const SEED = Number(process.env.PETRA_PROPERTY_SEED ?? 20261125);

/** Cap available in interval t across a set of allowances. */
const capAt = (parts: readonly (Allowance | null)[], t: bigint): bigint =>
  parts.reduce((sum, p) => (p && p.windowStart <= t && t <= p.windowEnd ? sum + p.capW : sum), 0n);

describe("mixer/allowance # splitAllowance (property)", () => {
  it("leaves exactly cap - power inside [start, end] and the full cap elsewhere in the window, over repeated withdrawals", () => {
    const rnd = counterBytes(1);
    const arb = fc.record({
      capW: fc.bigInt({ min: 1n, max: 10_000n }),
      windowStart: fc.bigInt({ min: 0n, max: 50n }),
      length: fc.bigInt({ min: 0n, max: 30n }),
      draws: fc.array(fc.tuple(fc.nat(1000), fc.nat(1000), fc.nat(1000), fc.nat(1000)), { minLength: 1, maxLength: 6 }),
    });
    fc.assert(
      fc.property(arb, ({ capW, windowStart, length, draws }) => {
        const windowEnd = windowStart + length;
        let live: Allowance[] = [{ capW, windowStart, windowEnd, secret: 1n, nullifier: 2n }];
        const taken = new Map<bigint, bigint>();
        for (const [pick, a, b, p] of draws) {
          // Spend one live allowance on a random sub-window and a random power within its cap.
          const spent = live[pick % live.length] as Allowance;
          const span = spent.windowEnd - spent.windowStart + 1n;
          const s = spent.windowStart + (BigInt(a) % span);
          const e = s + (BigInt(b) % (spent.windowEnd - s + 1n));
          const powerW = 1n + (BigInt(p) % spent.capW);
          const parts = splitAllowance(spent, { powerW, start: s, end: e }, rnd);
          for (let t = s; t <= e; t++) taken.set(t, (taken.get(t) ?? 0n) + powerW);
          // Per interval, the parts hold exactly what the spent allowance held minus what was taken.
          for (let t = spent.windowStart; t <= spent.windowEnd; t++) {
            const expected = spent.capW - (t >= s && t <= e ? powerW : 0n);
            expect(capAt(parts, t)).to.equal(expected);
          }
          live = [...live.filter((x) => x !== spent), ...parts.filter((x): x is Allowance => x !== null)];
          if (live.length === 0) break;
        }
        // Exact books per interval: what is left plus what was taken is the original cap, never
        // more; and nothing leaks outside the window.
        for (let t = windowStart; t <= windowEnd; t++) {
          expect(capAt(live, t) + (taken.get(t) ?? 0n)).to.equal(capW);
        }
        expect(capAt(live, windowStart - 1n)).to.equal(0n);
        expect(capAt(live, windowEnd + 1n)).to.equal(0n);
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
  });

  it("the leaf the desk computes from (cap, window, inner) is the household's commitment, and binds cap and window", async () => {
    const poseidon = await buildPoseidon();
    const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
    const field = fc.bigInt({ min: 0n, max: (1n << 248n) - 1n });
    fc.assert(
      fc.property(
        fc.record({ capW: u64, windowStart: u64, windowEnd: u64, secret: field, nullifier: field }),
        fc.constantFrom("capW", "windowStart", "windowEnd"),
        fc.bigInt({ min: 1n, max: 1n << 32n }),
        (a, field, delta) => {
          const inner = allowanceInner(poseidon, a);
          const leaf = allowanceLeaf(poseidon, a, inner);
          expect(leaf).to.equal(allowanceCommitment(poseidon, a));
          // Another cap or window over the same inner is another leaf.
          expect(allowanceLeaf(poseidon, { ...a, [field]: a[field] + delta }, inner)).to.not.equal(leaf);
        },
      ),
      // Each run hashes three times (~1 ms): fewer runs than the pure splits above.
      { numRuns: Math.max(20, Math.floor(RUNS / 5)), seed: SEED, endOnFailure: true },
    );
  });

  it("refuses requests outside the cap or the window, naming the parameter", () => {
    const a: Allowance = { capW: 100n, windowStart: 10n, windowEnd: 20n, secret: 1n, nullifier: 2n };
    expect(() => splitAllowance(a, { powerW: 101n, start: 10n, end: 20n })).to.throw(/^powerW/);
    expect(() => splitAllowance(a, { powerW: 0n, start: 10n, end: 20n })).to.throw(/^powerW/);
    expect(() => splitAllowance(a, { powerW: 1n, start: 9n, end: 20n })).to.throw(/^start/);
    expect(() => splitAllowance(a, { powerW: 1n, start: 10n, end: 21n })).to.throw(/^start/);
    expect(() => splitAllowance(a, { powerW: 1n, start: 15n, end: 14n })).to.throw(/^start/);
    expect(() => splitAllowance(a, { powerW: -1n, start: 10n, end: 20n })).to.throw(/^powerW/);
  });
});
