// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice Ghost accounting shared by the tool handlers: what should have happened, to compare with the
/// contracts' own books.
contract ToolsStore {
    uint256 public directPaid;
    uint256 public creditsDeposited;
    uint256 public bonusGranted;
    uint256 public creditsSpent;
    uint256 public creditsWithdrawn;
    uint256 public bonusForfeited;
    uint256 public creditsSettled;
    uint256 public registrySettled;
    uint256 public directBatches;
    uint256 public splitterWithdrawn;

    uint256[] public toolIds;

    function addTool(uint256 toolId) external {
        toolIds.push(toolId);
    }

    function toolCount() external view returns (uint256) {
        return toolIds.length;
    }

    function recordDirectPayment(uint256 amount) external {
        directPaid += amount;
    }

    function recordDeposit(uint256 amount, uint256 bonus) external {
        creditsDeposited += amount;
        bonusGranted += bonus;
    }

    function recordSpend(uint256 amount) external {
        creditsSpent += amount;
    }

    function recordCreditWithdrawal(uint256 amount, uint256 forfeited) external {
        creditsWithdrawn += amount;
        bonusForfeited += forfeited;
    }

    function recordCreditSettlement(uint256 amount) external {
        creditsSettled += amount;
    }

    function recordRegistrySettlement(uint256 amount) external {
        registrySettled += amount;
    }

    function recordDirectBatch(uint256 amount) external {
        directBatches += amount;
    }

    function recordSplitterWithdrawal(uint256 amount) external {
        splitterWithdrawn += amount;
    }
}
