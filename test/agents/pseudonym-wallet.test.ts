import { expect } from "chai";
import { getBytes, HDNodeWallet, hexlify, sha256, toBeHex, toUtf8Bytes } from "ethers";
import {
  deriveChildKey,
  deriveKeyPath,
  masterKeyNode,
  PseudonymWallet,
  type RotationPolicy,
} from "../../agents/pseudonym-wallet";
import { isError } from "../../common/errors";
import { createRng } from "../../common/rng";
import { expectExactly } from "../fixtures/exactly";

function wallet(policy: RotationPolicy, opts: { runSeed?: number; householdId?: string; rngSeed?: number } = {}) {
  return new PseudonymWallet({
    runSeed: opts.runSeed ?? 7,
    householdId: opts.householdId ?? "f1-h2-c8",
    policy,
    rng: createRng(opts.rngSeed ?? 1),
  });
}

const addressesFor = (w: PseudonymWallet, intervals: number[]) => intervals.map((k) => w.next(k).address);

describe("PseudonymWallet # derivation", () => {
  it("derives the same addresses from the same run seed and household", () => {
    expect(wallet({ kind: "per-offer" }).at(3).address).to.equal(wallet({ kind: "per-offer" }).at(3).address);
    expect(wallet({ kind: "single" }).main().address).to.equal(wallet({ kind: "single" }).main().address);
  });

  it("gives other households and other seeds other addresses", () => {
    const a = wallet({ kind: "single" }).at(0).address;
    expect(wallet({ kind: "single" }, { householdId: "f4-h5-c1" }).at(0).address).to.not.equal(a);
    expect(wallet({ kind: "single" }, { runSeed: 8 }).at(0).address).to.not.equal(a);
  });

  it("keeps the main address apart from every pseudonym", () => {
    const w = wallet({ kind: "per-offer" });
    const main = w.main().address;
    for (let i = 0; i < 20; i++) expect(w.at(i).address).to.not.equal(main);
  });

  it("hands out keys that control the addresses", async () => {
    const { Wallet } = await import("ethers");
    const p = wallet({ kind: "single" }).at(0);
    expect(new Wallet(p.privateKey).address).to.equal(p.address);
  });

  it("derives each child as ethers' BIP-32 deriveChild does", () => {
    const parent = HDNodeWallet.fromSeed(sha256(toUtf8Bytes("petra-lab/test"))).derivePath("m/44'/60'/1'/0");
    for (const i of [0, 1, 2, 17, 1000, 2 ** 31 - 1]) {
      const node = parent.deriveChild(i);
      expectExactly(deriveChildKey(parent, i), { address: node.address, privateKey: node.privateKey });
    }
    expect(() => deriveChildKey(parent, 2 ** 31)).to.throw(/index/);
  });

  it("derives master keys and whole paths, hardened levels too, as ethers' HDNodeWallet does", () => {
    for (const label of ["a", "b", "petra-lab/run/7/household/f1-h2-c8"]) {
      const seed = sha256(toUtf8Bytes(label));
      const root = masterKeyNode(getBytes(seed));
      for (const p of ["m/44'/60'/0'/0/0", "m/44'/60'/1'/0", "m/0/1/2", "m/2147483647'/5"]) {
        const theirs = HDNodeWallet.fromSeed(seed).derivePath(p);
        const ours = deriveKeyPath(root, p);
        expect(toBeHex(ours.privateKey, 32), `${label} ${p}`).to.equal(theirs.privateKey);
        expect(hexlify(ours.chainCode)).to.equal(theirs.chainCode);
      }
    }
    expect(() => deriveKeyPath(masterKeyNode(getBytes(sha256("0x01"))), "m/1/x")).to.throw(/path/);
  });

  it("keeps the addresses of earlier runs: main and pseudonyms as ethers derives them from the run seed", () => {
    const w = wallet({ kind: "per-offer" });
    const root = HDNodeWallet.fromSeed(sha256(toUtf8Bytes("petra-lab/run/7/household/f1-h2-c8")));
    expect(w.main().address).to.equal(root.derivePath("m/44'/60'/0'/0/0").address);
    const account = root.derivePath("m/44'/60'/1'/0");
    for (const i of [0, 1, 5]) {
      expect(w.at(i)).to.deep.equal({
        index: i,
        address: account.deriveChild(i).address,
        privateKey: account.deriveChild(i).privateKey,
      });
    }
  });
});

describe("PseudonymWallet # rotation", () => {
  const intervals = [57, 57, 58, 58, 58, 59, 60, 60];

  it("single: one address for everything", () => {
    const w = wallet({ kind: "single" });
    expect(new Set(addressesFor(w, intervals)).size).to.equal(1);
    expect(w.used()).to.have.length(1);
  });

  it("per-interval: one address per interval, a new one for each new interval", () => {
    const w = wallet({ kind: "per-interval" });
    const a = addressesFor(w, intervals);
    expect(a[0]).to.equal(a[1]);
    expect(a[2]).to.equal(a[4]);
    expect(new Set(a).size).to.equal(4);
    // Coming back to an interval gives its address again, not a fresh one.
    expect(w.next(57).address).to.equal(a[0]);
  });

  it("per-offer: a fresh address for every withdrawal", () => {
    const w = wallet({ kind: "per-offer" });
    expect(new Set(addressesFor(w, intervals)).size).to.equal(intervals.length);
  });

  it("finds a handed-out pseudonym by its address, and nothing for any other address", () => {
    const w = wallet({ kind: "per-offer" });
    addressesFor(w, intervals);
    for (const p of w.used()) expect(w.find(p.address)).to.equal(p);
    expect(w.find(w.main().address)).to.equal(undefined);
    expect(w.find(wallet({ kind: "per-offer" }, { householdId: "f1-h2-c9" }).at(0).address)).to.equal(undefined);
  });

  it("pool: only pool members, chosen by the seeded rng, reproducibly", () => {
    const draws = Array.from({ length: 200 }, (_, i) => 57 + (i % 14));
    const w = wallet({ kind: "pool", poolSize: 4 });
    const a = addressesFor(w, draws);
    const pool = new Set([0, 1, 2, 3].map((i) => w.at(i).address));
    for (const x of a) expect(pool.has(x)).to.equal(true);
    expect(new Set(a).size).to.equal(4);
    expectExactly(addressesFor(wallet({ kind: "pool", poolSize: 4 }), draws), a);
    expect(addressesFor(wallet({ kind: "pool", poolSize: 4 }, { rngSeed: 2 }), draws)).to.not.deep.equal(a);
  });

  it("rejects a bad policy naming the field", () => {
    for (const [policy, field] of [
      [{ kind: "pool", poolSize: 0 }, "policy.poolSize"],
      [{ kind: "sometimes" }, "policy.kind"],
    ] as const) {
      try {
        wallet(policy as unknown as RotationPolicy);
        expect.fail("accepted a bad policy");
      } catch (e) {
        expect(isError(e, "INVALID_ARGUMENT")).to.equal(true);
        expect((e as Error).message).to.contain(field);
      }
    }
  });
});
