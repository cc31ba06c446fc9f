pragma circom 2.1.5;

include "circomlib/circuits/poseidon.circom";
include "./lib/lean-imt-root.circom";

// Withdraw one note from a fixed-denomination mixer pool.
//   commitment    = Poseidon(3)(DOMAIN, nullifier, secret)   (leaf of the pool's LeanIMT)
//   nullifierHash = Poseidon(1)(nullifier)                    (public, spent once on chain)
// The width-3 hash keeps a commitment from ever equalling a Poseidon(2) inner node of the tree.
// recipient, relayer and fee are public so a front-runner who copies the proof cannot redirect
// the money or raise the fee; the contract checks fee <= denomination.
template MixerWithdraw(MAX_DEPTH, DOMAIN) {
    signal input root;
    signal input nullifierHash;
    signal input recipient;
    signal input relayer;
    signal input fee;

    signal input nullifier;
    signal input secret;
    signal input depth;
    signal input leafIndex;
    signal input siblings[MAX_DEPTH];

    signal commitment <== Poseidon(3)([DOMAIN, nullifier, secret]);
    signal computedNullifierHash <== Poseidon(1)([nullifier]);
    nullifierHash === computedNullifierHash;

    signal computedRoot <== LeanIMTRoot(MAX_DEPTH)(commitment, depth, leafIndex, siblings);
    root === computedRoot;

    // Tornado Cash's habit: give every otherwise unconstrained public input a constraint, so no
    // optimiser or setup can leave it out of the verification equation.
    signal recipientSquare <== recipient * recipient;
    signal relayerSquare <== relayer * relayer;
    signal feeSquare <== fee * fee;
}
