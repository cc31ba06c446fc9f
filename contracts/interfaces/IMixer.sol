// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IMixer: a fixed-denomination pool over the market's money
/// @notice The DSO pays money into the pool as a note commitment instead of crediting a known
///         address; anyone holding the note later withdraws the denomination to a fresh address,
///         optionally through a relayer who pays the gas and takes `fee` from the denomination.
///         The proof (circuits/mixer-withdraw.circom) binds recipient, relayer and fee.
interface IMixer {
    /// @notice A note commitment entered the pool at `leafIndex`; `root` is the tree's new root.
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

    /// @notice Money units each note is worth; one of ZkConstants' mixer denominations.
    function denomination() external view returns (uint64);

    /// @notice DSO only: pay one denomination into the pool under `commitment`.
    function deposit(uint256 commitment) external;

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
