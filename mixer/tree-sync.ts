/**
 * Rebuilds the off-chain trees from contract events, and refuses a result whose root differs from
 * the contract's: a prover must never build a proof on a tree the chain does not have.
 */
import { PetraError } from "../common/errors";
import type { AllowanceVault, Mixer } from "../typechain-types";
import { MerkleTree } from "./merkle-tree";

export interface SyncOptions {
  fromBlock?: number;
  toBlock?: number | "latest";
}

async function checked(tree: MerkleTree, contractRoot: bigint, what: string): Promise<MerkleTree> {
  if (tree.root !== contractRoot) {
    throw new PetraError("LEDGER_UNREADABLE", `${what}: tree rebuilt from events has another root than the contract`, {
      eventsRoot: tree.root.toString(),
      contractRoot: contractRoot.toString(),
      leaves: tree.size,
    });
  }
  return tree;
}

/** The mixer pool's tree, from its Deposit events. */
export async function syncMixerTree(mixer: Mixer, options: SyncOptions = {}): Promise<MerkleTree> {
  const events = await mixer.queryFilter(mixer.filters.Deposit(), options.fromBlock ?? 0, options.toBlock ?? "latest");
  const byIndex = events.map((e) => ({ index: Number(e.args.leafIndex), commitment: e.args.commitment }));
  byIndex.sort((a, b) => a.index - b.index);
  byIndex.forEach((d, i) => {
    if (d.index !== i)
      throw new PetraError("LEDGER_UNREADABLE", "mixer: Deposit events have a gap", { expected: i, got: d.index });
  });
  const tree = await MerkleTree.create({ leaves: byIndex.map((d) => d.commitment) });
  return checked(tree, await mixer.currentRoot({ blockTag: options.toBlock ?? "latest" }), "mixer");
}

/** The allowance tree: issued commitments and the non-empty parts of every spend, in chain order. */
export async function syncAllowanceTree(vault: AllowanceVault, options: SyncOptions = {}): Promise<MerkleTree> {
  const from = options.fromBlock ?? 0;
  const to = options.toBlock ?? "latest";
  const issued = await vault.queryFilter(vault.filters.AllowanceIssued(), from, to);
  const spent = await vault.queryFilter(vault.filters.AllowanceSpent(), from, to);
  const ordered = [
    ...issued.map((e) => ({ block: e.blockNumber, log: e.index, leaves: [e.args.commitment] })),
    ...spent.map((e) => ({
      block: e.blockNumber,
      log: e.index,
      leaves: [...e.args.newCommitments].filter((c) => c !== 0n),
    })),
  ].sort((a, b) => a.block - b.block || a.log - b.log);
  const tree = await MerkleTree.create({ leaves: ordered.flatMap((o) => o.leaves) });
  return checked(tree, await vault.currentRoot({ blockTag: to }), "allowance vault");
}
