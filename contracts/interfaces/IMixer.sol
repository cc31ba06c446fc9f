// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IMixer: a fixed-denomination pool over the market's money
/// @notice The DSO pays money into the pool as a note commitment instead of crediting a known
///         address; anyone holding the note later withdraws the denomination to a fresh address,
///         optionally through a relayer who pays the gas and takes `fee` from the denomination.
///         The proof (circuits/mixer-withdraw.circom) binds recipient, relayer and fee through one
///         public input, extDataHash (Tornado Nova's pattern), which withdraw recomputes.
interface IMixer {
    /// @notice A note commitment entered the pool at `leafIndex`; `root` is the tree's new root
    ///         (after a depositMany, the root after the whole batch, the only one that existed).
    event Deposit(uint256 indexed commitment, uint256 leafIndex, uint256 root);
    /// @notice A note was spent: `recipient` got denomination - fee, `relayer` got fee.
    event Withdrawal(address indexed recipient, address indexed relayer, uint256 nullifierHash, uint64 fee);

    error Mixer__NotDSO(address caller);
    error Mixer__InvalidDenomination(uint64 denomination);
    error Mixer__ZeroAddress();
    error Mixer__FeeTooHigh(uint64 fee, uint64 denomination);
    error Mixer__UnknownRoot(uint256 root);
    error Mixer__NullifierSpent(uint256 nullifierHash);
    error Mixer__InvalidProof();
    error Mixer__Reentrancy();
    error Mixer__EmptyBatch();

    /// @notice Money units each note is worth; one of ZkConstants' mixer denominations.
    function denomination() external view returns (uint64);

    /// @notice DSO only: pay one denomination into the pool under `commitment`.
    function deposit(uint256 commitment) external;

    /// @notice DSO only: pay one denomination per commitment into the pool, in order. Cheaper per
    ///         note than single deposits (the leaves share the upper levels' hashes) and one root
    ///         for the whole batch.
    function depositMany(uint256[] calldata commitments) external;

    /// @notice keccak256(abi.encode(recipient, relayer, fee)) mod p: the public input through which a
    ///         proof binds the withdrawal's external data (mixer/public-signals.ts computes the same).
    function extDataHash(address recipient, address relayer, uint64 fee) external pure returns (uint256);

    /// @notice Spend a note: verify the proof, mark the nullifier spent, credit recipient and relayer.
    function withdraw(
        uint256[2] calldata pA,
        uint256[2][2] calldata pB,
        uint256[2] calldata pC,
        uint256 root,
        uint256 nullifierHash,
        address recipient,
        address relayer,
        uint64 fee
    ) external;

    function nullifierSpent(uint256 nullifierHash) external view returns (bool);
}
