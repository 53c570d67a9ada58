// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IRevenueSplitter} from "../../../contracts/interfaces/IRevenueSplitter.sol";
import {ToolsActors} from "./ToolsActors.sol";

/// @notice Withdraws balances, sets and clears splits, processes batches from an outside distributor (x402
/// revenue) and pauses.
contract RevenueSplitterHandler is ToolsActors {
    address public immutable distributor;

    constructor(ToolsActors.Deployed memory d, address distributor_) ToolsActors(d) {
        distributor = distributor_;
    }

    /// @dev Every account that can hold a splitter balance.
    function account(uint256 i) public view returns (address) {
        i %= 3 * ACTORS + 1;
        if (i == 3 * ACTORS) return splitter.platformTreasury();
        uint256 kind = i / ACTORS;
        if (kind == 0) return payout(i);
        if (kind == 1) return recipient(i);
        return user(i); // payees of outside batches
    }

    function accountCount() external pure returns (uint256) {
        return 3 * ACTORS + 1;
    }

    function withdraw(uint256 accountSeed) external {
        address holder = account(accountSeed);
        uint256 balance = splitter.balanceOf(holder, address(usdc));
        if (balance == 0) return;
        ++calls[this.withdraw.selector];
        vm.prank(holder);
        splitter.withdraw(address(usdc), holder);
        store.recordSplitterWithdrawal(balance);
    }

    function setSplit(uint256 toolSeed, uint8 size, uint256 shareSeed) external {
        (bool found, uint256 toolId) = _tool(toolSeed);
        if (!found) return;
        ++calls[this.setSplit.selector];
        uint256 n = _bound(size, 1, ACTORS);
        address[] memory recipients = new address[](n);
        uint16[] memory shares = new uint16[](n);
        uint256 left = 10_000;
        for (uint256 i; i < n; ++i) {
            recipients[i] = recipient(i);
            uint256 share = i == n - 1 ? left : 1 + uint256(keccak256(abi.encode(shareSeed, i))) % (left - (n - 1 - i));
            shares[i] = uint16(share);
            left -= share;
        }
        vm.prank(registry.developerOf(toolId));
        splitter.setSplit(toolId, recipients, shares);
    }

    function clearSplit(uint256 toolSeed) external {
        (bool found, uint256 toolId) = _tool(toolSeed);
        if (!found) return;
        (address[] memory recipients,) = splitter.getSplit(toolId);
        if (recipients.length == 0) return;
        ++calls[this.clearSplit.selector];
        vm.prank(registry.developerOf(toolId));
        splitter.clearSplit(toolId);
    }

    /// @dev An x402 facilitator with the distributor role attributing revenue it collected.
    function outsideBatch(uint256 seed, uint8 size) external {
        if (splitter.paused()) return;
        ++calls[this.outsideBatch.selector];
        uint256 n = _bound(size, 1, 5);
        IRevenueSplitter.Payment[] memory payments = new IRevenueSplitter.Payment[](n);
        uint256 total;
        for (uint256 i; i < n; ++i) {
            uint256 itemSeed = uint256(keccak256(abi.encode(seed, i)));
            (bool found, uint256 toolId) = _tool(itemSeed);
            payments[i] = IRevenueSplitter.Payment({
                toolId: found ? toolId : 10_000 + i,
                payee: user(itemSeed),
                developerAmount: uint256(keccak256(abi.encode(seed, i))) % 10e6,
                platformAmount: uint256(keccak256(abi.encode(seed, i, 1))) % 1e6
            });
            total += payments[i].developerAmount + payments[i].platformAmount;
        }
        vm.prank(distributor);
        splitter.processBatchPayments(address(usdc), payments);
        store.recordDirectBatch(total);
    }

    function togglePause(uint8 dice) external {
        bool paused = splitter.paused();
        if (!paused && dice % 6 != 0) return;
        ++calls[this.togglePause.selector];
        vm.prank(admin);
        if (paused) splitter.unpause();
        else splitter.pause();
    }
}
