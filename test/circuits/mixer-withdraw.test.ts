import { expect } from "chai";
import { ZK } from "../../common/zk-params";
import { MerkleTree } from "../../mixer/merkle-tree";
import { createNote, type MixerNote, noteCommitment, noteNullifierHash } from "../../mixer/note";
import { buildPoseidon, type Poseidon } from "../../mixer/poseidon";
import { type ProofResult, Prover } from "../../mixer/prover";
import { extDataHash, type MixerWithdrawalPublic, withdrawalPublicSignals } from "../../mixer/public-signals";
import type { CircuitInputs } from "../../mixer/snarkjs";
import { counterBytes, expectWitnessInvalid, signalIndex, tamper } from "../fixtures/zk";

const RECIPIENT = "0x1111111111111111111111111111111111111111";
const RELAYER = "0x2222222222222222222222222222222222222222";
const FEE = 25n;

function withdrawInputs(
  poseidon: Poseidon,
  tree: MerkleTree,
  note: MixerNote,
  overrides: Partial<CircuitInputs> = {},
): CircuitInputs {
  const p = tree.proof(tree.indexOf(noteCommitment(poseidon, note)));
  return {
    root: p.root,
    nullifierHash: noteNullifierHash(poseidon, note),
    extDataHash: extDataHash(RECIPIENT, RELAYER, FEE),
    nullifier: note.nullifier,
    secret: note.secret,
    depth: p.depth,
    leafIndex: p.leafIndex,
    siblings: p.siblings,
    ...overrides,
  };
}

describe("circuits # mixer-withdraw", () => {
  let poseidon: Poseidon;
  let prover: Prover;
  let tree: MerkleTree;
  let notes: MixerNote[];
  let valid: ProofResult;
  let statement: MixerWithdrawalPublic;

  before(async () => {
    poseidon = await buildPoseidon();
    prover = new Prover();
    const rnd = counterBytes(1);
    notes = Array.from({ length: 6 }, () =>
      createNote({ chainId: 31337n, denomination: ZK.mixer.denominations[0] as bigint, randomBytes: rnd }),
    );
    tree = await MerkleTree.create({ leaves: notes.map((n) => noteCommitment(poseidon, n)) });
    valid = await prover.prove("mixer-withdraw", withdrawInputs(poseidon, tree, notes[4] as MixerNote));
    statement = {
      root: tree.root,
      nullifierHash: noteNullifierHash(poseidon, notes[4] as MixerNote),
      recipient: RECIPIENT,
      relayer: RELAYER,
      fee: FEE,
    };
  });

  after(async () => {
    await prover.close();
  });

  it("proves a deposited note and the proof verifies against the statement's public signals", async () => {
    expect(valid.publicSignals).to.deep.equal(
      [tree.root, noteNullifierHash(poseidon, notes[4] as MixerNote), extDataHash(RECIPIENT, RELAYER, FEE)].map(String),
    );
    expect(valid.publicSignals).to.deep.equal(withdrawalPublicSignals("mixer-withdraw", statement).map(String));
    expect(
      await prover.verify("mixer-withdraw", withdrawalPublicSignals("mixer-withdraw", statement), valid.proof),
    ).to.equal(true);
  });

  it("proves the same statement from recipient, relayer and fee as from their hash", async () => {
    const { extDataHash: _, ...rest } = withdrawInputs(poseidon, tree, notes[4] as MixerNote);
    const named = await prover.prove("mixer-withdraw", {
      ...rest,
      recipient: BigInt(RECIPIENT),
      relayer: RELAYER,
      fee: FEE,
    });
    expect(named.publicSignals).to.deep.equal(valid.publicSignals);
  });

  // recipient, relayer and fee reach the verifier through extDataHash: another value of any of
  // them gives other public signals, against which the proof fails.
  for (const [what, change] of [
    ["recipient", () => ({ recipient: RELAYER })],
    ["relayer", () => ({ relayer: RECIPIENT })],
    ["fee", () => ({ fee: FEE + 1n })],
    ["root", () => ({ root: statement.root + 1n })],
    ["nullifierHash", () => ({ nullifierHash: noteNullifierHash(poseidon, notes[3] as MixerNote) })],
  ] as const) {
    it(`fails verification when ${what} is tampered with`, async () => {
      const signals = withdrawalPublicSignals("mixer-withdraw", { ...statement, ...change() });
      expect(signals).to.not.deep.equal(withdrawalPublicSignals("mixer-withdraw", statement));
      expect(await prover.verify("mixer-withdraw", signals, valid.proof)).to.equal(false);
    });
  }

  for (const signal of ["root", "nullifierHash", "extDataHash"]) {
    it(`fails verification when the ${signal} signal itself is moved`, async () => {
      const i = signalIndex("mixer-withdraw", signal);
      expect(await prover.verify("mixer-withdraw", tamper(valid.publicSignals, i), valid.proof)).to.equal(false);
    });
  }

  it("fails verification when a signal is shifted by the field modulus (same residue)", async () => {
    const i = signalIndex("mixer-withdraw", "extDataHash");
    const shifted = [...valid.publicSignals];
    shifted[i] = (BigInt(shifted[i] as string) + ZK.fieldModulus).toString();
    expect(await prover.verify("mixer-withdraw", shifted, valid.proof)).to.equal(false);
  });

  it("cannot prove against a root the note is not under", async () => {
    const other = await MerkleTree.create({ leaves: [noteCommitment(poseidon, notes[0] as MixerNote)] });
    await expectWitnessInvalid(() =>
      prover.prove("mixer-withdraw", withdrawInputs(poseidon, tree, notes[4] as MixerNote, { root: other.root })),
    );
  });

  it("cannot prove without the note's secret, or with another nullifier hash", async () => {
    const note = notes[2] as MixerNote;
    await expectWitnessInvalid(() =>
      prover.prove("mixer-withdraw", withdrawInputs(poseidon, tree, note, { secret: note.secret + 1n })),
    );
    await expectWitnessInvalid(() =>
      prover.prove(
        "mixer-withdraw",
        withdrawInputs(poseidon, tree, note, { nullifierHash: noteNullifierHash(poseidon, notes[3] as MixerNote) }),
      ),
    );
  });

  it("cannot pass an inner tree node off as a note (the commitment hash has another width)", async () => {
    // Inner node over leaves 0 and 1: a same-width commitment would let anyone "open" it with
    // nullifier = leaf 0, secret = leaf 1 and a proof one level shorter.
    const leaf0 = tree.leaves[0] as bigint;
    const leaf1 = tree.leaves[1] as bigint;
    const full = tree.proof(0);
    await expectWitnessInvalid(() =>
      prover.prove("mixer-withdraw", {
        ...withdrawInputs(poseidon, tree, notes[0] as MixerNote),
        nullifier: leaf0,
        secret: leaf1,
        nullifierHash: poseidon([leaf0]),
        depth: full.depth - 1,
        leafIndex: full.leafIndex >> 1,
        siblings: [...full.siblings.slice(1), 0n],
      }),
    );
  });

  it("yields root 0 (never a contract root) for a depth beyond the maximum", async () => {
    await expectWitnessInvalid(() =>
      prover.prove(
        "mixer-withdraw",
        withdrawInputs(poseidon, tree, notes[4] as MixerNote, { depth: ZK.treeDepth + 1 }),
      ),
    );
  });
});
