// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ICreditSystem} from "./interfaces/ICreditSystem.sol";
import {IRevenueSplitter} from "./interfaces/IRevenueSplitter.sol";
import {IToolRegistry} from "./interfaces/IToolRegistry.sol";
import {ExactTransfers} from "./libraries/ExactTransfers.sol";
import {SplitMath} from "./libraries/SplitMath.sol";
import {AccessControlUpgradeable} from "@openzeppelin/contracts-upgradeable/access/AccessControlUpgradeable.sol";
import {UUPSUpgradeable} from "@openzeppelin/contracts-upgradeable/proxy/utils/UUPSUpgradeable.sol";
import {
    ReentrancyGuardTransientUpgradeable
} from "@openzeppelin/contracts-upgradeable/utils/ReentrancyGuardTransientUpgradeable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/// @title ToolRegistry
/// @notice Pay-per-call tools with a platform fee. A payment is split at once (platform fee rounded down, the
/// developer gets the dust) and held here as the tool's pending revenue; `settle` hands pending revenue of many
/// tools to the RevenueSplitter in one batch, where developers (or their splits) and the platform pull it.
/// @dev The hot path, {payForTool}, reads one config slot (pause flag and fee), one slot of tool terms and one
/// slot of counters that also holds the active flag, which is why pausing is implemented here instead of with
/// PausableUpgradeable. Tokens held == sum of all tools' pending revenue.
contract ToolRegistry is IToolRegistry, UUPSUpgradeable, AccessControlUpgradeable, ReentrancyGuardTransientUpgradeable {
    using SafeERC20 for IERC20;

    /// @notice May pause and unpause.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    /// @notice May change the platform fee.
    bytes32 public constant FEE_MANAGER_ROLE = keccak256("FEE_MANAGER_ROLE");
    /// @notice May upgrade the implementation.
    bytes32 public constant UPGRADER_ROLE = keccak256("UPGRADER_ROLE");

    /// @notice Highest platform fee: 30%.
    uint16 public constant MAX_PLATFORM_FEE_BPS = 3000;
    /// @notice Platform fee the deploy script sets: 20%, an 80/20 split.
    uint16 public constant DEFAULT_PLATFORM_FEE_BPS = 2000;
    /// @notice Longest tool name in bytes.
    uint256 public constant MAX_NAME_LENGTH = 64;

    struct Config {
        address splitter;
        uint16 platformFeeBps;
        bool paused;
    }

    struct Terms {
        address token;
        uint96 price;
    }

    /// @dev Counters and pending revenue share one slot with the active flag: {payForTool} reads and writes it
    /// once. Unsettled revenue beyond 2^96 - 1 units per share makes payments revert until someone settles.
    struct Counters {
        uint48 calls;
        uint96 pendingDeveloper;
        uint96 pendingPlatform;
        bool active;
    }

    struct ToolRecord {
        Terms terms;
        Counters counters;
        address developer;
        address payout;
        uint256 settledRevenue;
        string name;
    }

    /// @custom:storage-location erc7201:x402.storage.ToolRegistry
    struct ToolRegistryStorage {
        Config config;
        address creditSystem;
        uint256 toolCount;
        mapping(uint256 toolId => ToolRecord) tools;
        mapping(bytes32 nameHash => uint256 toolId) toolIdByName;
        mapping(address developer => uint256[] toolIds) toolsByDeveloper;
        mapping(address token => bool) allowedTokens;
    }

    // keccak256(abi.encode(uint256(keccak256("x402.storage.ToolRegistry")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant TOOL_REGISTRY_STORAGE_LOCATION =
        0xbb6080dda007374859edb02ed45cdc3b99ef9e5a468e79db6bb0ca1888130100;

    /// @custom:oz-upgrades-unsafe-allow constructor
    constructor() {
        _disableInitializers();
    }

    /// @notice Initializes the proxy; called from the ERC1967Proxy constructor.
    /// @param admin Gets DEFAULT_ADMIN_ROLE, PAUSER_ROLE, FEE_MANAGER_ROLE and UPGRADER_ROLE.
    /// @param splitter_ The RevenueSplitter settlements go to (this registry needs its DISTRIBUTOR_ROLE).
    /// @param feeBps Initial platform fee.
    /// @param tokens Initial token allowlist.
    function initialize(address admin, address splitter_, uint16 feeBps, address[] calldata tokens)
        external
        initializer
    {
        if (admin == address(0) || splitter_ == address(0)) revert ToolRegistryZeroAddress();
        __AccessControl_init();
        __ReentrancyGuardTransient_init();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        _grantRole(FEE_MANAGER_ROLE, admin);
        _grantRole(UPGRADER_ROLE, admin);
        _getToolRegistryStorage().config.splitter = splitter_;
        emit SplitterSet(splitter_);
        _setPlatformFee(feeBps);
        for (uint256 i; i < tokens.length; ++i) {
            _setTokenAllowed(tokens[i], true);
        }
    }

    modifier whenNotPaused() {
        if (_getToolRegistryStorage().config.paused) revert ToolRegistryEnforcedPause();
        _;
    }

    modifier onlyDeveloper(uint256 toolId) {
        address developer = _getTool(toolId).developer;
        if (msg.sender != developer) revert ToolRegistryNotToolDeveloper(toolId, msg.sender);
        _;
    }

    /*//////////////////////////////////////////////////////////////
                                 TOOLS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IToolRegistry
    function registerTool(string calldata name, address token, uint96 price, address payout)
        external
        whenNotPaused
        returns (uint256 toolId)
    {
        _requireValidName(name);
        ToolRegistryStorage storage $ = _getToolRegistryStorage();
        bytes32 nameHash = keccak256(bytes(name));
        uint256 existing = $.toolIdByName[nameHash];
        if (existing != 0) revert ToolRegistryNameTaken(name, $.tools[existing].developer);
        if (!$.allowedTokens[token]) revert ToolRegistryTokenNotAllowed(token);
        if (price == 0) revert ToolRegistryZeroPrice();
        if (payout == address(0)) revert ToolRegistryZeroAddress();

        toolId = ++$.toolCount;
        ToolRecord storage tool = $.tools[toolId];
        tool.terms = Terms(token, price);
        tool.counters.active = true;
        tool.developer = msg.sender;
        tool.payout = payout;
        tool.name = name;
        $.toolIdByName[nameHash] = toolId;
        $.toolsByDeveloper[msg.sender].push(toolId);
        emit ToolRegistered(toolId, msg.sender, name, token, price, payout);
        _syncCreditTerms($, toolId, tool);
    }

    /// @inheritdoc IToolRegistry
    function setPrice(uint256 toolId, uint96 price) external onlyDeveloper(toolId) {
        if (price == 0) revert ToolRegistryZeroPrice();
        ToolRegistryStorage storage $ = _getToolRegistryStorage();
        ToolRecord storage tool = $.tools[toolId];
        uint96 previous = tool.terms.price;
        tool.terms.price = price;
        emit ToolPriceUpdated(toolId, previous, price);
        _syncCreditTerms($, toolId, tool);
    }

    /// @inheritdoc IToolRegistry
    function setPayout(uint256 toolId, address payout) external onlyDeveloper(toolId) {
        if (payout == address(0)) revert ToolRegistryZeroAddress();
        ToolRecord storage tool = _getToolRegistryStorage().tools[toolId];
        address previous = tool.payout;
        tool.payout = payout;
        emit ToolPayoutUpdated(toolId, previous, payout);
    }

    /// @inheritdoc IToolRegistry
    function setActive(uint256 toolId, bool active) external onlyDeveloper(toolId) {
        ToolRegistryStorage storage $ = _getToolRegistryStorage();
        ToolRecord storage tool = $.tools[toolId];
        tool.counters.active = active;
        emit ToolActiveUpdated(toolId, active);
        _syncCreditTerms($, toolId, tool);
    }

    /*//////////////////////////////////////////////////////////////
                                PAYMENTS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IToolRegistry
    function payForTool(uint256 toolId, uint256 maxPrice) external nonReentrant {
        ToolRegistryStorage storage $ = _getToolRegistryStorage();
        Config memory config = $.config;
        if (config.paused) revert ToolRegistryEnforcedPause();
        ToolRecord storage tool = $.tools[toolId];
        Terms memory terms = tool.terms;
        if (terms.token == address(0)) revert ToolRegistryToolNotFound(toolId);
        Counters memory counters = tool.counters;
        if (!counters.active) revert ToolRegistryToolInactive(toolId);
        uint256 price = terms.price;
        if (price > maxPrice) revert ToolRegistryPriceAboveMax(toolId, price, maxPrice);

        (uint256 developerShare, uint256 platformShare) = SplitMath.splitFee(price, config.platformFeeBps);
        // One SSTORE: calls, both pending shares and the active flag live in this slot. Checked narrowing: a
        // tool whose unsettled revenue no longer fits must be settled first, never silently truncated.
        tool.counters = Counters({
            calls: counters.calls + 1,
            pendingDeveloper: SafeCast.toUint96(counters.pendingDeveloper + developerShare),
            pendingPlatform: SafeCast.toUint96(counters.pendingPlatform + platformShare),
            active: true
        });
        emit ToolPaid(toolId, msg.sender, price, developerShare, platformShare);
        ExactTransfers.pullExact(terms.token, msg.sender, price);
    }

    /// @inheritdoc IToolRegistry
    function recordCreditPayments(address token, CreditPayment[] calldata payments) external nonReentrant {
        ToolRegistryStorage storage $ = _getToolRegistryStorage();
        if (msg.sender != $.creditSystem) revert ToolRegistryNotCreditSystem(msg.sender);
        uint256 count = payments.length;
        if (count == 0) revert ToolRegistryEmptyBatch();
        uint256 total;
        uint256 totalCalls;
        for (uint256 i; i < count; ++i) {
            CreditPayment calldata payment = payments[i];
            _accrueCredit(token, payment);
            total += payment.developerAmount + payment.platformAmount;
            totalCalls += payment.calls;
        }
        emit CreditPaymentsRecorded(token, count, totalCalls, total);
        ExactTransfers.pullExact(token, msg.sender, total);
    }

    /// @inheritdoc IToolRegistry
    function settle(address token, uint256[] calldata toolIds) external nonReentrant {
        uint256 count = toolIds.length;
        if (count == 0) revert ToolRegistryEmptyBatch();
        IRevenueSplitter.Payment[] memory payments = new IRevenueSplitter.Payment[](count);
        uint256 settled;
        uint256 total;
        for (uint256 i; i < count; ++i) {
            uint256 toolId = toolIds[i];
            ToolRecord storage tool = _getTool(toolId);
            if (tool.terms.token != token) revert ToolRegistryTokenMismatch(toolId, token);
            Counters memory counters = tool.counters;
            uint256 developerAmount = counters.pendingDeveloper;
            uint256 platformAmount = counters.pendingPlatform;
            if (developerAmount + platformAmount == 0) continue;
            tool.counters =
                Counters({calls: counters.calls, pendingDeveloper: 0, pendingPlatform: 0, active: counters.active});
            tool.settledRevenue += developerAmount + platformAmount;
            address payout = tool.payout;
            payments[settled++] = IRevenueSplitter.Payment(toolId, payout, developerAmount, platformAmount);
            total += developerAmount + platformAmount;
            emit ToolSettled(toolId, payout, developerAmount, platformAmount);
        }
        if (settled == 0) revert ToolRegistryNothingToSettle();
        assembly ("memory-safe") {
            // Drop the tools that had nothing pending.
            mstore(payments, settled)
        }
        address splitter_ = _getToolRegistryStorage().config.splitter;
        IERC20(token).forceApprove(splitter_, total);
        IRevenueSplitter(splitter_).processBatchPayments(token, payments);
    }

    /// @inheritdoc IToolRegistry
    function syncCreditTerms(uint256[] calldata toolIds) external {
        ToolRegistryStorage storage $ = _getToolRegistryStorage();
        if ($.creditSystem == address(0)) revert ToolRegistryZeroAddress();
        if (toolIds.length == 0) revert ToolRegistryEmptyBatch();
        for (uint256 i; i < toolIds.length; ++i) {
            _syncCreditTerms($, toolIds[i], _getTool(toolIds[i]));
        }
    }

    /*//////////////////////////////////////////////////////////////
                                 ADMIN
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IToolRegistry
    function setPlatformFee(uint16 feeBps) external onlyRole(FEE_MANAGER_ROLE) {
        _setPlatformFee(feeBps);
    }

    /// @inheritdoc IToolRegistry
    function setTokenAllowed(address token, bool allowed) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setTokenAllowed(token, allowed);
    }

    /// @inheritdoc IToolRegistry
    function setCreditSystem(address creditSystem_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (creditSystem_ == address(0)) revert ToolRegistryZeroAddress();
        ToolRegistryStorage storage $ = _getToolRegistryStorage();
        // Spent credits are owed to developers through this link; re-pointing it could strand them.
        if ($.creditSystem != address(0)) revert ToolRegistryCreditSystemAlreadySet($.creditSystem);
        $.creditSystem = creditSystem_;
        emit CreditSystemSet(creditSystem_);
        ICreditSystem(creditSystem_).syncPlatformFee();
    }

    /// @inheritdoc IToolRegistry
    function pause() external onlyRole(PAUSER_ROLE) whenNotPaused {
        _getToolRegistryStorage().config.paused = true;
        emit Paused(msg.sender);
    }

    /// @inheritdoc IToolRegistry
    function unpause() external onlyRole(PAUSER_ROLE) {
        Config storage config = _getToolRegistryStorage().config;
        if (!config.paused) revert ToolRegistryExpectedPause();
        config.paused = false;
        emit Unpaused(msg.sender);
    }

    /*//////////////////////////////////////////////////////////////
                                 VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @inheritdoc IToolRegistry
    function getTool(uint256 toolId) public view returns (Tool memory) {
        ToolRecord storage tool = _getTool(toolId);
        return Tool({
            name: tool.name,
            developer: tool.developer,
            token: tool.terms.token,
            payout: tool.payout,
            price: tool.terms.price,
            active: tool.counters.active
        });
    }

    /// @inheritdoc IToolRegistry
    function getToolStats(uint256 toolId) external view returns (ToolStats memory) {
        ToolRecord storage tool = _getTool(toolId);
        Counters memory counters = tool.counters;
        return ToolStats({
            calls: counters.calls,
            revenue: tool.settledRevenue + counters.pendingDeveloper + counters.pendingPlatform,
            pendingDeveloper: counters.pendingDeveloper,
            pendingPlatform: counters.pendingPlatform
        });
    }

    /// @inheritdoc IToolRegistry
    function toolIdOf(string calldata name) external view returns (uint256) {
        return _getToolRegistryStorage().toolIdByName[keccak256(bytes(name))];
    }

    /// @inheritdoc IToolRegistry
    function developerOf(uint256 toolId) external view returns (address) {
        return _getTool(toolId).developer;
    }

    /// @inheritdoc IToolRegistry
    function toolCount() external view returns (uint256) {
        return _getToolRegistryStorage().toolCount;
    }

    /// @inheritdoc IToolRegistry
    function getTools(uint256 offset, uint256 limit) external view returns (uint256[] memory ids, Tool[] memory tools) {
        uint256 total = _getToolRegistryStorage().toolCount;
        uint256 count = _pageLength(total, offset, limit);
        ids = new uint256[](count);
        tools = new Tool[](count);
        for (uint256 i; i < count; ++i) {
            ids[i] = offset + i + 1;
            tools[i] = getTool(ids[i]);
        }
    }

    /// @inheritdoc IToolRegistry
    function getToolsByDeveloper(address developer, uint256 offset, uint256 limit)
        external
        view
        returns (uint256[] memory ids, Tool[] memory tools)
    {
        uint256[] storage owned = _getToolRegistryStorage().toolsByDeveloper[developer];
        uint256 count = _pageLength(owned.length, offset, limit);
        ids = new uint256[](count);
        tools = new Tool[](count);
        for (uint256 i; i < count; ++i) {
            ids[i] = owned[offset + i];
            tools[i] = getTool(ids[i]);
        }
    }

    /// @inheritdoc IToolRegistry
    function platformFeeBps() external view returns (uint16) {
        return _getToolRegistryStorage().config.platformFeeBps;
    }

    /// @inheritdoc IToolRegistry
    function isTokenAllowed(address token) external view returns (bool) {
        return _getToolRegistryStorage().allowedTokens[token];
    }

    /// @inheritdoc IToolRegistry
    function paused() external view returns (bool) {
        return _getToolRegistryStorage().config.paused;
    }

    /// @inheritdoc IToolRegistry
    function splitter() external view returns (address) {
        return _getToolRegistryStorage().config.splitter;
    }

    /// @inheritdoc IToolRegistry
    function creditSystem() external view returns (address) {
        return _getToolRegistryStorage().creditSystem;
    }

    /*//////////////////////////////////////////////////////////////
                                INTERNALS
    //////////////////////////////////////////////////////////////*/

    /// @dev Adds settled credit spends to a tool: its counters, and the shares they were split into when spent.
    function _accrueCredit(address token, CreditPayment calldata payment) private {
        ToolRecord storage tool = _getTool(payment.toolId);
        if (tool.terms.token != token) revert ToolRegistryTokenMismatch(payment.toolId, token);
        Counters memory counters = tool.counters;
        tool.counters = Counters({
            calls: SafeCast.toUint48(counters.calls + payment.calls),
            pendingDeveloper: SafeCast.toUint96(counters.pendingDeveloper + payment.developerAmount),
            pendingPlatform: SafeCast.toUint96(counters.pendingPlatform + payment.platformAmount),
            active: counters.active
        });
    }

    /// @dev Keeps the CreditSystem's copy of a tool's terms exact: price 0 there means "not payable".
    function _syncCreditTerms(ToolRegistryStorage storage $, uint256 toolId, ToolRecord storage tool) private {
        address creditSystem_ = $.creditSystem;
        if (creditSystem_ == address(0)) return;
        uint96 price = tool.counters.active ? tool.terms.price : 0;
        ICreditSystem(creditSystem_).syncTool(toolId, tool.terms.token, price);
    }

    function _getTool(uint256 toolId) private view returns (ToolRecord storage tool) {
        tool = _getToolRegistryStorage().tools[toolId];
        if (tool.terms.token == address(0)) revert ToolRegistryToolNotFound(toolId);
    }

    function _requireValidName(string calldata name) private pure {
        bytes calldata raw = bytes(name);
        uint256 length = raw.length;
        if (length == 0 || length > MAX_NAME_LENGTH || raw[0] == "-" || raw[length - 1] == "-") {
            revert ToolRegistryInvalidName(name);
        }
        for (uint256 i; i < length; ++i) {
            bytes1 c = raw[i];
            bool valid = (c >= "a" && c <= "z") || (c >= "0" && c <= "9") || c == "-";
            if (!valid) revert ToolRegistryInvalidName(name);
        }
    }

    function _setPlatformFee(uint16 feeBps) private {
        if (feeBps > MAX_PLATFORM_FEE_BPS) revert ToolRegistryFeeTooHigh(feeBps, MAX_PLATFORM_FEE_BPS);
        Config storage config = _getToolRegistryStorage().config;
        uint16 previous = config.platformFeeBps;
        config.platformFeeBps = feeBps;
        emit PlatformFeeUpdated(previous, feeBps);
        // Credit spends are split at the CreditSystem's copy of the fee when they are made.
        address creditSystem_ = _getToolRegistryStorage().creditSystem;
        if (creditSystem_ != address(0)) ICreditSystem(creditSystem_).syncPlatformFee();
    }

    function _setTokenAllowed(address token, bool allowed) private {
        if (token == address(0)) revert ToolRegistryZeroAddress();
        if (allowed && token.code.length == 0) revert ToolRegistryTokenHasNoCode(token);
        _getToolRegistryStorage().allowedTokens[token] = allowed;
        emit TokenAllowanceUpdated(token, allowed);
    }

    function _pageLength(uint256 total, uint256 offset, uint256 limit) private pure returns (uint256) {
        if (offset >= total) return 0;
        uint256 remaining = total - offset;
        return remaining < limit ? remaining : limit;
    }

    function _authorizeUpgrade(address) internal override onlyRole(UPGRADER_ROLE) {}

    function _getToolRegistryStorage() private pure returns (ToolRegistryStorage storage $) {
        assembly ("memory-safe") {
            $.slot := TOOL_REGISTRY_STORAGE_LOCATION
        }
    }
}
