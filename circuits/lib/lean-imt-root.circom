pragma circom 2.1.5;

include "circomlib/circuits/poseidon.circom";
include "circomlib/circuits/bitify.circom";
include "circomlib/circuits/comparators.circom";

// Root of a LeanIMT (the tree @zk-kit/lean-imt and @zk-kit/lean-imt.sol build) from a leaf and its
// proof. A LeanIMT has no zero leaves: a node without a right sibling is carried up unhashed, and
// the tree is only as deep as its size needs. A proof therefore lists only the levels that hash:
// `depth` siblings (padded with anything up to MAX_DEPTH) and `leafIndex`, whose bit i says whether
// the node is the right child at the i-th hashing level. The root is the node after `depth` hashes.
//
// Soundness notes:
// - Inner nodes are Poseidon(2). Leaves hashed with the same function could be forged from any
//   inner node (take its children as the preimage and a shorter proof), so every commitment that
//   goes into such a tree must use a different Poseidon width. Both circuits here do.
// - depth outside [0, MAX_DEPTH] yields root 0, which no contract ever accepts as a root.
// - leafIndex bits are constrained to be bits, so the mux below cannot blend the two children.
template LeanIMTRoot(MAX_DEPTH) {
    signal input leaf;
    signal input depth;
    signal input leafIndex;
    signal input siblings[MAX_DEPTH];
    signal output root;

    signal isRight[MAX_DEPTH] <== Num2Bits(MAX_DEPTH)(leafIndex);

    signal nodes[MAX_DEPTH + 1];
    signal left[MAX_DEPTH];
    signal right[MAX_DEPTH];
    signal atDepth[MAX_DEPTH + 1];
    signal rootAt[MAX_DEPTH + 1];
    var rootSum = 0;

    nodes[0] <== leaf;
    for (var i = 0; i < MAX_DEPTH; i++) {
        atDepth[i] <== IsEqual()([depth, i]);
        rootAt[i] <== atDepth[i] * nodes[i];
        rootSum += rootAt[i];

        left[i] <== isRight[i] * (siblings[i] - nodes[i]) + nodes[i];
        right[i] <== siblings[i] + nodes[i] - left[i];
        nodes[i + 1] <== Poseidon(2)([left[i], right[i]]);
    }
    atDepth[MAX_DEPTH] <== IsEqual()([depth, MAX_DEPTH]);
    rootAt[MAX_DEPTH] <== atDepth[MAX_DEPTH] * nodes[MAX_DEPTH];
    root <== rootSum + rootAt[MAX_DEPTH];
}
