import { expect } from "chai";
import { ZK } from "../../common/zk-params";
import {
  type Allowance,
  type AllowanceParts,
  allowanceCommitment,
  allowanceNullifierHash,
  allowanceWithdrawInputs,
  type EnergyRequest,
  freshSecret,
  splitAllowance,
} from "../../mixer/allowance";
import { MerkleTree } from "../../mixer/merkle-tree";
import { buildPoseidon, type Poseidon } from "../../mixer/poseidon";
import { type ProofResult, Prover } from "../../mixer/prover";
import { counterBytes, expectWitnessInvalid, signalIndex, tamper } from "../fixtures/zk";

const RECIPIENT = 0x3333333333333333333333333333333333333333n;

describe("circuits # allowance-withdraw", () => {
  const rnd = counterBytes(100);
  let poseidon: Poseidon;
  let prover: Prover;
  let tree: MerkleTree;
  // 3 kW per interval over intervals 100..195 (a day of 15-minute intervals).
  let allowance: Allowance;
  const request: EnergyRequest = { powerW: 1200n, start: 130n, end: 140n, recipient: RECIPIENT };
  let parts: AllowanceParts;
  let valid: ProofResult;

  const inputsFor = (a: Allowance, req: EnergyRequest, p: AllowanceParts, t: MerkleTree = tree) =>
    allowanceWithdrawInputs(
      a,
      t.proof(t.indexOf(allowanceCommitment(poseidon, a))),
      req,
      p,
      allowanceNullifierHash(poseidon, a),
      poseidon,
    );

  /** Parts as splitAllowance would make them, but without its checks: for statements the circuit must refuse. */
  const rawParts = (a: Allowance, req: EnergyRequest): AllowanceParts => {
    const s = () => ({ secret: freshSecret(rnd), nullifier: freshSecret(rnd) });
    return [
      { capW: a.capW - req.powerW, windowStart: req.start, windowEnd: req.end, ...s() },
      { capW: a.capW, windowStart: a.windowStart, windowEnd: req.start - 1n, ...s() },
      { capW: a.capW, windowStart: req.end + 1n, windowEnd: a.windowEnd, ...s() },
    ];
  };

  before(async () => {
    poseidon = await buildPoseidon();
    prover = new Prover();
    allowance = {
      capW: 3000n,
      windowStart: 100n,
      windowEnd: 195n,
      secret: freshSecret(rnd),
      nullifier: freshSecret(rnd),
    };
    const others: Allowance[] = [2000n, 5000n, 1500n].map((capW) => ({
      capW,
      windowStart: 100n,
      windowEnd: 195n,
      secret: freshSecret(rnd),
      nullifier: freshSecret(rnd),
    }));
    tree = await MerkleTree.create({ leaves: [...others, allowance].map((a) => allowanceCommitment(poseidon, a)) });
    parts = splitAllowance(allowance, request, rnd);
    valid = await prover.prove("allowance-withdraw", inputsFor(allowance, request, parts));
  });

  after(async () => {
    await prover.close();
  });

  it("proves a withdrawal within cap and window, outputting the three remaining parts", async () => {
    expect(await prover.verify("allowance-withdraw", valid.publicSignals, valid.proof)).to.equal(true);
    expect(parts.map((p) => p && [p.capW, p.windowStart, p.windowEnd])).to.deep.equal([
      [1800n, 130n, 140n],
      [3000n, 100n, 129n],
      [3000n, 141n, 195n],
    ]);
    expect(valid.publicSignals.slice(0, 3)).to.deep.equal(
      parts.map((p) => allowanceCommitment(poseidon, p).toString()),
    );
    expect(valid.publicSignals.slice(3)).to.deep.equal(
      [
        tree.root,
        allowanceNullifierHash(poseidon, allowance),
        request.powerW,
        request.start,
        request.end,
        RECIPIENT,
      ].map(String),
    );
  });

  for (const signal of [
    "root",
    "nullifierHash",
    "powerW",
    "start",
    "end",
    "recipient",
    "newCommitments[0]",
    "newCommitments[1]",
    "newCommitments[2]",
  ]) {
    it(`fails verification when ${signal} is tampered with`, async () => {
      const i = signalIndex("allowance-withdraw", signal);
      expect(await prover.verify("allowance-withdraw", tamper(valid.publicSignals, i), valid.proof)).to.equal(false);
    });
  }

  it("spends a remainder again, and a withdrawal of everything leaves only empty parts", async () => {
    // The [start, end] remainder (1800 W over 130..140) goes back into the tree, as the vault does.
    const remainder = parts[0] as Allowance;
    const next = await MerkleTree.create({
      leaves: [...tree.leaves, ...parts.map((p) => allowanceCommitment(poseidon, p))],
    });
    const all: EnergyRequest = { powerW: 1800n, start: 130n, end: 140n, recipient: RECIPIENT };
    const allParts = splitAllowance(remainder, all, rnd);
    expect(allParts).to.deep.equal([null, null, null]);
    const r = await prover.prove("allowance-withdraw", inputsFor(remainder, all, allParts, next));
    expect(r.publicSignals.slice(0, 3)).to.deep.equal(
      ["0", "0", "0"].map(() => ZK.allowance.emptyCommitment.toString()),
    );
    expect(await prover.verify("allowance-withdraw", r.publicSignals, r.proof)).to.equal(true);
  });

  describe("refuses statements outside the allowance", () => {
    const cases: [string, Partial<EnergyRequest>][] = [
      ["power above the cap", { powerW: 3001n }],
      ["zero power", { powerW: 0n }],
      ["negative power (field wrap-around)", { powerW: ZK.fieldModulus - 1n }],
      ["a start before the window", { start: 99n }],
      ["an end after the window", { end: 196n }],
      ["a start after the end", { start: 141n, end: 140n }],
      ["a start wrapped below zero", { start: ZK.fieldModulus - 1n }],
    ];
    for (const [what, change] of cases) {
      it(`cannot prove ${what}`, async () => {
        const req = { ...request, ...change };
        expect(() => splitAllowance(allowance, req, rnd)).to.throw();
        await expectWitnessInvalid(() =>
          prover.prove("allowance-withdraw", inputsFor(allowance, req, rawParts(allowance, req))),
        );
      });
    }

    it("cannot spend a larger cap or a wider window than the leaf the DSO issued", async () => {
      // The desk hashed (3000 W, 100..195) into the leaf; the household knows secret and nullifier
      // but cannot open the leaf to other values: the claimed leaf is not in the tree.
      const issuedIndex = tree.indexOf(allowanceCommitment(poseidon, allowance));
      const claims: [string, Partial<Allowance>, Partial<EnergyRequest>][] = [
        ["a larger cap", { capW: 3500n }, { powerW: 3400n }],
        ["an earlier window start", { windowStart: 90n }, { start: 95n }],
        ["a later window end", { windowEnd: 200n }, { end: 199n }],
      ];
      for (const [what, claim, change] of claims) {
        const forged = { ...allowance, ...claim };
        const req = { ...request, ...change };
        const inputs = allowanceWithdrawInputs(
          forged,
          tree.proof(issuedIndex),
          req,
          splitAllowance(forged, req, rnd),
          allowanceNullifierHash(poseidon, forged),
          poseidon,
        );
        await expectWitnessInvalid(() => prover.prove("allowance-withdraw", inputs)).catch((e) => {
          throw new Error(`${what}: ${(e as Error).message}`);
        });
      }
    });

    it("cannot output a remainder larger than the cap left", async () => {
      const inflated = rawParts(allowance, request).map((p, i) =>
        i === 0 && p ? { ...p, capW: p.capW + 1n } : p,
      ) as unknown as AllowanceParts;
      const inputs = inputsFor(allowance, request, inflated);
      const r = await prover.prove("allowance-withdraw", inputs);
      // The circuit computes the outputs itself: the inflated cap never reaches them.
      expect(r.publicSignals[0]).to.not.equal(allowanceCommitment(poseidon, inflated[0]).toString());
      expect(r.publicSignals[0]).to.equal(
        allowanceCommitment(poseidon, {
          ...(inflated[0] as Allowance),
          capW: allowance.capW - request.powerW,
        }).toString(),
      );
    });
  });
});
