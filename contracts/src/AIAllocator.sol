// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title AIAllocator
/// @notice Treasury contract that pays the capital allocations computed off-chain by the allonet
///         engine, and only those that governance approved. The reference interface comes from the
///         allonet DESIGN's AIAllocator: `owner()`, `allocatedFunds(address)`,
///         `FundsAllocated(recipient, amount)` and an owner-only `allocateFunds(recipient, amount)`;
///         everything else here makes "the AI proposes; governance disposes" hold on chain.
/// @dev Plans. A plan is a list of batches of (recipient, amount) pairs. Its commitment is the root
///      of a Merkle tree over the batches (OpenZeppelin `MerkleProof`, sorted-pair keccak-256), the
///      leaf of batch i being keccak256(keccak256(abi.encode(i, recipients, amounts))) (hashed twice,
///      as OpenZeppelin's StandardMerkleTree does, so no inner node can pass for a leaf). A plan's id
///      binds the commitment to this chain, this allocator and this asset:
///        id = keccak256(abi.encode(block.chainid, address(this), asset, root, total, batches))
///      so an approval made here pays nothing on another chain or through another allocator.
///      A plan becomes payable in one of two ways:
///      - the owner (the governance timelock) calls `approvePlan` after a vote: payable at once, no
///        caps apply (the vote approved the exact pairs);
///      - the agent calls `queuePlan` under the standing authority governance set: the plan's total
///        must fit the epoch cap, it becomes payable `vetoDelay` (at least `MIN_VETO_DELAY`) seconds
///        later and stays payable for one epoch after that (so the agent cannot stockpile queued plans
///        and pay them in one burst), every recipient must be in the recipient registry and each
///        payment within the per-recipient epoch cap; during the delay the guardian or the owner can
///        cancel it. Governance approving the same plan turns it into an approved one in place (its
///        paid batches stay paid), so queuing a plan cannot block its approval.
///      Either way the agent (or the owner) pays with `payBatch`, which proves each batch against the
///      root, pays it at most once (a bitmap per plan) and never beyond the plan's total.
///      Roles:
///      - owner (the TimelockController): approves and cancels plans, sets the agent, guardian, caps,
///        registry and veto delay, unpauses, and may pay directly with `allocateFunds`;
///      - agent (the allonet agent's key): queues plans within the caps and pays approved or matured
///        plans; it can change nothing;
///      - guardian: pauses (kill switch) and cancels plans the agent queued; it cannot unpause.
///      Caps and the veto delay start at 0 and the registry empty, so a fresh agent can move nothing
///      until a governance proposal sets them. Payouts are in the native token when
///      `asset == address(0)`, else in the ERC-20 `asset`.
contract AIAllocator is Ownable, ReentrancyGuardTransient, Pausable {
    using SafeERC20 for IERC20;

    /// @notice Where a plan stands.
    enum PlanStatus {
        None,
        Approved,
        Queued,
        Cancelled
    }

    /// @notice One plan, in one storage slot.
    /// @param total Most the plan may pay (its committed total).
    /// @param paid What it has paid so far.
    /// @param payableAt When it may start paying (queued plans: queue time + veto delay).
    /// @param batches Number of batches in its tree.
    /// @param status Approved, Queued or Cancelled.
    struct Plan {
        uint96 total;
        uint96 paid;
        uint40 payableAt;
        uint16 batches;
        PlanStatus status;
    }

    /// @notice Payout asset; address(0) means the chain's native token.
    address public immutable asset;
    /// @notice Length of a cap epoch, in seconds.
    uint64 public immutable epochLength;

    /// @notice Account that queues and pays plans (the AI agent).
    address public agent;
    /// @notice Account that may pause and cancel queued plans (kill switch).
    address public guardian;
    /// @notice Most the agent may queue in total during one epoch.
    uint256 public epochCap;
    /// @notice Most the agent may pay to one recipient during one epoch under queued plans.
    uint256 public recipientCap;
    /// @notice Seconds between the agent queuing a plan and the plan becoming payable.
    uint64 public vetoDelay;

    /// @notice Total ever paid to each recipient (reference interface).
    mapping(address => uint256) public allocatedFunds;
    /// @notice Total the agent queued during each epoch.
    mapping(uint256 => uint256) public epochQueued;
    /// @notice Plans by id.
    mapping(bytes32 => Plan) public plans;
    /// @dev Paid batches of each plan, 256 to a word.
    mapping(bytes32 => mapping(uint256 => uint256)) private _paidBatches;
    /// @dev Registry and per-recipient spending, packed in one word: bit 255 = in the registry,
    ///      bits 192..254 = the epoch of the last queued-plan payment, bits 0..191 = what the recipient
    ///      received under queued plans in that epoch.
    mapping(address => uint256) private _recipients;

    /// @notice Shortest veto window a queued plan can have: the guardian always gets this long to cancel.
    uint64 public constant MIN_VETO_DELAY = 1 hours;

    uint256 private constant REGISTERED = 1 << 255;
    uint256 private constant SPENT_MASK = (1 << 192) - 1;

    /// @notice Emitted for every payout (reference interface).
    event FundsAllocated(address indexed recipient, uint256 amount);
    /// @notice Emitted when the owner sets the agent.
    event AgentSet(address indexed agent);
    /// @notice Emitted when the owner sets the guardian.
    event GuardianSet(address indexed guardian);
    /// @notice Emitted when the owner sets the agent's caps.
    event CapsSet(uint256 epochCap, uint256 recipientCap);
    /// @notice Emitted when the owner sets the veto delay.
    event VetoDelaySet(uint64 vetoDelay);
    /// @notice Emitted for each recipient the owner adds to (true) or removes from the registry.
    event RecipientSet(address indexed recipient, bool allowed);
    /// @notice Emitted when the owner approves a plan.
    event PlanApproved(bytes32 indexed planId, bytes32 root, uint256 total, uint256 batches);
    /// @notice Emitted when the agent queues a plan under the standing caps.
    event PlanQueued(bytes32 indexed planId, bytes32 root, uint256 total, uint256 batches, uint256 payableAt);
    /// @notice Emitted when the guardian or the owner cancels a plan.
    event PlanCancelled(bytes32 indexed planId, address indexed by);
    /// @notice Emitted once per `payBatch` call after all its payouts.
    event BatchPaid(bytes32 indexed planId, uint256 indexed batchIndex, uint256 count, uint256 total);

    error ZeroEpochLength();
    error NotAgent(address caller);
    error NotPayer(address caller);
    error NotGuardian(address caller);
    error ZeroAddress();
    error ZeroAmount();
    error LengthMismatch();
    error BadPlan();
    error PlanExists(bytes32 planId);
    error PlanNotPayable(bytes32 planId, PlanStatus status);
    error PlanNotMature(bytes32 planId, uint256 payableAt);
    error PlanExpired(bytes32 planId, uint256 expiredAt);
    error VetoDelayTooShort(uint64 vetoDelay, uint64 minimum);
    error RenounceDisabled();
    error NotCancellable(bytes32 planId, PlanStatus status);
    error BatchOutOfRange(uint256 batchIndex, uint256 batches);
    error BatchAlreadyPaid(bytes32 planId, uint256 batchIndex);
    error InvalidProof(bytes32 planId, uint256 batchIndex);
    error PlanTotalExceeded(bytes32 planId, uint256 requested, uint256 remaining);
    error EpochCapExceeded(uint256 epoch, uint256 requested, uint256 remaining);
    error RecipientCapExceeded(address recipient, uint256 requested, uint256 remaining);
    error NotInRegistry(address recipient);
    error NativeTransferFailed(address recipient);

    /// @param initialOwner Owner of the allocator: the governance timelock (never the deployer).
    /// @param asset_ Payout asset: an ERC-20 address, or address(0) for the native token.
    /// @param epochLength_ Cap epoch length in seconds; must be > 0.
    /// @param agent_ The agent's account.
    /// @param guardian_ The guardian's account.
    constructor(address initialOwner, address asset_, uint64 epochLength_, address agent_, address guardian_)
        Ownable(initialOwner)
    {
        if (epochLength_ == 0) revert ZeroEpochLength();
        asset = asset_;
        epochLength = epochLength_;
        agent = agent_;
        guardian = guardian_;
        emit AgentSet(agent_);
        emit GuardianSet(guardian_);
    }

    /// @notice Accepts native token so the allocator can hold funds for native payouts.
    receive() external payable {}

    // ---------------------------------------------------------------- governance (owner)

    /// @notice Sets the agent account (address(0) removes it). Owner only.
    function setAgent(address agent_) external onlyOwner {
        agent = agent_;
        emit AgentSet(agent_);
    }

    /// @notice Sets the guardian account (address(0) removes it). Owner only.
    function setGuardian(address guardian_) external onlyOwner {
        guardian = guardian_;
        emit GuardianSet(guardian_);
    }

    /// @notice Sets the agent's standing caps. Owner only.
    /// @param epochCap_ Most the agent may queue in total per epoch.
    /// @param recipientCap_ Most one recipient may receive per epoch under queued plans.
    function setCaps(uint256 epochCap_, uint256 recipientCap_) external onlyOwner {
        epochCap = epochCap_;
        recipientCap = recipientCap_;
        emit CapsSet(epochCap_, recipientCap_);
    }

    /// @notice Sets the veto delay of queued plans. Owner only.
    function setVetoDelay(uint64 vetoDelay_) external onlyOwner {
        vetoDelay = vetoDelay_;
        emit VetoDelaySet(vetoDelay_);
    }

    /// @notice Adds recipients to (or removes them from) the registry that queued plans may pay.
    ///         Owner only.
    function setRecipients(address[] calldata recipients, bool allowed) external onlyOwner {
        for (uint256 i = 0; i < recipients.length; ++i) {
            address r = recipients[i];
            if (r == address(0)) revert ZeroAddress();
            uint256 w = _recipients[r];
            _recipients[r] = allowed ? w | REGISTERED : w & ~REGISTERED;
            emit RecipientSet(r, allowed);
        }
    }

    /// @notice Approves a plan: its exact pairs become payable by the agent, each batch once, on
    ///         this chain and allocator only. Owner only (a passed, timelocked proposal). A plan the agent
    ///         queued, or one that was cancelled, becomes approved in place: batches it paid stay paid.
    /// @param root Merkle root over the plan's batches.
    /// @param total Sum of all the plan's amounts.
    /// @param batches Number of batches.
    function approvePlan(bytes32 root, uint256 total, uint256 batches) external onlyOwner {
        _checkPlan(root, total, batches);
        bytes32 id = planId(root, total, batches);
        Plan storage p = plans[id];
        if (p.status == PlanStatus.Approved) revert PlanExists(id);
        p.total = uint96(total);
        p.payableAt = uint40(block.timestamp);
        p.batches = uint16(batches);
        p.status = PlanStatus.Approved;
        emit PlanApproved(id, root, total, batches);
    }

    /// @notice Disabled: an allocator without an owner could never be unpaused.
    function renounceOwnership() public view override onlyOwner {
        revert RenounceDisabled();
    }

    /// @notice Stops all payouts and queuing (kill switch). Guardian or owner.
    function pause() external {
        if (msg.sender != guardian && msg.sender != owner()) revert NotGuardian(msg.sender);
        _pause();
    }

    /// @notice Resumes payouts. Owner only.
    function unpause() external onlyOwner {
        _unpause();
    }

    /// @notice Cancels a plan so that nothing more of it can be paid. The owner cancels any plan;
    ///         the guardian cancels plans the agent queued.
    function cancelPlan(bytes32 id) external {
        Plan storage p = plans[id];
        PlanStatus s = p.status;
        bool byOwner = msg.sender == owner();
        if (!byOwner && msg.sender != guardian) revert NotGuardian(msg.sender);
        if (s == PlanStatus.Queued || (byOwner && s == PlanStatus.Approved)) {
            p.status = PlanStatus.Cancelled;
            emit PlanCancelled(id, msg.sender);
        } else {
            revert NotCancellable(id, s);
        }
    }

    // ---------------------------------------------------------------- agent

    /// @notice Queues a plan under the standing authority: its total counts against this epoch's
    ///         cap at once, and it becomes payable after the veto delay. Agent only.
    function queuePlan(bytes32 root, uint256 total, uint256 batches) external whenNotPaused returns (bytes32 id) {
        if (msg.sender != agent) revert NotAgent(msg.sender);
        if (vetoDelay < MIN_VETO_DELAY) revert VetoDelayTooShort(vetoDelay, MIN_VETO_DELAY);
        _checkPlan(root, total, batches);
        id = planId(root, total, batches);
        if (plans[id].status != PlanStatus.None) revert PlanExists(id);
        uint256 e = currentEpoch();
        uint256 used = epochQueued[e];
        uint256 left = used >= epochCap ? 0 : epochCap - used;
        if (total > left) revert EpochCapExceeded(e, total, left);
        epochQueued[e] = used + total;
        uint256 due = block.timestamp + vetoDelay;
        if (due > type(uint40).max) revert BadPlan();
        plans[id] = Plan(uint96(total), 0, uint40(due), uint16(batches), PlanStatus.Queued);
        emit PlanQueued(id, root, total, batches, due);
    }

    // ---------------------------------------------------------------- payouts

    /// @notice Pays `amount` of the asset to `recipient` (reference interface). Owner only: a direct
    ///         payment is itself a governance act.
    function allocateFunds(address recipient, uint256 amount) external onlyOwner nonReentrant whenNotPaused {
        if (amount == 0) revert ZeroAmount();
        _pay(recipient, amount);
    }

    /// @notice Pays one batch of an approved plan, or of a queued plan whose veto delay has passed.
    ///         Agent or owner. The batch must be the one committed at `batchIndex` (proved against
    ///         the root); each batch pays once; the plan never pays beyond its total. Atomic.
    /// @param root The plan's Merkle root.
    /// @param total The plan's total.
    /// @param batches The plan's number of batches.
    /// @param batchIndex Which batch this is.
    /// @param recipients The batch's recipients.
    /// @param amounts The batch's amounts.
    /// @param proof Merkle proof of the batch's leaf.
    function payBatch(
        bytes32 root,
        uint256 total,
        uint256 batches,
        uint256 batchIndex,
        address[] calldata recipients,
        uint256[] calldata amounts,
        bytes32[] calldata proof
    ) external nonReentrant whenNotPaused {
        if (msg.sender != agent && msg.sender != owner()) revert NotPayer(msg.sender);
        bytes32 id = planId(root, total, batches);
        uint256 n = recipients.length;
        if (n == 0 || n != amounts.length) revert LengthMismatch();
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(batchIndex, recipients, amounts))));
        _claimBatch(id, root, batches, batchIndex, leaf, proof);
        uint256 sum = _payAll(id, recipients, amounts);
        emit BatchPaid(id, batchIndex, n, sum);
    }

    // ---------------------------------------------------------------- views

    /// @notice The id of a plan on this chain, allocator and asset.
    function planId(bytes32 root, uint256 total, uint256 batches) public view returns (bytes32) {
        return keccak256(abi.encode(block.chainid, address(this), asset, root, total, batches));
    }

    /// @notice Whether batch `batchIndex` of plan `id` has been paid.
    function batchPaid(bytes32 id, uint256 batchIndex) external view returns (bool) {
        return _paidBatches[id][batchIndex >> 8] & (1 << (batchIndex & 255)) != 0;
    }

    /// @notice Whether `r` is in the recipient registry.
    function isRecipient(address r) external view returns (bool) {
        return _recipients[r] & REGISTERED != 0;
    }

    /// @notice Index of the current cap epoch: block.timestamp / epochLength.
    function currentEpoch() public view returns (uint256) {
        return block.timestamp / epochLength;
    }

    /// @notice What the agent may still queue in total during the current epoch.
    function remainingEpochAllowance() external view returns (uint256) {
        uint256 used = epochQueued[currentEpoch()];
        return used >= epochCap ? 0 : epochCap - used;
    }

    /// @notice What `r` may still receive under queued plans during the current epoch.
    function remainingRecipientAllowance(address r) external view returns (uint256) {
        uint256 w = _recipients[r];
        uint256 spent = ((w & ~REGISTERED) >> 192) == currentEpoch() ? w & SPENT_MASK : 0;
        return spent >= recipientCap ? 0 : recipientCap - spent;
    }

    // ---------------------------------------------------------------- internals

    function _checkPlan(bytes32 root, uint256 total, uint256 batches) private pure {
        if (root == bytes32(0) || total == 0 || batches == 0 || batches > type(uint16).max) revert BadPlan();
        if (total > type(uint96).max) revert BadPlan();
    }

    /// @dev Checks that plan `id` may pay batch `batchIndex` now, proves the batch, and marks it paid.
    function _claimBatch(
        bytes32 id,
        bytes32 root,
        uint256 batches,
        uint256 batchIndex,
        bytes32 leaf,
        bytes32[] calldata proof
    ) private {
        Plan storage p = plans[id];
        PlanStatus s = p.status;
        if (s != PlanStatus.Approved && s != PlanStatus.Queued) revert PlanNotPayable(id, s);
        if (block.timestamp < p.payableAt) revert PlanNotMature(id, p.payableAt);
        if (s == PlanStatus.Queued && block.timestamp > uint256(p.payableAt) + epochLength) {
            revert PlanExpired(id, uint256(p.payableAt) + epochLength);
        }
        if (batchIndex >= batches) revert BatchOutOfRange(batchIndex, batches);
        uint256 word = _paidBatches[id][batchIndex >> 8];
        uint256 bit = 1 << (batchIndex & 255);
        if (word & bit != 0) revert BatchAlreadyPaid(id, batchIndex);
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) revert InvalidProof(id, batchIndex);
        _paidBatches[id][batchIndex >> 8] = word | bit;
    }

    /// @dev Pays a proved batch of plan `id`: registry and recipient caps for queued plans, and never
    ///      beyond the plan's total.
    function _payAll(bytes32 id, address[] calldata recipients, uint256[] calldata amounts)
        private
        returns (uint256 sum)
    {
        Plan memory p = plans[id];
        bool queued = p.status == PlanStatus.Queued;
        uint256 e = queued ? currentEpoch() : 0;
        uint256 cap = recipientCap;
        uint256 n = recipients.length;
        for (uint256 i = 0; i < n; ++i) {
            address r = recipients[i];
            uint256 amount = amounts[i];
            if (amount == 0) revert ZeroAmount();
            if (queued) _spendWithinCap(r, amount, e, cap);
            sum += amount;
            _pay(r, amount);
        }
        uint256 remaining = p.total - p.paid;
        if (sum > remaining) revert PlanTotalExceeded(id, sum, remaining);
        plans[id].paid = p.paid + uint96(sum);
    }

    function _spendWithinCap(address r, uint256 amount, uint256 e, uint256 cap) private {
        uint256 w = _recipients[r];
        if (w & REGISTERED == 0) revert NotInRegistry(r);
        uint256 spent = ((w & ~REGISTERED) >> 192) == e ? w & SPENT_MASK : 0;
        uint256 left = spent >= cap ? 0 : cap - spent;
        if (amount > left || spent + amount > SPENT_MASK) revert RecipientCapExceeded(r, amount, left);
        // e < 2^63 for any timestamp below 2^63 (the epoch length is at least 1 s).
        _recipients[r] = REGISTERED | (e << 192) | (spent + amount);
    }

    function _pay(address r, uint256 amount) private {
        if (r == address(0)) revert ZeroAddress();
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
