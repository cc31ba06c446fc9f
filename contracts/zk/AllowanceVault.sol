// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IAllowanceVault} from "../interfaces/IAllowanceVault.sol";
import {IEnergyMarket} from "../interfaces/IEnergyMarket.sol";
import {AllowanceWithdrawVerifier} from "../verifiers/AllowanceWithdrawVerifier.sol";
import {ZK_ALLOWANCE_EMPTY_COMMITMENT} from "../verifiers/ZkConstants.sol";
import {RootHistory} from "./RootHistory.sol";

/// @title AllowanceVault: see IAllowanceVault
/// @dev A minter of the market (EnergyMarket.setMinter). The proof fixes the new commitments, so
///      a relayer or front-runner can neither redirect the asset nor the leftover allowance.
///      The Groth16 verifier (generated from the circuit's keys) runs inline, as in Mixer.
contract AllowanceVault is IAllowanceVault, RootHistory {
    IEnergyMarket public immutable market;
    address public immutable dso;
    int8 public immutable override direction;

    mapping(uint256 nullifierHash => bool) public override nullifierSpent;

    /// @dev The lock shares a slot with the root history's cursor (see RootHistory).
    modifier nonReentrant() {
        if (_reentrancyLock != 1) revert AllowanceVault__Reentrancy();
        _reentrancyLock = 2;
        _;
        _reentrancyLock = 1;
    }

    constructor(IEnergyMarket market_, int8 direction_) {
        if (address(market_) == address(0)) revert AllowanceVault__ZeroAddress();
        if (direction_ != 1 && direction_ != -1) revert AllowanceVault__InvalidDirection(direction_);
        market = market_;
        dso = market_.dso();
        direction = direction_;
    }

    function issue(uint256 commitment) external override {
        if (msg.sender != dso) revert AllowanceVault__NotDSO(msg.sender);
        (uint256 index, uint256 root) = _insertLeaf(commitment);
        emit AllowanceIssued(commitment, index, root);
    }

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
    ) external override nonReentrant returns (uint64 assetID) {
        if (recipient == address(0)) revert AllowanceVault__ZeroAddress();
        if (powerW > uint64(type(int64).max)) revert AllowanceVault__PowerTooLarge(powerW);
        if (nullifierSpent[nullifierHash]) revert AllowanceVault__NullifierSpent(nullifierHash);
        if (!isKnownRoot(root)) revert AllowanceVault__UnknownRoot(root);
        uint256[9] memory pub = [
            newCommitments[0],
            newCommitments[1],
            newCommitments[2],
            root,
            nullifierHash,
            uint256(powerW),
            uint256(start),
            uint256(end),
            uint256(uint160(recipient))
        ];
        if (!AllowanceWithdrawVerifier.verifyProof(pA, pB, pC, pub)) revert AllowanceVault__InvalidProof();

        nullifierSpent[nullifierHash] = true;
        bool inserted;
        for (uint256 i = 0; i < 3; ++i) {
            // Empty parts are the fixed value 0, which the tree refuses as a leaf anyway.
            if (newCommitments[i] != ZK_ALLOWANCE_EMPTY_COMMITMENT) {
                _insertLeafKeepingHistory(newCommitments[i]);
                inserted = true;
            }
        }
        // One history slot per withdrawal, not per part: ROOT_HISTORY_SIZE counts transactions.
        if (inserted) _pushRoot(currentRoot());
        assetID = market.addEnergyAsset(recipient, int64(direction) * int64(powerW), start, end);
        emit AllowanceSpent(nullifierHash, assetID, newCommitments, currentRoot());
    }
}
