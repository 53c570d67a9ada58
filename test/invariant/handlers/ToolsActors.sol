// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {CreditSystem} from "../../../contracts/CreditSystem.sol";
import {RevenueSplitter} from "../../../contracts/RevenueSplitter.sol";
import {TestStablecoin} from "../../../contracts/TestStablecoin.sol";
import {ToolRegistry} from "../../../contracts/ToolRegistry.sol";
import {ToolsStore} from "./ToolsStore.sol";
import {CommonBase} from "forge-std/Base.sol";
import {StdUtils} from "forge-std/StdUtils.sol";

/// @notice The fixed set of accounts the tool handlers act with, shared so that invariants can sum over them.
abstract contract ToolsActors is CommonBase, StdUtils {
    uint256 internal constant ACTORS = 3;

    TestStablecoin public immutable usdc;
    ToolRegistry public immutable registry;
    CreditSystem public immutable credits;
    RevenueSplitter public immutable splitter;
    ToolsStore public immutable store;
    address public immutable admin;

    mapping(bytes4 selector => uint256) public calls;

    struct Deployed {
        TestStablecoin usdc;
        ToolRegistry registry;
        CreditSystem credits;
        RevenueSplitter splitter;
        ToolsStore store;
        address admin;
    }

    constructor(Deployed memory d) {
        usdc = d.usdc;
        registry = d.registry;
        credits = d.credits;
        splitter = d.splitter;
        store = d.store;
        admin = d.admin;
    }

    function user(uint256 i) public pure returns (address) {
        return address(uint160(0xA000 + i % ACTORS));
    }

    function developer(uint256 i) public pure returns (address) {
        return address(uint160(0xB000 + i % ACTORS));
    }

    function payout(uint256 i) public pure returns (address) {
        return address(uint160(0xC000 + i % ACTORS));
    }

    function recipient(uint256 i) public pure returns (address) {
        return address(uint160(0xD000 + i % ACTORS));
    }

    function _tool(uint256 seed) internal view returns (bool found, uint256 toolId) {
        uint256 count = store.toolCount();
        if (count == 0) return (false, 0);
        return (true, store.toolIds(seed % count));
    }
}
