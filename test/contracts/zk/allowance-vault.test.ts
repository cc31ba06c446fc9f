import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { expect } from "chai";
import { ZK } from "../../../common/zk-params";
import {
  type Allowance,
  type AllowanceParts,
  allowanceCommitment,
  allowanceNullifierHash,
  allowanceWithdrawInputs,
  type EnergyRequest,
  freshSecret,
  splitAllowance,
} from "../../../mixer/allowance";
import { POSEIDON_T3_LINK } from "../../../mixer/deploy";
import { MerkleTree } from "../../../mixer/merkle-tree";
import { buildPoseidon, type Poseidon } from "../../../mixer/poseidon";
import { type ProofResult, Prover, type SolidityProof, toSolidityProof } from "../../../mixer/prover";
import { syncAllowanceTree } from "../../../mixer/tree-sync";
import { AllowanceVault__factory, ReentrantMarketMock__factory } from "../../../typechain-types";
import { counterBytes } from "../../fixtures/zk";
import { deployZkMarketFixture, type ZkMarketFixture } from "../../fixtures/zk-market";

describe("AllowanceVault", () => {
  const rnd = counterBytes(200);
  let poseidon: Poseidon;
  let prover: Prover;
  let allowances: Allowance[];
  let tree: MerkleTree;
  let request: EnergyRequest;
  let parts: AllowanceParts;
  let newCommitments: [bigint, bigint, bigint];
  let proof: SolidityProof;
  let result: ProofResult;

  async function withAllowances(): Promise<ZkMarketFixture> {
    const f = await deployZkMarketFixture();
    for (const a of allowances) await (await f.vault.connect(f.dso).issue(allowanceCommitment(poseidon, a))).wait();
    return f;
  }

  const spent = () => allowances[2] as Allowance;
  const withdraw = (
    f: ZkMarketFixture,
    o: Partial<EnergyRequest & { root: bigint; nullifierHash: bigint; newCommitments: [bigint, bigint, bigint] }> = {},
  ) =>
    f.vault
      .connect(f.carol)
      .withdraw(
        proof.pA,
        proof.pB,
        proof.pC,
        o.root ?? tree.root,
        o.nullifierHash ?? allowanceNullifierHash(poseidon, spent()),
        o.powerW ?? request.powerW,
        o.start ?? request.start,
        o.end ?? request.end,
        `0x${(o.recipient ?? request.recipient).toString(16).padStart(40, "0")}`,
        o.newCommitments ?? newCommitments,
      );

  before(async () => {
    poseidon = await buildPoseidon();
    prover = new Prover();
    allowances = [2500n, 4000n, 3000n].map((capW) => ({
      capW,
      windowStart: 96n,
      windowEnd: 191n,
      secret: freshSecret(rnd),
      nullifier: freshSecret(rnd),
    }));
    tree = await MerkleTree.create({ leaves: allowances.map((a) => allowanceCommitment(poseidon, a)) });
    const f = await loadFixture(deployZkMarketFixture);
    request = {
      powerW: 1200n,
      start: 120n,
      end: 130n,
      recipient: BigInt((f.others[1] as { address: string }).address),
    };
    parts = splitAllowance(spent(), request, rnd);
    newCommitments = parts.map((p) => allowanceCommitment(poseidon, p)) as [bigint, bigint, bigint];
    result = await prover.prove(
      "allowance-withdraw",
      allowanceWithdrawInputs(
        spent(),
        tree.proof(2),
        request,
        parts,
        allowanceNullifierHash(poseidon, spent()),
        poseidon,
      ),
    );
    proof = toSolidityProof(result.proof);
  });

  after(async () => {
    await prover.close();
  });

  it("issues from the DSO only, with the TypeScript tree's root", async () => {
    const f = await loadFixture(deployZkMarketFixture);
    const c = allowanceCommitment(poseidon, allowances[0] as Allowance);
    await expect(f.vault.connect(f.alice).issue(c))
      .to.be.revertedWithCustomError(f.vault, "AllowanceVault__NotDSO")
      .withArgs(f.alice.address);
    const g = await loadFixture(withAllowances);
    expect(await g.vault.currentRoot()).to.equal(tree.root);
  });

  it("mints the proven asset to the recipient, inserts the remaining parts, and refuses a second spend", async () => {
    const f = await loadFixture(withAllowances);
    const assetID = await f.market.assetCount();
    const after = await MerkleTree.create({ leaves: [...tree.leaves, ...newCommitments] });
    await expect(withdraw(f))
      .to.emit(f.vault, "AllowanceSpent")
      .withArgs(allowanceNullifierHash(poseidon, spent()), assetID, newCommitments, after.root);
    const recipient = `0x${request.recipient.toString(16).padStart(40, "0")}`;
    const [owner, powerW, start, end] = await f.market.energyAsset(assetID);
    expect([owner.toLowerCase(), powerW, start, end]).to.deep.equal([
      recipient,
      -request.powerW,
      request.start,
      request.end,
    ]);
    expect(await f.vault.currentRoot()).to.equal(after.root);
    expect((await syncAllowanceTree(f.vault)).leaves).to.deep.equal(after.leaves);
    await expect(withdraw(f))
      .to.be.revertedWithCustomError(f.vault, "AllowanceVault__NullifierSpent")
      .withArgs(allowanceNullifierHash(poseidon, spent()));
  });

  for (const [what, change] of [
    ["more power (overdrawn)", { powerW: 3001n }],
    ["another power", { powerW: 1201n }],
    ["an earlier start", { start: 119n }],
    ["a later end", { end: 131n }],
    ["another recipient", { recipient: 0x1234n }],
    ["other new commitments", { newCommitments: [1n, 2n, 3n] as [bigint, bigint, bigint] }],
    ["another nullifier hash", { nullifierHash: 42n }],
  ] as const) {
    it(`rejects the proof with ${what}`, async () => {
      const f = await loadFixture(withAllowances);
      await expect(withdraw(f, change)).to.be.revertedWithCustomError(f.vault, "AllowanceVault__InvalidProof");
    });
  }

  it("accepts no proof for a larger cap or a wider window than the DSO issued", async () => {
    // The household re-hashes its secret and nullifier with a cap and window of its choosing and
    // proves against a tree holding that leaf instead of the issued one: a valid proof, of a root
    // the vault never had, because the desk computed the leaf it issued.
    const f = await loadFixture(withAllowances);
    const claims: [Partial<Allowance>, Partial<EnergyRequest>][] = [
      [{ capW: 4000n }, { powerW: 3500n }],
      [{ windowStart: 90n }, { start: 91n, end: 95n }],
      [{ windowEnd: 250n }, { start: 200n, end: 240n }],
    ];
    for (const [claim, change] of claims) {
      const forged: Allowance = { ...spent(), ...claim };
      const leaves = [...tree.leaves];
      leaves[2] = allowanceCommitment(poseidon, forged);
      const forgedTree = await MerkleTree.create({ leaves });
      const req = { ...request, ...change };
      const forgedParts = splitAllowance(forged, req, rnd);
      const r = await prover.prove(
        "allowance-withdraw",
        allowanceWithdrawInputs(
          forged,
          forgedTree.proof(2),
          req,
          forgedParts,
          allowanceNullifierHash(poseidon, forged),
          poseidon,
        ),
      );
      const p = toSolidityProof(r.proof);
      const recipient = `0x${req.recipient.toString(16).padStart(40, "0")}`;
      const forgedCommitments = forgedParts.map((x) => allowanceCommitment(poseidon, x)) as [bigint, bigint, bigint];
      const args = [p.pA, p.pB, p.pC, forgedTree.root, allowanceNullifierHash(poseidon, forged)] as const;
      await expect(
        f.vault.connect(f.carol).withdraw(...args, req.powerW, req.start, req.end, recipient, forgedCommitments),
      )
        .to.be.revertedWithCustomError(f.vault, "AllowanceVault__UnknownRoot")
        .withArgs(forgedTree.root);
      // ... and the same proof against the vault's real root fails verification.
      await expect(
        f.vault
          .connect(f.carol)
          .withdraw(
            p.pA,
            p.pB,
            p.pC,
            tree.root,
            allowanceNullifierHash(poseidon, forged),
            req.powerW,
            req.start,
            req.end,
            recipient,
            forgedCommitments,
          ),
      ).to.be.revertedWithCustomError(f.vault, "AllowanceVault__InvalidProof");
    }
  });

  it("rejects a root it never had", async () => {
    const f = await loadFixture(withAllowances);
    await expect(withdraw(f, { root: 7n }))
      .to.be.revertedWithCustomError(f.vault, "AllowanceVault__UnknownRoot")
      .withArgs(7n);
  });

  it(`takes one slot of the ${ZK.rootHistorySize}-root history per withdrawal, however many parts it inserts`, async () => {
    const f = await loadFixture(withAllowances);
    await withdraw(f);
    // tree.root is the newest root before the withdrawal; it must survive ROOT_HISTORY_SIZE - 1 pushes.
    for (let i = 0; i < ZK.rootHistorySize - 2; i++) await f.vault.connect(f.dso).issue(5000n + BigInt(i));
    expect(await f.vault.isKnownRoot(tree.root)).to.equal(true);
    await f.vault.connect(f.dso).issue(4999n);
    expect(await f.vault.isKnownRoot(tree.root)).to.equal(false);
  });

  it("refuses a market that calls back into withdraw", async () => {
    const f = await loadFixture(deployZkMarketFixture);
    const mock = await new ReentrantMarketMock__factory(f.dso).deploy();
    const vault = await new AllowanceVault__factory({ [POSEIDON_T3_LINK]: f.zk.poseidonT3 }, f.dso).deploy(
      await mock.getAddress(),
      -1,
    );
    for (const a of allowances) await vault.connect(f.dso).issue(allowanceCommitment(poseidon, a));
    const recipient = `0x${request.recipient.toString(16).padStart(40, "0")}`;
    const args = [
      proof.pA,
      proof.pB,
      proof.pC,
      tree.root,
      allowanceNullifierHash(poseidon, spent()),
      request.powerW,
      request.start,
      request.end,
      recipient,
      newCommitments,
    ] as const;
    await mock.setReplay(await vault.getAddress(), vault.interface.encodeFunctionData("withdraw", [...args]));
    await expect(vault.withdraw(...args)).to.be.revertedWithCustomError(vault, "AllowanceVault__Reentrancy");
  });
});
