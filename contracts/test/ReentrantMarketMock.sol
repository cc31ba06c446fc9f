// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ReentrantMarketMock: TEST ONLY, a market that calls back into its minter
/// @notice Stands in for EnergyMarket in the reentrancy tests of Mixer and AllowanceVault: when
///         the minter credits money or mints an asset, it replays a stored call against the minter
///         and bubbles up that call's revert. The real market never calls anyone back.
contract ReentrantMarketMock {
    address public immutable dso;
    address private _target;
    bytes private _replay;

    constructor() {
        dso = msg.sender;
    }

    function setReplay(address target, bytes calldata data) external {
        _target = target;
        _replay = data;
    }

    function addFinancialBalance(address, uint64) external {
        _reenter();
    }

    function addFinancialBalances(address[] calldata, uint64[] calldata) external {
        _reenter();
    }

    function addEnergyAsset(address, int64, uint64, uint64) external returns (uint64) {
        _reenter();
        return 0;
    }

    function _reenter() private {
        (bool ok, bytes memory ret) = _target.call(_replay);
        if (!ok) {
            assembly {
                revert(add(ret, 32), mload(ret))
            }
        }
    }
}
