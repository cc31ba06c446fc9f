// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IAllowanceVault: DSO-issued withdrawal limits, spent with zero-knowledge proofs
/// @notice The DSO inserts commitments to allowances (a per-interval cap in watts over a window of
///         trading intervals) after checking them against its feeder limits. A household then
///         withdraws energy assets to fresh addresses by proving (circuits/allowance-withdraw.circom)
///         that the asset fits within some unspent allowance, without saying which. The vault
///         inserts the parts the split leaves and mints the asset in the market.
interface IAllowanceVault {
    /// @notice The DSO issued an allowance commitment at `leafIndex`.
    event AllowanceIssued(uint256 indexed commitment, uint256 leafIndex, uint256 root);
    /// @notice An allowance was spent; `newCommitments` (0 = empty part) are its remaining parts.
    event AllowanceSpent(
        uint256 indexed nullifierHash, uint64 indexed assetID, uint256[3] newCommitments, uint256 root
    );

    error AllowanceVault__NotDSO(address caller);
    error AllowanceVault__ZeroAddress();
    error AllowanceVault__InvalidDirection(int8 direction);
    error AllowanceVault__PowerTooLarge(uint64 powerW);
    error AllowanceVault__UnknownRoot(uint256 root);
    error AllowanceVault__NullifierSpent(uint256 nullifierHash);
    error AllowanceVault__InvalidProof();
    error AllowanceVault__Reentrancy();

    /// @notice +1: the vault mints production assets (powerW > 0); -1: consumption (powerW < 0).
    function direction() external view returns (int8);

    /// @notice DSO only: insert an allowance commitment the DSO has checked.
    function issue(uint256 commitment) external;

    /// @notice Spend an allowance: mint (direction x powerW, start, end) to `recipient`.
    function withdraw(
        uint256[2] calldata pA,
        uint256[2][2] calldata pB,
        uint256[2] calldata pC,
        uint256 root,
        uint256 nullifierHash,
        uint64 powerW,
        uint64 start,
        uint64 end,
        address recipient,
        uint256[3] calldata newCommitments
    ) external returns (uint64 assetID);

    function nullifierSpent(uint256 nullifierHash) external view returns (bool);
}
