pragma circom 2.1.5;

include "circomlib/circuits/poseidon.circom";
include "./lib/lean-imt-root.circom";

// Withdraw one note from a fixed-denomination mixer pool.
//   commitment    = Poseidon(3)(DOMAIN, nullifier, secret)   (leaf of the pool's LeanIMT)
//   nullifierHash = Poseidon(1)(nullifier)                    (public, spent once on chain)
// The width-3 hash keeps a commitment from ever equalling a Poseidon(2) inner node of the tree.
//
// extDataHash = keccak256(abi.encode(recipient, relayer, fee)) mod p binds the withdrawal's
// external data (as Tornado Nova does): the circuit only carries it, the contract recomputes it
// from its own arguments, so a front-runner who copies the proof can neither redirect the money
// nor raise the fee. One public input instead of three saves two scalar multiplications
// (~12.7k gas) per verification; the contract checks fee <= denomination.
template MixerWithdraw(MAX_DEPTH, DOMAIN) {
    signal input root;
    signal input nullifierHash;
    signal input extDataHash;

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

    // Tornado Cash's habit: give an otherwise unconstrained public input a constraint, so no
    // optimiser or setup can leave it out of the verification equation.
    signal extDataSquare <== extDataHash * extDataHash;
}
