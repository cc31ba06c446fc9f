// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IEnergyMarket} from "../interfaces/IEnergyMarket.sol";
import {IMixer} from "../interfaces/IMixer.sol";
import {MixerWithdrawVerifier} from "../verifiers/MixerWithdrawVerifier.sol";
import {ZK_FIELD_MODULUS, ZkConstants} from "../verifiers/ZkConstants.sol";
import {RootHistory} from "./RootHistory.sol";

/// @title Mixer: see IMixer
/// @dev The market has no transfer-from, so money enters as a DSO issuance (the DSO pays into the
///      pool instead of crediting a known address) and leaves as a mint by this contract, which
///      the DSO authorises with EnergyMarket.setMinter. Money is conserved across the pair: each
///      deposit is matched by at most one withdrawal of the same denomination.
///      The Groth16 verifier (generated from the circuit's keys) runs inline: a new circuit or
///      ceremony means a new Mixer, as it would with a separate verifier the Mixer trusts.
contract Mixer is IMixer, RootHistory {
    IEnergyMarket public immutable market;
    uint64 public immutable override denomination;
    /// @dev Cached: the market's DSO is immutable too, and deposits are the hot path.
    address public immutable dso;

    mapping(uint256 nullifierHash => bool) public override nullifierSpent;

    /// @dev The only external call goes to the market, which calls nobody back; the guard is
    ///      defence in depth should the market ever be swapped for one that does. Its lock shares
    ///      a slot with the root history's cursor (see RootHistory).
    modifier nonReentrant() {
        if (_reentrancyLock != 1) revert Mixer__Reentrancy();
        _reentrancyLock = 2;
        _;
        _reentrancyLock = 1;
    }

    constructor(IEnergyMarket market_, uint64 denomination_) {
        if (address(market_) == address(0)) revert Mixer__ZeroAddress();
        if (!ZkConstants.isMixerDenomination(denomination_)) revert Mixer__InvalidDenomination(denomination_);
        market = market_;
        denomination = denomination_;
        dso = market_.dso();
    }

    function deposit(uint256 commitment) external override {
        if (msg.sender != dso) revert Mixer__NotDSO(msg.sender);
        (uint256 index, uint256 root) = _insertLeaf(commitment);
        emit Deposit(commitment, index, root);
    }

    function depositMany(uint256[] calldata commitments) external override {
        if (msg.sender != dso) revert Mixer__NotDSO(msg.sender);
        if (commitments.length == 0) revert Mixer__EmptyBatch();
        (uint256 first, uint256 root) = _insertLeaves(commitments);
        for (uint256 i = 0; i < commitments.length; ++i) {
            emit Deposit(commitments[i], first + i, root);
        }
    }

    function extDataHash(address recipient, address relayer, uint64 fee) public pure override returns (uint256) {
        return uint256(keccak256(abi.encode(recipient, relayer, fee))) % ZK_FIELD_MODULUS;
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
        // The proof binds recipient, relayer and fee through their hash: any other value of
        // the three gives another extDataHash, and the proof fails.
        uint256[3] memory pub = [root, nullifierHash, extDataHash(recipient, relayer, fee)];
        if (!MixerWithdrawVerifier.verifyProof(pA, pB, pC, pub)) revert Mixer__InvalidProof();

        nullifierSpent[nullifierHash] = true;
        emit Withdrawal(recipient, relayer, nullifierHash, fee);

        if (fee == 0) {
            market.addFinancialBalance(recipient, denomination);
        } else if (fee == denomination) {
            market.addFinancialBalance(relayer, fee);
        } else {
            // Two single credits: ~1.3k gas less than one addFinancialBalances with two-element
            // arrays (no array encoding, decoding or loop), and the same two FinancialAdded events.
            market.addFinancialBalance(recipient, denomination - fee);
            market.addFinancialBalance(relayer, fee);
        }
    }
}
