// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ToolsActors} from "./ToolsActors.sol";

/// @notice Deposits, spends, withdraws and settles credits, funds and defunds the bonus pool, sets bonus policies
/// and pauses.
contract CreditSystemHandler is ToolsActors {
    constructor(ToolsActors.Deployed memory d) ToolsActors(d) {}

    function deposit(uint256 userSeed, uint256 amount) external {
        if (credits.paused()) return;
        ++calls[this.deposit.selector];
        address account = user(userSeed);
        amount = _bound(amount, 1, 20_000e6);
        uint256 poolBefore = credits.bonusPool(address(usdc));
        vm.prank(account);
        credits.deposit(address(usdc), amount);
        store.recordDeposit(amount, poolBefore - credits.bonusPool(address(usdc)));
    }

    function withdraw(uint256 userSeed, uint256 amount) external {
        address account = user(userSeed);
        (uint256 principal,) = credits.creditsOf(account, address(usdc));
        if (principal == 0) return;
        ++calls[this.withdraw.selector];
        amount = _bound(amount, 1, principal);
        uint256 poolBefore = credits.bonusPool(address(usdc));
        vm.prank(account);
        credits.withdraw(address(usdc), amount, account);
        store.recordCreditWithdrawal(amount, credits.bonusPool(address(usdc)) - poolBefore);
    }

    function payWithCredits(uint256 userSeed, uint256 toolSeed) external {
        (bool found, uint256 toolId) = _tool(toolSeed);
        if (!found) return;
        (, uint96 price,,) = credits.toolTerms(toolId);
        address account = user(userSeed);
        (uint256 principal, uint256 bonus) = credits.creditsOf(account, address(usdc));
        if (price == 0 || principal + bonus < price) return;
        ++calls[this.payWithCredits.selector];
        vm.prank(account);
        credits.payWithCredits(toolId, price);
        store.recordSpend(price);
    }

    function settle(uint256 toolSeed) external {
        (bool found, uint256 toolId) = _tool(toolSeed);
        if (!found) return;
        (,,, uint256 pending) = credits.toolTerms(toolId);
        if (pending == 0) return;
        ++calls[this.settle.selector];
        uint256[] memory toolIds = new uint256[](1);
        toolIds[0] = toolId;
        credits.settle(address(usdc), toolIds);
        store.recordCreditSettlement(pending);
    }

    function fundBonusPool(uint256 amount) external {
        if (credits.paused()) return;
        ++calls[this.fundBonusPool.selector];
        amount = _bound(amount, 1, 1000e6);
        vm.prank(admin);
        credits.fundBonusPool(address(usdc), amount);
    }

    function defundBonusPool(uint256 amount) external {
        uint256 pool = credits.bonusPool(address(usdc));
        if (pool == 0) return;
        ++calls[this.defundBonusPool.selector];
        vm.prank(admin);
        credits.defundBonusPool(address(usdc), _bound(amount, 1, pool), admin);
    }

    function setBonusPolicy(uint16 bonusBps, uint256 minDeposit) external {
        ++calls[this.setBonusPolicy.selector];
        vm.prank(admin);
        credits.setBonusPolicy(address(usdc), uint16(_bound(bonusBps, 0, 5000)), _bound(minDeposit, 0, 1000e6));
    }

    function togglePause(uint8 dice) external {
        bool paused = credits.paused();
        if (!paused && dice % 6 != 0) return;
        ++calls[this.togglePause.selector];
        vm.prank(admin);
        if (paused) credits.unpause();
        else credits.pause();
    }
}
