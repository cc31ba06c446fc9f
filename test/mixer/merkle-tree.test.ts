import * as fs from "node:fs";
import { expect } from "chai";
import { artifactPaths } from "../../circuits/instances";
import { isError } from "../../common/errors";
import { ZK } from "../../common/zk-params";
import { MerkleTree } from "../../mixer/merkle-tree";
import { createNote, type MixerNote, noteCommitment, noteNullifierHash } from "../../mixer/note";
import { buildPoseidon, type Poseidon } from "../../mixer/poseidon";
import { snarkjs, terminateCurveWorkers } from "../../mixer/snarkjs";
import { counterBytes, quietWitnessErrors } from "../fixtures/zk";

describe("mixer/merkle-tree", () => {
  let poseidon: Poseidon;
  let notes: MixerNote[];
  let wasm: Buffer;

  before(async () => {
    poseidon = await buildPoseidon();
    const rnd = counterBytes(9);
    notes = Array.from({ length: 33 }, () =>
      createNote({ chainId: 1n, denomination: ZK.mixer.denominations[0] as bigint, randomBytes: rnd }),
    );
    wasm = fs.readFileSync(artifactPaths("mixer-withdraw").wasm);
  });

  after(async () => {
    await terminateCurveWorkers();
  });

  it("reports root 0 when empty and the leaf itself for one leaf, like lean-imt.sol", async () => {
    const t = await MerkleTree.create();
    expect(t.root).to.equal(0n);
    t.insert(5n);
    expect(t.root).to.equal(5n);
    expect(t.proof(0)).to.deep.include({ depth: 0, leafIndex: 0, root: 5n });
  });

  it("carries a node without a right sibling up unhashed", async () => {
    const t = await MerkleTree.create({ leaves: [1n, 2n, 3n] });
    expect(t.root).to.equal(poseidon([poseidon([1n, 2n]), 3n]));
    expect(t.proof(2)).to.deep.include({ depth: 1, leafIndex: 1 });
    expect(t.proof(2).siblings.length).to.equal(ZK.treeDepth);
  });

  it("refuses the leaves lean-imt.sol refuses, and a full tree", async () => {
    const t = await MerkleTree.create({ maxDepth: 2, leaves: [1n, 2n, 3n] });
    for (const bad of [0n, ZK.fieldModulus, 2n]) {
      expect(() => t.insert(bad))
        .to.throw()
        .that.satisfies((e: unknown) => isError(e, "INVALID_ARGUMENT"));
    }
    expect(() => t.insertMany([7n, 7n])).to.throw(/already in the tree/);
    t.insert(4n);
    expect(() => t.insert(5n)).to.throw(/full/);
    expect(t.size).to.equal(4);
  });

  it("agrees with the circuit's LeanIMTRoot for every leaf of trees of many sizes", async function () {
    this.timeout(60_000);
    // Witness generation alone checks `root === LeanIMTRoot(...)`: no proof needed.
    for (const size of [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33]) {
      const tree = await MerkleTree.create({ leaves: notes.slice(0, size).map((n) => noteCommitment(poseidon, n)) });
      const indices = [...new Set([0, size >> 1, size - 1])];
      for (const i of indices) {
        const note = notes[i] as MixerNote;
        const p = tree.proof(i);
        const input = {
          root: tree.root,
          nullifierHash: noteNullifierHash(poseidon, note),
          extDataHash: 1n,
          nullifier: note.nullifier,
          secret: note.secret,
          depth: p.depth,
          leafIndex: p.leafIndex,
          siblings: p.siblings,
        };
        await snarkjs.wtns.calculate(input, wasm, { type: "mem" });
        let refused = false;
        try {
          await quietWitnessErrors(() =>
            snarkjs.wtns.calculate({ ...input, root: tree.root + 1n }, wasm, { type: "mem" }),
          );
        } catch {
          refused = true;
        }
        expect(refused, `size ${size}, index ${i}: a wrong root passed`).to.equal(true);
      }
    }
  });
});
