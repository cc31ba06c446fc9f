// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice The generated verifier for mixer-withdraw (contracts/verifiers/MixerWithdrawVerifier.sol).
/// Public signals: root, nullifierHash, recipient, relayer, fee.
interface IMixerWithdrawVerifier {
    function verifyProof(
        uint256[2] calldata pA,
        uint256[2][2] calldata pB,
        uint256[2] calldata pC,
        uint256[5] calldata pubSignals
    ) external view returns (bool);
}

/// @notice The generated verifier for allowance-withdraw (contracts/verifiers/AllowanceWithdrawVerifier.sol).
/// Public signals: newCommitments[3], root, nullifierHash, powerW, start, end, recipient.
interface IAllowanceWithdrawVerifier {
    function verifyProof(
        uint256[2] calldata pA,
        uint256[2][2] calldata pB,
        uint256[2] calldata pC,
        uint256[9] calldata pubSignals
    ) external view returns (bool);
}
