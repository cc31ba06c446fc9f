// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IEnergyMarket: the PETra transactive-energy market (Kvaternik, Laszka et al., section 4)
/// @notice Energy assets are (owner, powerW, start, end): powerW > 0 is production, < 0 is
///         consumption, in watts; start and end are the first and last trading interval, inclusive.
///         Money is a uint64 balance per address. The DSO (the deployer) and the minters it
///         authorises create both; prosumers trade them from anonymous addresses and deposit them
///         back. Every asset is immutable in shape and owner: a trade retires the two assets it
///         touches and creates new ones for every part, so the events below rebuild the full state.
interface IEnergyMarket {
    enum OfferState {
        None,
        Open,
        Rescinded,
        Accepted
    }

    /// @notice One asset to mint in a batch.
    struct AssetMint {
        address anonAddress;
        int64 powerW;
        uint64 start;
        uint64 end;
    }

    // ---------------------------------------------------------------- events

    /// @notice The DSO authorised or revoked a minter contract (e.g. the allowance vault).
    event MinterSet(address indexed minter, bool allowed);
    /// @notice The DSO (or a minter) created an energy asset for an anonymous address.
    event AssetAdded(address indexed anonAddress, uint64 indexed assetID, int64 powerW, uint64 start, uint64 end);
    /// @notice The DSO (or a minter) credited money to an anonymous address.
    event FinancialAdded(address indexed anonAddress, uint64 amount);
    /// @notice An owner offered its asset at `priceMicroPerWInterval` (money units per watt per
    ///         interval). An ask offers production, a bid offers consumption and locks its full cost.
    event OfferPosted(uint64 indexed offerID, uint64 indexed assetID, uint64 priceMicroPerWInterval);
    /// @notice The poster withdrew an open offer; the asset and any locked money are free again.
    event OfferRescinded(uint64 indexed offerID);
    /// @notice `assetID` was matched against the offer. Both assets are retired; their parts are
    ///         announced by AssetSplit. `payment` moved from buyer to seller.
    event OfferAccepted(uint64 indexed offerID, uint64 indexed assetID, uint64 payment);
    /// @notice A trade created asset `assetID` (owned by `owner`) as a part of retired asset `parentID`.
    event AssetSplit(
        uint64 indexed parentID,
        uint64 indexed assetID,
        address indexed owner,
        int64 powerW,
        uint64 start,
        uint64 end
    );
    /// @notice The owner handed the asset back to the DSO; it is retired.
    event AssetDeposited(address indexed anonAddress, uint64 indexed assetID);
    /// @notice The owner handed money back to the DSO.
    event FinancialDeposited(address indexed anonAddress, uint64 amount);
    /// @notice The DSO sent `amountWei` of ether to `anonAddress` for its gas (fundGas).
    event GasFunded(address indexed anonAddress, uint256 amountWei);

    // ---------------------------------------------------------------- errors

    error EnergyMarket__NotDSO(address caller);
    error EnergyMarket__NotMinter(address caller);
    error EnergyMarket__ZeroAddress();
    error EnergyMarket__InvalidPower(int64 powerW);
    error EnergyMarket__InvalidInterval(uint64 start, uint64 end);
    error EnergyMarket__ZeroAmount();
    error EnergyMarket__LengthMismatch(uint256 addresses, uint256 amounts);
    error EnergyMarket__AmountOverflow(uint256 amount);
    error EnergyMarket__UnknownAsset(uint64 assetID);
    error EnergyMarket__NotAssetOwner(uint64 assetID, address caller);
    error EnergyMarket__AssetLocked(uint64 assetID);
    error EnergyMarket__UnknownOffer(uint64 offerID);
    error EnergyMarket__OfferNotOpen(uint64 offerID, OfferState state);
    error EnergyMarket__NotOfferPoster(uint64 offerID, address caller);
    error EnergyMarket__SameDirection(uint64 offerAssetID, uint64 assetID);
    error EnergyMarket__NoOverlap(uint64 offerAssetID, uint64 assetID);
    error EnergyMarket__WrongValue(uint256 sent, uint256 expected);
    error EnergyMarket__GasTransferFailed(address anonAddress);
    error EnergyMarket__InsufficientBalance(address account, uint64 balance, uint256 required);

    // ---------------------------------------------------------------- DSO and minters

    /// @notice The distribution system operator: the deployer.
    function dso() external view returns (address);

    /// @notice DSO only: allow or revoke a contract (or account) to mint assets and money.
    function setMinter(address minter, bool allowed) external;

    function isMinter(address account) external view returns (bool);

    /// @notice DSO or minter: create an energy asset owned by `anonAddress`.
    function addEnergyAsset(address anonAddress, int64 powerW, uint64 start, uint64 end)
        external
        returns (uint64 assetID);

    /// @notice DSO or minter: create several energy assets in one transaction.
    /// @return firstAssetID the ID of the first; the rest follow consecutively.
    function addEnergyAssets(AssetMint[] calldata mints) external returns (uint64 firstAssetID);

    /// @notice DSO or minter: credit `amount` to `anonAddress`.
    function addFinancialBalance(address anonAddress, uint64 amount) external;

    /// @notice DSO or minter: credit several addresses in one transaction.
    function addFinancialBalances(address[] calldata anonAddresses, uint64[] calldata amounts) external;

    /// @notice DSO: send `amountWei` of ether to each address for its gas, in one transaction
    /// (msg.value must be exactly amountWei x the number of addresses); a GasFunded each.
    /// @dev Not in the paper's ABI: instead of a plain transfer per fresh pseudonym. The events
    /// keep each transfer visible to whoever reads the market's logs, as plain transfers were.
    function fundGas(address[] calldata anonAddresses, uint256 amountWei) external payable;

    // ---------------------------------------------------------------- prosumers

    /// @notice Offer an owned, unlocked asset. A bid (consumption) locks price x |powerW| x intervals.
    function postOffer(uint64 assetID, uint64 priceMicroPerWInterval) external returns (uint64 offerID);

    /// @notice Withdraw an open offer (poster only).
    function rescindOffer(uint64 offerID) external;

    /// @notice Meet an open offer with an owned asset of the opposite direction that overlaps it in time.
    function acceptOffer(uint64 offerID, uint64 assetID) external;

    /// @notice Hand an owned, unlocked asset back to the DSO.
    function depositEnergyAsset(uint64 assetID) external;

    /// @notice Hand several owned, unlocked assets and `amount` of the caller's money back to the DSO
    /// in one transaction, all or none: what a retiring pseudonym holds. Either part may be empty,
    /// not both.
    /// @dev Not in the paper's ABI. It emits what depositEnergyAsset and depositFinancial would (an
    /// AssetDeposited per asset, then FinancialDeposited if amount > 0), so whoever reads the logs
    /// (the DSO's book, the attack suite) sees the same events as from separate calls.
    function depositBatch(uint64[] calldata assetIDs, uint64 amount) external;

    /// @notice Hand `amount` of the caller's money back to the DSO.
    function depositFinancial(uint64 amount) external;

    // ---------------------------------------------------------------- views

    /// @notice A retired asset (split by a trade, or deposited) reads owner address(0).
    function energyAsset(uint64 assetID)
        external
        view
        returns (address owner, int64 powerW, uint64 start, uint64 end, bool locked);

    function assetCount() external view returns (uint64);

    function offer(uint64 offerID)
        external
        view
        returns (address poster, uint64 assetID, uint64 priceMicroPerWInterval, OfferState state);

    function offerCount() external view returns (uint64);

    function financialBalance(address account) external view returns (uint64);
}
