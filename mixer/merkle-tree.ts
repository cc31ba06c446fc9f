/**
 * The incremental Poseidon Merkle tree the mixer and the allowance vault keep on chain, mirrored
 * off chain. It is a LeanIMT (@zk-kit/lean-imt here, @zk-kit/lean-imt.sol on chain, the same
 * algorithm): no zero leaves, and a node without a right sibling is carried up unhashed, so a
 * deposit costs one hash per level that actually has a left neighbour instead of a fixed
 * `treeDepth` hashes. The circuits' LeanIMTRoot template computes the same root.
 */
import { LeanIMT } from "@zk-kit/lean-imt";
import { check, PetraError } from "../common/errors";
import { ZK } from "../common/zk-params";
import { buildPoseidon, type Poseidon } from "./poseidon";

/** A membership proof in the shape the circuits take. */
export interface MerkleProofInputs {
  root: bigint;
  leaf: bigint;
  /** Number of hashing levels on the path (LeanIMT proofs skip levels without a sibling). */
  depth: number;
  /** Bit i: the node is the right child at the i-th hashing level. */
  leafIndex: number;
  /** `depth` siblings, padded with 0 to the circuit's treeDepth. */
  siblings: bigint[];
}

export interface MerkleTreeOptions {
  /** Maximum depth; defaults to the circuits' treeDepth from common/zk-constants.json. */
  maxDepth?: number;
  /** Leaves to start from, e.g. commitments read from deposit events, in insertion order. */
  leaves?: readonly bigint[];
}

export class MerkleTree {
  private constructor(
    private readonly imt: LeanIMT<bigint>,
    readonly maxDepth: number,
  ) {}

  static async create(options: MerkleTreeOptions = {}): Promise<MerkleTree> {
    const maxDepth = options.maxDepth ?? ZK.treeDepth;
    check(Number.isInteger(maxDepth) && maxDepth >= 1 && maxDepth <= 32, "maxDepth", "must be an integer in [1, 32]", {
      maxDepth,
    });
    const poseidon: Poseidon = await buildPoseidon();
    const tree = new MerkleTree(new LeanIMT<bigint>((a, b) => poseidon([a, b])), maxDepth);
    if (options.leaves) tree.insertMany(options.leaves);
    return tree;
  }

  /** 0 for an empty tree, as lean-imt.sol reports it. */
  get root(): bigint {
    return this.imt.size === 0 ? 0n : this.imt.root;
  }

  get size(): number {
    return this.imt.size;
  }

  get depth(): number {
    return this.imt.depth;
  }

  get leaves(): bigint[] {
    return this.imt.leaves;
  }

  indexOf(leaf: bigint): number {
    return this.imt.indexOf(leaf);
  }

  insert(leaf: bigint): void {
    this.insertMany([leaf]);
  }

  /** Same acceptance rules as lean-imt.sol, so a leaf the contract refuses is refused here too. */
  insertMany(leaves: readonly bigint[]): void {
    const seen = new Set<bigint>();
    for (const [i, leaf] of leaves.entries()) {
      check(typeof leaf === "bigint", `leaves[${i}]`, "must be a bigint");
      check(leaf > 0n && leaf < ZK.fieldModulus, `leaves[${i}]`, "must be in (0, field modulus)", { leaf });
      check(!seen.has(leaf) && !this.imt.has(leaf), `leaves[${i}]`, "is already in the tree", { leaf });
      seen.add(leaf);
    }
    check(
      this.imt.size + leaves.length <= 2 ** this.maxDepth,
      "leaves",
      `the tree is full (2^${this.maxDepth} leaves)`,
      {
        size: this.imt.size,
        adding: leaves.length,
      },
    );
    if (leaves.length > 0) this.imt.insertMany([...leaves]);
  }

  /** Proof for the leaf at `index` (insertion order), padded for the circuit. */
  proof(index: number): MerkleProofInputs {
    check(Number.isInteger(index) && index >= 0 && index < this.imt.size, "index", `no leaf at ${index}`, {
      size: this.imt.size,
    });
    const p = this.imt.generateProof(index);
    if (p.siblings.length > this.maxDepth) {
      throw new PetraError("INVALID_ARGUMENT", "tree deeper than maxDepth", { depth: p.siblings.length });
    }
    const siblings = [...p.siblings, ...Array<bigint>(this.maxDepth - p.siblings.length).fill(0n)];
    return { root: this.root, leaf: p.leaf, depth: p.siblings.length, leafIndex: p.index, siblings };
  }
}
