// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {InternalLeanIMT, LeanIMTData} from "@zk-kit/lean-imt.sol/InternalLeanIMT.sol";
import {ZK_MAX_LEAVES, ZK_ROOT_HISTORY_SIZE} from "../verifiers/ZkConstants.sol";

/// @title RootHistory: a LeanIMT of commitments plus the last ROOT_HISTORY_SIZE roots
/// @notice A proof is made against the root the prover saw; deposits landing before the proof
///         would otherwise invalidate it, so (as Tornado Cash does) any of the recent roots is
///         accepted. The tree is the LeanIMT of zk-kit's lean-imt.sol, the same algorithm as
///         mixer/merkle-tree.ts and the circuits' LeanIMTRoot. Its Poseidon is PoseidonT3 from
///         poseidon-solidity, a library with a public function, so deployments link it.
abstract contract RootHistory {
    using InternalLeanIMT for LeanIMTData;

    /// @notice The tree holds at most 2^TREE_DEPTH leaves: the circuits prove paths of at most that depth.
    error RootHistory__TreeFull(uint256 size);

    LeanIMTData internal _tree;
    /// @dev Ring buffer: a slot is rewritten every ROOT_HISTORY_SIZE insertions, so after the
    ///      first round an insertion costs a warm rewrite, not a fresh slot (unlike a mapping).
    uint256[ZK_ROOT_HISTORY_SIZE] private _roots;
    /// @dev The ring's cursor shares one slot with the reentrancy lock of the contract built on
    ///      this one. A withdrawal reads the lock first (a cold read) and then the cursor in
    ///      isKnownRoot (a warm one): 2,000 gas less than two slots. The lock is never 0, so the
    ///      slot never returns to zero and no deposit pays for a fresh slot when the cursor moves.
    uint128 private _rootCursor;
    /// @dev 1 = unlocked, 2 = inside a nonReentrant function of the derived contract.
    uint128 internal _reentrancyLock = 1;

    function _insertLeaf(uint256 leaf) internal returns (uint256 index, uint256 newRoot) {
        (index, newRoot) = _insertLeafKeepingHistory(leaf);
        _pushRoot(newRoot);
    }

    /// @dev Several leaves in one go (lean-imt's _insertMany): k leaves share the hashes of the
    ///      levels above them, ~k + log2(size) Poseidon hashes instead of ~k x log2(size) / 2, and
    ///      take one slot of the root history. `leaves` must not be empty.
    function _insertLeaves(uint256[] calldata leaves) internal returns (uint256 firstIndex, uint256 newRoot) {
        firstIndex = _tree.size;
        if (firstIndex + leaves.length > ZK_MAX_LEAVES) revert RootHistory__TreeFull(firstIndex);
        newRoot = _tree._insertMany(leaves);
        _pushRoot(newRoot);
    }

    /// @dev For a transaction that inserts several leaves: only the root it ends with is ever
    ///      visible to a prover, so only that one should take a slot of the history.
    function _insertLeafKeepingHistory(uint256 leaf) internal returns (uint256 index, uint256 newRoot) {
        index = _tree.size;
        if (index >= ZK_MAX_LEAVES) revert RootHistory__TreeFull(index);
        newRoot = _tree._insert(leaf);
    }

    function _pushRoot(uint256 newRoot) internal {
        uint256 cursor = (uint256(_rootCursor) + 1) % ZK_ROOT_HISTORY_SIZE;
        _roots[cursor] = newRoot;
        _rootCursor = uint128(cursor);
    }

    /// @notice Whether `root` is the current root or one of the ROOT_HISTORY_SIZE - 1 before it.
    ///         Searches newest first: a fresh proof costs one storage read.
    function isKnownRoot(uint256 root) public view returns (bool) {
        if (root == 0) return false;
        uint256 cursor = _rootCursor;
        for (uint256 i = 0; i < ZK_ROOT_HISTORY_SIZE; ++i) {
            if (_roots[cursor] == root) return true;
            cursor = cursor == 0 ? ZK_ROOT_HISTORY_SIZE - 1 : cursor - 1;
        }
        return false;
    }

    function currentRoot() public view returns (uint256) {
        return _tree._root();
    }

    function treeSize() public view returns (uint256) {
        return _tree.size;
    }

    function treeDepth() public view returns (uint256) {
        return _tree.depth;
    }
}
