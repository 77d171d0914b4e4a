// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title AIAllocator
/// @notice Treasury contract that pays out the capital allocations computed off-chain by the
///         allonet engine. The reference interface comes from the allonet DESIGN's AIAllocator:
///         `owner()`, `allocatedFunds(address)`, `FundsAllocated(recipient, amount)` and
///         `allocateFunds(recipient, amount)`; everything else here is a safety layer around it.
/// @dev Roles:
///      - owner (intended to be the governance TimelockController): pays without caps, sets the
///        agent, the guardian and the caps, and is the only one who can unpause.
///      - agent (the allonet AI agent's account): pays, but only within the per-epoch cap and the
///        per-recipient-per-epoch cap. Both caps start at 0, so the agent can pay nothing until
///        governance sets them.
///      - guardian: may pause (kill switch) but not unpause.
///      Payouts are in native token when `asset == address(0)`, else in the ERC-20 `asset`.
///      `allocateBatch` records every (plan digest, recipient) it paid, so replaying a plan batch
///      can never pay a recipient twice for the same plan.
contract AIAllocator is Ownable, ReentrancyGuard, Pausable {
    using SafeERC20 for IERC20;

    /// @notice Payout asset; address(0) means the chain's native token.
    address public immutable asset;
    /// @notice Length of a cap epoch, in seconds.
    uint64 public immutable epochLength;

    /// @notice Account allowed to pay within the caps (the AI agent).
    address public agent;
    /// @notice Account allowed to pause payouts (kill switch).
    address public guardian;

    /// @notice Most the agent may pay in total during one epoch.
    uint256 public epochCap;
    /// @notice Most the agent may pay to one recipient during one epoch.
    uint256 public recipientCap;

    /// @notice Total ever paid to each recipient (reference interface).
    mapping(address => uint256) public allocatedFunds;
    /// @notice Amount the agent paid during each epoch.
    mapping(uint256 => uint256) public epochSpent;
    /// @notice Amount the agent paid to each recipient during each epoch.
    mapping(uint256 => mapping(address => uint256)) public recipientSpent;
    /// @notice Amount paid to each recipient under each plan digest by `allocateBatch` (0 = unpaid).
    mapping(bytes32 => mapping(address => uint256)) public planPaid;

    /// @notice Emitted for every payout (reference interface).
    event FundsAllocated(address indexed recipient, uint256 amount);
    /// @notice Emitted when the owner sets the agent.
    event AgentSet(address indexed agent);
    /// @notice Emitted when the owner sets the guardian.
    event GuardianSet(address indexed guardian);
    /// @notice Emitted when the owner sets the agent's caps.
    event CapsSet(uint256 epochCap, uint256 recipientCap);
    /// @notice Emitted once per `allocateBatch` call after all its payouts.
    event BatchPaid(bytes32 indexed planDigest, uint256 indexed batchIndex, uint256 count, uint256 total);

    error ZeroEpochLength();
    error NotAuthorized(address caller);
    error NotGuardian(address caller);
    error LengthMismatch();
    error ZeroPlanDigest();
    error AlreadyPaid(bytes32 planDigest, address recipient);
    error ZeroAmount();
    error ZeroAddress();
    error EpochCapExceeded(uint256 epoch, uint256 requested, uint256 remaining);
    error RecipientCapExceeded(address recipient, uint256 requested, uint256 remaining);
    error NativeTransferFailed(address recipient);

    /// @param initialOwner Owner of the allocator (normally the governance timelock).
    /// @param asset_ Payout asset: an ERC-20 address, or address(0) for the native token.
    /// @param epochLength_ Cap epoch length in seconds; must be > 0.
    constructor(address initialOwner, address asset_, uint64 epochLength_) Ownable(initialOwner) {
        if (epochLength_ == 0) revert ZeroEpochLength();
        asset = asset_;
        epochLength = epochLength_;
    }

    /// @notice Accepts native token so the allocator can hold funds for native payouts.
    receive() external payable {}

    // ---------------------------------------------------------------- admin

    /// @notice Sets the agent account (address(0) removes it). Owner only.
    /// @param agent_ New agent.
    function setAgent(address agent_) external onlyOwner {
        agent = agent_;
        emit AgentSet(agent_);
    }

    /// @notice Sets the guardian account (address(0) removes it). Owner only.
    /// @param guardian_ New guardian.
    function setGuardian(address guardian_) external onlyOwner {
        guardian = guardian_;
        emit GuardianSet(guardian_);
    }

    /// @notice Sets the agent's caps. Owner only. Owner payouts are never capped.
    /// @param epochCap_ Most the agent may pay in total per epoch.
    /// @param recipientCap_ Most the agent may pay to one recipient per epoch.
    function setCaps(uint256 epochCap_, uint256 recipientCap_) external onlyOwner {
        epochCap = epochCap_;
        recipientCap = recipientCap_;
        emit CapsSet(epochCap_, recipientCap_);
    }

    /// @notice Stops all payouts (kill switch). Guardian or owner.
    function pause() external {
        if (msg.sender != guardian && msg.sender != owner()) revert NotGuardian(msg.sender);
        _pause();
    }

    /// @notice Resumes payouts. Owner only.
    function unpause() external onlyOwner {
        _unpause();
    }

    // ---------------------------------------------------------------- payouts

    /// @notice Pays `amount` of the asset to `recipient` (reference interface). Owner or agent;
    ///         the agent is bound by the caps.
    /// @param recipient Who receives the funds.
    /// @param amount How much, in the asset's smallest unit.
    function allocateFunds(address recipient, uint256 amount) external nonReentrant whenNotPaused {
        _checkPayer();
        _pay(recipient, amount);
    }

    /// @notice Pays one batch of an allocation plan. Owner or agent; the agent is bound by the
    ///         caps. Each recipient can be paid at most once per plan digest, so a batch that is
    ///         sent again (or overlaps an earlier batch of the same plan) reverts with
    ///         `AlreadyPaid` instead of paying twice. The whole batch is atomic.
    /// @param planDigest Digest identifying the plan; must not be zero.
    /// @param batchIndex Index of this batch within the plan (only echoed in `BatchPaid`).
    /// @param recipients Recipients of this batch; same length as `amounts`, non-empty.
    /// @param amounts Amount for each recipient; each > 0.
    function allocateBatch(
        bytes32 planDigest,
        uint256 batchIndex,
        address[] calldata recipients,
        uint256[] calldata amounts
    ) external nonReentrant whenNotPaused {
        _checkPayer();
        uint256 n = recipients.length;
        if (n == 0 || n != amounts.length) revert LengthMismatch();
        if (planDigest == bytes32(0)) revert ZeroPlanDigest();
        uint256 total = 0;
        for (uint256 i = 0; i < n; ++i) {
            address r = recipients[i];
            uint256 amount = amounts[i];
            if (planPaid[planDigest][r] != 0) revert AlreadyPaid(planDigest, r);
            if (amount == 0) revert ZeroAmount();
            planPaid[planDigest][r] = amount;
            total += amount;
            _pay(r, amount);
        }
        emit BatchPaid(planDigest, batchIndex, n, total);
    }

    // ---------------------------------------------------------------- views

    /// @notice Index of the current cap epoch: block.timestamp / epochLength.
    function currentEpoch() public view returns (uint256) {
        return block.timestamp / epochLength;
    }

    /// @notice What the agent may still pay in total during the current epoch.
    function remainingEpochAllowance() external view returns (uint256) {
        uint256 spent = epochSpent[currentEpoch()];
        return spent >= epochCap ? 0 : epochCap - spent;
    }

    /// @notice What the agent may still pay to `r` during the current epoch (ignores the epoch
    ///         cap; the agent is bound by the smaller of the two).
    /// @param r Recipient.
    function remainingRecipientAllowance(address r) external view returns (uint256) {
        uint256 spent = recipientSpent[currentEpoch()][r];
        return spent >= recipientCap ? 0 : recipientCap - spent;
    }

    // ---------------------------------------------------------------- internals

    function _checkPayer() private view {
        if (msg.sender != owner() && msg.sender != agent) revert NotAuthorized(msg.sender);
    }

    function _pay(address r, uint256 amount) internal {
        if (r == address(0)) revert ZeroAddress();
        if (msg.sender != owner()) {
            // Only the agent reaches here (see _checkPayer): enforce its caps.
            uint256 e = currentEpoch();
            uint256 spent = epochSpent[e];
            uint256 left = spent >= epochCap ? 0 : epochCap - spent;
            if (amount > left) revert EpochCapExceeded(e, amount, left);
            uint256 rSpent = recipientSpent[e][r];
            uint256 rLeft = rSpent >= recipientCap ? 0 : recipientCap - rSpent;
            if (amount > rLeft) revert RecipientCapExceeded(r, amount, rLeft);
            epochSpent[e] = spent + amount;
            recipientSpent[e][r] = rSpent + amount;
        }
        allocatedFunds[r] += amount;
        emit FundsAllocated(r, amount);
        if (asset == address(0)) {
            // No return data is copied: a recipient can neither bomb the batch with a huge revert payload
            // nor pass its own revert off as one of ours.
            bool ok;
            assembly {
                ok := call(gas(), r, amount, 0, 0, 0, 0)
            }
            if (!ok) revert NativeTransferFailed(r);
        } else {
            IERC20(asset).safeTransfer(r, amount);
        }
    }
}
