// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IEnergyMarket} from "./interfaces/IEnergyMarket.sol";

/// @title EnergyMarket: the PETra market, with exact partial-overlap settlement
/// @notice See IEnergyMarket. Two defects of the authors' original (Solidity 0.4) contract are
///         fixed here: offers must really overlap in time, and the leftover power across the
///         intersection stays with its owner over the whole intersection, not the last interval.
contract EnergyMarket is IEnergyMarket {
    struct Asset {
        address owner; // address(0) once retired (split by a trade, or deposited)
        int64 powerW;
        uint64 start;
        uint64 end;
        bool locked;
    }

    struct Offer {
        address poster;
        uint64 assetID;
        uint64 priceMicroPerWInterval;
        OfferState state;
    }

    address public immutable override dso;
    mapping(address account => bool) public override isMinter;

    Asset[] private _assets;
    Offer[] private _offers;
    mapping(address account => uint64) private _balances;

    modifier onlyDSO() {
        if (msg.sender != dso) revert EnergyMarket__NotDSO(msg.sender);
        _;
    }

    modifier onlyMinter() {
        if (msg.sender != dso && !isMinter[msg.sender]) revert EnergyMarket__NotMinter(msg.sender);
        _;
    }

    constructor() {
        dso = msg.sender;
    }

    // ---------------------------------------------------------------- DSO and minters

    function setMinter(address minter, bool allowed) external override onlyDSO {
        if (minter == address(0)) revert EnergyMarket__ZeroAddress();
        isMinter[minter] = allowed;
        emit MinterSet(minter, allowed);
    }

    function addEnergyAsset(address anonAddress, int64 powerW, uint64 start, uint64 end)
        external
        override
        onlyMinter
        returns (uint64 assetID)
    {
        _requireValidShape(powerW, start, end);
        if (anonAddress == address(0)) revert EnergyMarket__ZeroAddress();
        assetID = _create(anonAddress, powerW, start, end);
        emit AssetAdded(anonAddress, assetID, powerW, start, end);
    }

    function addEnergyAssets(AssetMint[] calldata mints) external override onlyMinter returns (uint64 firstAssetID) {
        firstAssetID = uint64(_assets.length);
        for (uint256 i = 0; i < mints.length; ++i) {
            AssetMint calldata m = mints[i];
            _requireValidShape(m.powerW, m.start, m.end);
            if (m.anonAddress == address(0)) revert EnergyMarket__ZeroAddress();
            uint64 assetID = _create(m.anonAddress, m.powerW, m.start, m.end);
            emit AssetAdded(m.anonAddress, assetID, m.powerW, m.start, m.end);
        }
    }

    function addFinancialBalance(address anonAddress, uint64 amount) external override onlyMinter {
        _credit(anonAddress, amount);
    }

    function addFinancialBalances(address[] calldata anonAddresses, uint64[] calldata amounts)
        external
        override
        onlyMinter
    {
        if (anonAddresses.length != amounts.length) {
            revert EnergyMarket__LengthMismatch(anonAddresses.length, amounts.length);
        }
        for (uint256 i = 0; i < anonAddresses.length; ++i) {
            _credit(anonAddresses[i], amounts[i]);
        }
    }

    function fundGas(address[] calldata anonAddresses, uint256 amountWei) external payable override onlyDSO {
        uint256 expected = amountWei * anonAddresses.length;
        if (msg.value != expected) revert EnergyMarket__WrongValue(msg.value, expected);
        for (uint256 i = 0; i < anonAddresses.length; ++i) {
            address to = anonAddresses[i];
            if (to == address(0)) revert EnergyMarket__ZeroAddress();
            emit GasFunded(to, amountWei);
            // All the gas: a pseudonym is an account without code, and the DSO picks the list.
            (bool ok,) = payable(to).call{value: amountWei}("");
            if (!ok) revert EnergyMarket__GasTransferFailed(to);
        }
    }

    // ---------------------------------------------------------------- prosumers

    function postOffer(uint64 assetID, uint64 priceMicroPerWInterval) external override returns (uint64 offerID) {
        Asset storage a = _requireOwnedUnlocked(assetID);
        if (a.powerW < 0) {
            // A bid pays for all of its energy up front, so a seller is never left unpaid.
            uint256 cost = _cost(priceMicroPerWInterval, _abs(a.powerW), a.start, a.end);
            uint64 balance = _balances[msg.sender];
            if (cost > balance) revert EnergyMarket__InsufficientBalance(msg.sender, balance, cost);
            _balances[msg.sender] = balance - uint64(cost);
        }
        a.locked = true;
        offerID = uint64(_offers.length);
        _offers.push(Offer(msg.sender, assetID, priceMicroPerWInterval, OfferState.Open));
        emit OfferPosted(offerID, assetID, priceMicroPerWInterval);
    }

    function rescindOffer(uint64 offerID) external override {
        Offer storage o = _requireOpenOffer(offerID);
        if (o.poster != msg.sender) revert EnergyMarket__NotOfferPoster(offerID, msg.sender);
        o.state = OfferState.Rescinded;
        Asset storage a = _assets[o.assetID];
        a.locked = false;
        if (a.powerW < 0) {
            _addBalance(msg.sender, _cost(o.priceMicroPerWInterval, _abs(a.powerW), a.start, a.end));
        }
        emit OfferRescinded(offerID);
    }

    function acceptOffer(uint64 offerID, uint64 assetID) external override {
        Offer storage o = _requireOpenOffer(offerID);
        Asset storage b = _requireOwnedUnlocked(assetID);
        Asset storage a = _assets[o.assetID];
        if ((a.powerW > 0) == (b.powerW > 0)) revert EnergyMarket__SameDirection(o.assetID, assetID);

        uint64 s = a.start > b.start ? a.start : b.start;
        uint64 e = a.end < b.end ? a.end : b.end;
        if (s > e) revert EnergyMarket__NoOverlap(o.assetID, assetID);

        uint64 absA = _abs(a.powerW);
        uint64 absB = _abs(b.powerW);
        uint64 tradedW = absA < absB ? absA : absB;
        uint256 payment = _cost(o.priceMicroPerWInterval, tradedW, s, e);

        address poster = o.poster;
        if (a.powerW > 0) {
            // Ask: the accepter buys now, from its free balance.
            uint64 balance = _balances[msg.sender];
            if (payment > balance) revert EnergyMarket__InsufficientBalance(msg.sender, balance, payment);
            _balances[msg.sender] = balance - uint64(payment);
            _addBalance(poster, payment);
        } else {
            // Bid: the poster locked the full cost; the seller is paid the traded part, the rest returns.
            uint256 locked = _cost(o.priceMicroPerWInterval, absA, a.start, a.end);
            _addBalance(msg.sender, payment);
            _addBalance(poster, locked - payment);
        }

        o.state = OfferState.Accepted;
        emit OfferAccepted(offerID, assetID, uint64(payment));

        // Copy before retiring: the parts are derived from the original shapes.
        Asset memory am = a;
        Asset memory bm = b;
        a.owner = address(0);
        a.locked = false;
        b.owner = address(0);
        _splitInto(o.assetID, am, absA, tradedW, s, e, msg.sender);
        _splitInto(assetID, bm, absB, tradedW, s, e, poster);
    }

    function depositEnergyAsset(uint64 assetID) external override {
        Asset storage a = _requireOwnedUnlocked(assetID);
        a.owner = address(0);
        emit AssetDeposited(msg.sender, assetID);
    }

    function depositBatch(uint64[] calldata assetIDs, uint64 amount) external override {
        if (assetIDs.length == 0 && amount == 0) revert EnergyMarket__ZeroAmount();
        for (uint256 i = 0; i < assetIDs.length; ++i) {
            Asset storage a = _requireOwnedUnlocked(assetIDs[i]);
            a.owner = address(0);
            emit AssetDeposited(msg.sender, assetIDs[i]);
        }
        if (amount > 0) _debit(amount);
    }

    function depositFinancial(uint64 amount) external override {
        if (amount == 0) revert EnergyMarket__ZeroAmount();
        _debit(amount);
    }

    // ---------------------------------------------------------------- views

    function energyAsset(uint64 assetID)
        external
        view
        override
        returns (address owner, int64 powerW, uint64 start, uint64 end, bool locked)
    {
        if (assetID >= _assets.length) revert EnergyMarket__UnknownAsset(assetID);
        Asset storage a = _assets[assetID];
        return (a.owner, a.powerW, a.start, a.end, a.locked);
    }

    function assetCount() external view override returns (uint64) {
        return uint64(_assets.length);
    }

    function offer(uint64 offerID)
        external
        view
        override
        returns (address poster, uint64 assetID, uint64 priceMicroPerWInterval, OfferState state)
    {
        if (offerID >= _offers.length) revert EnergyMarket__UnknownOffer(offerID);
        Offer storage o = _offers[offerID];
        return (o.poster, o.assetID, o.priceMicroPerWInterval, o.state);
    }

    function offerCount() external view override returns (uint64) {
        return uint64(_offers.length);
    }

    function financialBalance(address account) external view override returns (uint64) {
        return _balances[account];
    }

    // ---------------------------------------------------------------- internals

    /// @dev Emits the parts of a retired asset: the traded part to `counterparty`, and the parts
    ///      before and after the intersection [s, e] and the leftover power across it to the owner.
    function _splitInto(
        uint64 parentID,
        Asset memory x,
        uint64 absX,
        uint64 tradedW,
        uint64 s,
        uint64 e,
        address counterparty
    ) private {
        int64 sign = x.powerW > 0 ? int64(1) : int64(-1);
        _emitPart(parentID, counterparty, sign * int64(tradedW), s, e);
        if (x.start < s) _emitPart(parentID, x.owner, x.powerW, x.start, s - 1);
        if (x.end > e) _emitPart(parentID, x.owner, x.powerW, e + 1, x.end);
        if (absX > tradedW) _emitPart(parentID, x.owner, sign * int64(absX - tradedW), s, e);
    }

    function _emitPart(uint64 parentID, address owner, int64 powerW, uint64 start, uint64 end) private {
        uint64 assetID = _create(owner, powerW, start, end);
        emit AssetSplit(parentID, assetID, owner, powerW, start, end);
    }

    function _create(address owner, int64 powerW, uint64 start, uint64 end) private returns (uint64 assetID) {
        assetID = uint64(_assets.length);
        _assets.push(Asset(owner, powerW, start, end, false));
    }

    function _debit(uint64 amount) private {
        uint64 balance = _balances[msg.sender];
        if (amount > balance) revert EnergyMarket__InsufficientBalance(msg.sender, balance, amount);
        _balances[msg.sender] = balance - amount;
        emit FinancialDeposited(msg.sender, amount);
    }

    function _credit(address anonAddress, uint64 amount) private {
        if (anonAddress == address(0)) revert EnergyMarket__ZeroAddress();
        if (amount == 0) revert EnergyMarket__ZeroAmount();
        _addBalance(anonAddress, amount);
        emit FinancialAdded(anonAddress, amount);
    }

    function _addBalance(address account, uint256 amount) private {
        uint256 total = uint256(_balances[account]) + amount;
        if (total > type(uint64).max) revert EnergyMarket__AmountOverflow(total);
        _balances[account] = uint64(total);
    }

    function _requireValidShape(int64 powerW, uint64 start, uint64 end) private pure {
        // type(int64).min has no positive counterpart, so the traded-part arithmetic excludes it too.
        if (powerW == 0 || powerW == type(int64).min) revert EnergyMarket__InvalidPower(powerW);
        if (start > end) revert EnergyMarket__InvalidInterval(start, end);
    }

    function _requireOwnedUnlocked(uint64 assetID) private view returns (Asset storage a) {
        if (assetID >= _assets.length) revert EnergyMarket__UnknownAsset(assetID);
        a = _assets[assetID];
        if (a.owner != msg.sender) revert EnergyMarket__NotAssetOwner(assetID, msg.sender);
        if (a.locked) revert EnergyMarket__AssetLocked(assetID);
    }

    function _requireOpenOffer(uint64 offerID) private view returns (Offer storage o) {
        if (offerID >= _offers.length) revert EnergyMarket__UnknownOffer(offerID);
        o = _offers[offerID];
        if (o.state != OfferState.Open) revert EnergyMarket__OfferNotOpen(offerID, o.state);
    }

    /// @dev price x watts x intervals, in uint256 so it cannot wrap; callers bound it by a uint64 balance.
    function _cost(uint64 price, uint64 absPowerW, uint64 start, uint64 end) private pure returns (uint256) {
        return uint256(price) * absPowerW * (uint256(end) - start + 1);
    }

    function _abs(int64 powerW) private pure returns (uint64) {
        return powerW >= 0 ? uint64(powerW) : uint64(-powerW);
    }
}
