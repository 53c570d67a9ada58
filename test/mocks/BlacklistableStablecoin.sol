// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {TestStablecoin} from "../../contracts/TestStablecoin.sol";

/// @notice TestStablecoin with a USDC-style blacklist: a blacklisted account can neither send nor receive.
contract BlacklistableStablecoin is TestStablecoin {
    mapping(address account => bool) public isBlacklisted;

    error Blacklisted(address account);

    constructor(address owner_) TestStablecoin("USDC", "USDC", "2", owner_) {}

    function setBlacklisted(address account, bool blacklisted) external onlyOwner {
        isBlacklisted[account] = blacklisted;
    }

    function _update(address from, address to, uint256 value) internal override {
        if (isBlacklisted[from]) revert Blacklisted(from);
        if (isBlacklisted[to]) revert Blacklisted(to);
        super._update(from, to, value);
    }
}
