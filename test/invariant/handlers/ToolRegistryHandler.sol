// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IToolRegistry} from "../../../contracts/interfaces/IToolRegistry.sol";
import {ToolsActors} from "./ToolsActors.sol";

/// @notice Registers, reprices, (de)activates, pays for and settles tools, changes the fee and pauses. Every
/// call it makes is legal for the state it checks first, so any revert fails the run.
contract ToolRegistryHandler is ToolsActors {
    constructor(ToolsActors.Deployed memory d) ToolsActors(d) {}

    function registerTool(uint256 developerSeed, uint96 price) external {
        if (registry.paused()) return;
        ++calls[this.registerTool.selector];
        price = uint96(_bound(price, 1, 50e6));
        string memory name = string.concat("tool-", vm.toString(store.toolCount()));
        vm.prank(developer(developerSeed));
        uint256 toolId = registry.registerTool(name, address(usdc), price, payout(developerSeed));
        store.addTool(toolId);
    }

    function setPrice(uint256 toolSeed, uint96 price) external {
        (bool found, uint256 toolId) = _tool(toolSeed);
        if (!found) return;
        ++calls[this.setPrice.selector];
        vm.prank(registry.developerOf(toolId));
        registry.setPrice(toolId, uint96(_bound(price, 1, 50e6)));
    }

    function setActive(uint256 toolSeed, bool active) external {
        (bool found, uint256 toolId) = _tool(toolSeed);
        if (!found) return;
        ++calls[this.setActive.selector];
        vm.prank(registry.developerOf(toolId));
        registry.setActive(toolId, active);
    }

    function payForTool(uint256 userSeed, uint256 toolSeed) external {
        (bool found, uint256 toolId) = _tool(toolSeed);
        if (!found || registry.paused()) return;
        IToolRegistry.Tool memory tool = registry.getTool(toolId);
        if (!tool.active) return;
        ++calls[this.payForTool.selector];
        vm.prank(user(userSeed));
        registry.payForTool(toolId, tool.price);
        store.recordDirectPayment(tool.price);
    }

    function settle(uint256 toolSeed) external {
        (bool found, uint256 first) = _tool(toolSeed);
        if (!found) return;
        (, uint256 second) = _tool(toolSeed / 7);
        uint256[] memory toolIds = new uint256[](first == second ? 1 : 2);
        toolIds[0] = first;
        if (first != second) toolIds[1] = second;
        uint256 pending;
        for (uint256 i; i < toolIds.length; ++i) {
            IToolRegistry.ToolStats memory stats = registry.getToolStats(toolIds[i]);
            pending += uint256(stats.pendingDeveloper) + stats.pendingPlatform;
        }
        if (pending == 0) return;
        ++calls[this.settle.selector];
        registry.settle(address(usdc), toolIds);
        store.recordRegistrySettlement(pending);
    }

    function setPlatformFee(uint16 feeBps) external {
        ++calls[this.setPlatformFee.selector];
        vm.prank(admin);
        registry.setPlatformFee(uint16(_bound(feeBps, 0, 3000)));
    }

    function togglePause(uint8 dice) external {
        bool paused = registry.paused();
        if (!paused && dice % 6 != 0) return;
        ++calls[this.togglePause.selector];
        vm.prank(admin);
        if (paused) registry.unpause();
        else registry.pause();
    }
}
