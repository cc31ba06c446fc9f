// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IEnergyMarket} from "../interfaces/IEnergyMarket.sol";
import {IMixerWithdrawVerifier} from "../interfaces/IGroth16Verifiers.sol";
import {IMixer} from "../interfaces/IMixer.sol";
import {ZkConstants} from "../verifiers/ZkConstants.sol";
import {RootHistory} from "./RootHistory.sol";

/// @title Mixer: see IMixer
/// @dev The market has no transfer-from, so money enters as a DSO issuance (the DSO pays into the
///      pool instead of crediting a known address) and leaves as a mint by this contract, which
///      the DSO authorises with EnergyMarket.setMinter. Money is conserved across the pair: each
///      deposit is matched by at most one withdrawal of the same denomination.
contract Mixer is IMixer, RootHistory {
    IEnergyMarket public immutable market;
    IMixerWithdrawVerifier public immutable verifier;
    uint64 public immutable override denomination;
    /// @dev Cached: the market's DSO is immutable too, and deposits are the hot path.
    address public immutable dso;

    mapping(uint256 nullifierHash => bool) public override nullifierSpent;
    uint256 private _lock = 1;

    /// @dev The only external call goes to the market, which calls nobody back; the guard is
    ///      defence in depth should the market ever be swapped for one that does.
    modifier nonReentrant() {
        if (_lock != 1) revert Mixer__Reentrancy();
        _lock = 2;
        _;
        _lock = 1;
    }

    constructor(IEnergyMarket market_, IMixerWithdrawVerifier verifier_, uint64 denomination_) {
        if (address(market_) == address(0) || address(verifier_) == address(0)) revert Mixer__ZeroAddress();
        if (!ZkConstants.isMixerDenomination(denomination_)) revert Mixer__InvalidDenomination(denomination_);
        market = market_;
        verifier = verifier_;
        denomination = denomination_;
        dso = market_.dso();
    }

    function deposit(uint256 commitment) external override {
        if (msg.sender != dso) revert Mixer__NotDSO(msg.sender);
        (uint256 index, uint256 root) = _insertLeaf(commitment);
        emit Deposit(commitment, index, root);
    }

    function withdraw(
        uint256[2] calldata pA,
        uint256[2][2] calldata pB,
        uint256[2] calldata pC,
        uint256 root,
        uint256 nullifierHash,
        address recipient,
        address relayer,
        uint64 fee
    ) external override nonReentrant {
        if (recipient == address(0)) revert Mixer__ZeroAddress();
        if (fee > denomination) revert Mixer__FeeTooHigh(fee, denomination);
        if (fee > 0 && relayer == address(0)) revert Mixer__ZeroAddress();
        if (nullifierSpent[nullifierHash]) revert Mixer__NullifierSpent(nullifierHash);
        if (!isKnownRoot(root)) revert Mixer__UnknownRoot(root);
        uint256[5] memory pub =
            [root, nullifierHash, uint256(uint160(recipient)), uint256(uint160(relayer)), uint256(fee)];
        if (!verifier.verifyProof(pA, pB, pC, pub)) revert Mixer__InvalidProof();

        nullifierSpent[nullifierHash] = true;
        emit Withdrawal(recipient, relayer, nullifierHash, fee);

        if (fee == 0) {
            market.addFinancialBalance(recipient, denomination);
        } else if (fee == denomination) {
            market.addFinancialBalance(relayer, fee);
        } else {
            address[] memory to = new address[](2);
            uint64[] memory amounts = new uint64[](2);
            (to[0], to[1], amounts[0], amounts[1]) = (recipient, relayer, denomination - fee, fee);
            market.addFinancialBalances(to, amounts);
        }
    }
}
