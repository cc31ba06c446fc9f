import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { expect } from "chai";
import { ZK } from "../../../common/zk-params";
import { POSEIDON_T3_LINK } from "../../../mixer/deploy";
import { MerkleTree } from "../../../mixer/merkle-tree";
import { createNote, type MixerNote, noteCommitment, noteNullifierHash } from "../../../mixer/note";
import { buildPoseidon, type Poseidon } from "../../../mixer/poseidon";
import { type ProofResult, Prover, type SolidityProof, toSolidityProof } from "../../../mixer/prover";
import { extDataHash, withdrawalPublicSignals } from "../../../mixer/public-signals";
import { syncMixerTree } from "../../../mixer/tree-sync";
import { Mixer__factory, ReentrantMarketMock__factory } from "../../../typechain-types";
import { counterBytes } from "../../fixtures/zk";
import { deployZkMarketFixture, type ZkMarketFixture } from "../../fixtures/zk-market";

const FEE = 25n;

describe("Mixer", () => {
  let poseidon: Poseidon;
  let prover: Prover;
  let notes: MixerNote[];
  let tree: MerkleTree;
  let recipient: string;
  let relayer: string;
  let proof: SolidityProof;
  let result: ProofResult;

  /** The fixture plus the same five deposits the off-chain tree holds, so one proof serves every test. */
  async function withDeposits(): Promise<ZkMarketFixture> {
    const f = await deployZkMarketFixture();
    for (const n of notes) await (await f.mixer.connect(f.dso).deposit(noteCommitment(poseidon, n))).wait();
    return f;
  }

  const withdraw = (
    f: ZkMarketFixture,
    o: { root?: bigint; nullifierHash?: bigint; recipient?: string; relayer?: string; fee?: bigint } = {},
  ) =>
    f.mixer
      .connect(f.carol)
      .withdraw(
        proof.pA,
        proof.pB,
        proof.pC,
        o.root ?? tree.root,
        o.nullifierHash ?? noteNullifierHash(poseidon, notes[3] as MixerNote),
        o.recipient ?? recipient,
        o.relayer ?? relayer,
        o.fee ?? FEE,
      );

  before(async () => {
    poseidon = await buildPoseidon();
    prover = new Prover();
    const rnd = counterBytes(50);
    notes = Array.from({ length: 5 }, () =>
      createNote({ chainId: 31337n, denomination: ZK.mixer.denominations[0] as bigint, randomBytes: rnd }),
    );
    tree = await MerkleTree.create({ leaves: notes.map((n) => noteCommitment(poseidon, n)) });
    const f = await loadFixture(deployZkMarketFixture);
    recipient = (f.others[0] as { address: string }).address;
    relayer = f.carol.address;
    const note = notes[3] as MixerNote;
    const p = tree.proof(3);
    result = await prover.prove("mixer-withdraw", {
      root: tree.root,
      nullifierHash: noteNullifierHash(poseidon, note),
      recipient: BigInt(recipient),
      relayer: BigInt(relayer),
      fee: FEE,
      nullifier: note.nullifier,
      secret: note.secret,
      depth: p.depth,
      leafIndex: p.leafIndex,
      siblings: p.siblings,
    });
    proof = toSolidityProof(result.proof);
  });

  after(async () => {
    await prover.close();
  });

  describe("Mixer # deposit", () => {
    it("keeps the same root as the TypeScript tree (and so the circuit) after every deposit", async () => {
      const f = await loadFixture(deployZkMarketFixture);
      const mirror = await MerkleTree.create();
      expect(await f.mixer.currentRoot()).to.equal(0n);
      for (const [i, n] of notes.entries()) {
        const c = noteCommitment(poseidon, n);
        mirror.insert(c);
        await expect(f.mixer.connect(f.dso).deposit(c)).to.emit(f.mixer, "Deposit").withArgs(c, i, mirror.root);
        expect(await f.mixer.currentRoot()).to.equal(mirror.root);
        expect(await f.mixer.isKnownRoot(mirror.root)).to.equal(true);
      }
      expect(mirror.root).to.equal(tree.root);
      expect(await f.mixer.treeDepth()).to.equal(BigInt(mirror.depth));
    });

    it("inserts a batch with depositMany: the TypeScript tree's root, in order, one root for the batch", async () => {
      const f = await loadFixture(deployZkMarketFixture);
      await f.mixer.connect(f.dso).deposit(noteCommitment(poseidon, notes[0] as MixerNote));
      const batch = notes.slice(1).map((n) => noteCommitment(poseidon, n));
      const tx = f.mixer.connect(f.dso).depositMany(batch);
      for (const [i, c] of batch.entries())
        await expect(tx)
          .to.emit(f.mixer, "Deposit")
          .withArgs(c, i + 1, tree.root);
      expect(await f.mixer.currentRoot()).to.equal(tree.root);
      expect(await f.mixer.treeSize()).to.equal(BigInt(notes.length));
      expect((await syncMixerTree(f.mixer)).root).to.equal(tree.root);
      // Later single deposits continue the same tree.
      const mirror = await MerkleTree.create({ leaves: [...tree.leaves, 77n] });
      await f.mixer.connect(f.dso).deposit(77n);
      expect(await f.mixer.currentRoot()).to.equal(mirror.root);
    });

    it("refuses an empty batch, a batch from anyone but the DSO, and a duplicate within a batch", async () => {
      const f = await loadFixture(deployZkMarketFixture);
      await expect(f.mixer.connect(f.dso).depositMany([])).to.be.revertedWithCustomError(f.mixer, "Mixer__EmptyBatch");
      await expect(f.mixer.connect(f.alice).depositMany([1n]))
        .to.be.revertedWithCustomError(f.mixer, "Mixer__NotDSO")
        .withArgs(f.alice.address);
      await expect(f.mixer.connect(f.dso).depositMany([5n, 6n, 5n])).to.be.revertedWithCustomError(
        f.mixer,
        "LeafAlreadyExists",
      );
    });

    it("accepts deposits from the DSO only", async () => {
      const f = await loadFixture(deployZkMarketFixture);
      await expect(f.mixer.connect(f.alice).deposit(123n))
        .to.be.revertedWithCustomError(f.mixer, "Mixer__NotDSO")
        .withArgs(f.alice.address);
    });

    it("refuses a duplicate or zero commitment (the tree's own checks)", async () => {
      const f = await loadFixture(withDeposits);
      await expect(
        f.mixer.connect(f.dso).deposit(noteCommitment(poseidon, notes[0] as MixerNote)),
      ).to.be.revertedWithCustomError(f.mixer, "LeafAlreadyExists");
      await expect(f.mixer.connect(f.dso).deposit(0n)).to.be.revertedWithCustomError(f.mixer, "LeafCannotBeZero");
    });
  });

  describe("Mixer # withdraw", () => {
    it("pays the recipient the denomination minus the fee and the relayer the fee, once", async () => {
      const f = await loadFixture(withDeposits);
      const nh = noteNullifierHash(poseidon, notes[3] as MixerNote);
      await expect(withdraw(f)).to.emit(f.mixer, "Withdrawal").withArgs(recipient, relayer, nh, FEE);
      expect(await f.market.financialBalance(recipient)).to.equal(f.denomination - FEE);
      expect(await f.market.financialBalance(relayer)).to.equal(FEE);
      expect(await f.mixer.nullifierSpent(nh)).to.equal(true);
      await expect(withdraw(f)).to.be.revertedWithCustomError(f.mixer, "Mixer__NullifierSpent").withArgs(nh);
    });

    for (const [what, change] of [
      ["recipient", (f: ZkMarketFixture) => ({ recipient: f.alice.address })],
      ["relayer", (f: ZkMarketFixture) => ({ relayer: f.bob.address })],
      ["fee", () => ({ fee: FEE + 1n })],
      ["nullifier hash", () => ({ nullifierHash: noteNullifierHash(poseidon, notes[1] as MixerNote) })],
    ] as const) {
      it(`rejects the proof with another ${what}`, async () => {
        const f = await loadFixture(withDeposits);
        await expect(withdraw(f, change(f))).to.be.revertedWithCustomError(f.mixer, "Mixer__InvalidProof");
      });
    }

    it("withdraws through a relayer for at most 300k gas (issue 5's goal) once the relayer holds a balance", async () => {
      const f = await loadFixture(withDeposits);
      await (await f.market.connect(f.dso).addFinancialBalance(relayer, 1n)).wait();
      const receipt = await (await withdraw(f)).wait();
      expect(receipt?.gasUsed).to.be.at.most(300_000n);
    });

    it("rejects the proof against another root it knows", async () => {
      const f = await loadFixture(withDeposits);
      await f.mixer.connect(f.dso).deposit(4242n);
      const newer = await f.mixer.currentRoot();
      expect(await f.mixer.isKnownRoot(newer)).to.equal(true);
      expect(await f.mixer.isKnownRoot(tree.root)).to.equal(true);
      await expect(withdraw(f, { root: newer })).to.be.revertedWithCustomError(f.mixer, "Mixer__InvalidProof");
    });

    it("rejects a root it never had", async () => {
      const f = await loadFixture(withDeposits);
      await expect(withdraw(f, { root: tree.root + 1n }))
        .to.be.revertedWithCustomError(f.mixer, "Mixer__UnknownRoot")
        .withArgs(tree.root + 1n);
    });

    it("rejects a fee above the denomination", async () => {
      const f = await loadFixture(withDeposits);
      const fee = f.denomination + 1n;
      await expect(withdraw(f, { fee }))
        .to.be.revertedWithCustomError(f.mixer, "Mixer__FeeTooHigh")
        .withArgs(fee, f.denomination);
    });

    it(`accepts one of the last ${ZK.rootHistorySize} roots and forgets older ones`, async () => {
      const f = await loadFixture(withDeposits);
      for (let i = 0; i < ZK.rootHistorySize - 1; i++) await f.mixer.connect(f.dso).deposit(1000n + BigInt(i));
      expect(await f.mixer.isKnownRoot(tree.root)).to.equal(true);
      await f.mixer.connect(f.dso).deposit(999n);
      expect(await f.mixer.isKnownRoot(tree.root)).to.equal(false);
      // A deeper, ragged tree (35 leaves, depth 6) still has the TypeScript tree's root.
      const mirror = await MerkleTree.create({
        leaves: [...tree.leaves, ...Array.from({ length: ZK.rootHistorySize - 1 }, (_x, i) => 1000n + BigInt(i)), 999n],
      });
      expect(await f.mixer.currentRoot()).to.equal(mirror.root);
      expect(await f.mixer.treeDepth()).to.equal(6n);
      expect((await syncMixerTree(f.mixer)).leaves).to.deep.equal(mirror.leaves);
      await expect(withdraw(f)).to.be.revertedWithCustomError(f.mixer, "Mixer__UnknownRoot");
    });
  });

  describe("Mixer # extDataHash", () => {
    it("hashes recipient, relayer and fee as mixer/public-signals.ts does, which is what the proof binds", async () => {
      const f = await loadFixture(deployZkMarketFixture);
      for (const [r, l, fee] of [
        [recipient, relayer, FEE],
        [relayer, recipient, FEE],
        [recipient, relayer, 0n],
        [recipient, "0x0000000000000000000000000000000000000000", (1n << 64n) - 1n],
      ] as const) {
        const onChain = await f.mixer.extDataHash(r, l, fee);
        expect(onChain).to.equal(extDataHash(r, l, fee));
        expect(onChain).to.be.below(ZK.fieldModulus);
      }
      const statement = {
        root: tree.root,
        nullifierHash: noteNullifierHash(poseidon, notes[3] as MixerNote),
        recipient,
        relayer,
        fee: FEE,
      };
      expect(result.publicSignals).to.deep.equal(withdrawalPublicSignals("mixer-withdraw", statement).map(String));
      expect(BigInt(result.publicSignals[2] as string)).to.equal(await f.mixer.extDataHash(recipient, relayer, FEE));
    });
  });

  describe("Mixer # reentrancy", () => {
    it("refuses a market that calls back into withdraw (the lock fires before the nullifier check)", async () => {
      const f = await loadFixture(deployZkMarketFixture);
      const mock = await new ReentrantMarketMock__factory(f.dso).deploy();
      const mixer = await new Mixer__factory({ [POSEIDON_T3_LINK]: f.zk.poseidonT3 }, f.dso).deploy(
        await mock.getAddress(),
        f.denomination,
      );
      for (const n of notes) await mixer.connect(f.dso).deposit(noteCommitment(poseidon, n));
      const args = [
        proof.pA,
        proof.pB,
        proof.pC,
        tree.root,
        noteNullifierHash(poseidon, notes[3] as MixerNote),
        recipient,
        relayer,
        FEE,
      ] as const;
      await mock.setReplay(await mixer.getAddress(), mixer.interface.encodeFunctionData("withdraw", [...args]));
      await expect(mixer.withdraw(...args)).to.be.revertedWithCustomError(mixer, "Mixer__Reentrancy");
    });
  });
});
