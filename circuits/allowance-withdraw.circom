pragma circom 2.1.5;

include "circomlib/circuits/poseidon.circom";
include "circomlib/circuits/bitify.circom";
include "circomlib/circuits/comparators.circom";
include "./lib/lean-imt-root.circom";

// Constrains `in` to [0, 2^VALUE_BITS).
template RangeCheck(VALUE_BITS) {
    signal input in;
    _ <== Num2Bits(VALUE_BITS)(in);
}

// Poseidon(4)(capW, start, end, inner), or the empty value 0 when `empty` is 1.
template AllowanceCommitment() {
    signal input capW;
    signal input start;
    signal input end;
    signal input inner;
    signal input empty;
    signal output out;

    signal h <== Poseidon(4)([capW, start, end, inner]);
    out <== (1 - empty) * h;
}

// Allowance join-split (DESIGN.md, "Allowances"). An allowance is a per-interval cap capW (watts)
// over the window [windowStart, windowEnd]; its commitment
//   N = Poseidon(4)(capW, windowStart, windowEnd, inner),  inner = Poseidon(2)(secret, nullifier)
// sits in the vault's LeanIMT. The split form is what lets the DSO check an allowance it issues:
// the household sends only `inner` (which hides secret and nullifier, so it cannot be joined with
// the later nullifier hash) and the DSO's desk computes N itself from the cap and window it
// approved, so every leaf the DSO inserts carries exactly the cap and window it checked.
// Withdrawing the energy asset (powerW, start, end) for `recipient` proves:
//   N is in the tree under `root`, nullifierHash = Poseidon(1)(nullifier),
//   windowStart <= start <= end <= windowEnd, 1 <= powerW <= capW,
// and outputs the three parts the split leaves, in this order:
//   newCommitments[0]: cap capW - powerW over [start, end]     (empty when powerW = capW)
//   newCommitments[1]: cap capW over [windowStart, start - 1]   (empty when start = windowStart)
//   newCommitments[2]: cap capW over [end + 1, windowEnd]       (empty when end = windowEnd)
// so the cap stays exact interval by interval across any number of withdrawals. An output's cap
// and window are fixed here; its `inner` (Poseidon(2) of the part's fresh secret and nullifier) is
// a private input. Hashing it here too would cost 3 x Poseidon(2) (~730 constraints) and push the
// zkey over the repository's 5 MB limit, and buys no limit guarantee: an inner is the household's
// own key material, and a wrong one only makes its own part unspendable.
// Simplification against DESIGN.md: a part with zero cap is emitted as empty too (it could never
// be spent, since powerW >= 1), so a full withdrawal inserts nothing useless into the tree.
// The width-4 outer hash keeps a commitment from ever equalling a Poseidon(2) inner node of the
// tree (or an `inner` a household sent).
template AllowanceWithdraw(MAX_DEPTH, VALUE_BITS) {
    signal input root;
    signal input nullifierHash;
    signal input powerW;
    signal input start;
    signal input end;
    signal input recipient;
    signal output newCommitments[3];

    signal input capW;
    signal input windowStart;
    signal input windowEnd;
    signal input secret;
    signal input nullifier;
    signal input depth;
    signal input leafIndex;
    signal input siblings[MAX_DEPTH];

    signal input newInners[3];

    signal inner <== Poseidon(2)([secret, nullifier]);
    signal commitment <== Poseidon(4)([capW, windowStart, windowEnd, inner]);
    signal computedNullifierHash <== Poseidon(1)([nullifier]);
    nullifierHash === computedNullifierHash;
    signal computedRoot <== LeanIMTRoot(MAX_DEPTH)(commitment, depth, leafIndex, siblings);
    root === computedRoot;

    // Orderings as "the difference fits in VALUE_BITS". Sound because capW, windowStart and
    // windowEnd are VALUE_BITS-bit: they come from a commitment in the tree, and every commitment
    // there is in range by induction. Base: the DSO's desk computes every leaf it issues itself,
    // from a cap and window it range-checked against its policy (the household supplies only
    // `inner`), so no issued leaf can hide other values. Step: each part this circuit outputs lies
    // within the spent one and its outer hash is computed here. From that:
    //   windowStart <= start <= end <= windowEnd < 2^VALUE_BITS, with no wrap-around, and
    //   1 <= powerW <= capW,
    // so the public powerW, start and end need no range checks of their own (the vault passes
    // uint64 anyway). This is a simplification of DESIGN.md's statement that keeps its guarantees
    // and saves 6 x VALUE_BITS constraints.
    RangeCheck(VALUE_BITS)(start - windowStart);
    RangeCheck(VALUE_BITS)(end - start);
    RangeCheck(VALUE_BITS)(windowEnd - end);
    RangeCheck(VALUE_BITS)(capW - powerW);
    RangeCheck(VALUE_BITS)(powerW - 1);

    signal middleEmpty <== IsZero()(capW - powerW);
    signal leftEmpty <== IsZero()(start - windowStart);
    signal rightEmpty <== IsZero()(windowEnd - end);

    newCommitments[0] <== AllowanceCommitment()(capW - powerW, start, end, newInners[0], middleEmpty);
    newCommitments[1] <== AllowanceCommitment()(capW, windowStart, start - 1, newInners[1], leftEmpty);
    newCommitments[2] <== AllowanceCommitment()(capW, end + 1, windowEnd, newInners[2], rightEmpty);

    signal recipientSquare <== recipient * recipient;
}
