// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title AlloAnchor
/// @notice Public checkpoints of an off-chain, hash-chained audit log. The off-chain governor keeps a log in which
///         entry n carries hash_n = keccak256(hash_{n-1} || n || entry n); whoever can write its database could rewrite it
///         with recomputed hashes, or delete its tail, and the chain of hashes alone would not show it. The
///         operator therefore writes (dao, seq, hash_seq) here from time to time; a verifier later checks that
///         the database still holds, at every anchored seq, the anchored hash. A rewritten entry at or before an
///         anchor changes that hash; a deleted tail loses an anchored seq.
/// @dev No owner and no roles: anyone may anchor. Anchors are kept per (dao, sender), so only the sender's own
///      history is affected by its calls and a verifier reads the anchors of the key it trusts. Per key and DAO the
///      seq strictly increases; the block's timestamp and number are recorded with each anchor. One anchor is two
///      storage slots: (seq, timestamp, blockNumber) packed in one, the head in the other.
contract AlloAnchor {
    /// @notice One checkpoint: the log's head `head` after entry `seq`, written at `timestamp` in `blockNumber`.
    struct Anchor {
        uint64 seq;
        uint64 timestamp;
        uint64 blockNumber;
        bytes32 head;
    }

    mapping(bytes32 dao => mapping(address by => Anchor[])) private _anchors;

    /// @notice `by` anchored the DAO's audit log at entry `seq`, whose hash is `head`.
    event Anchored(bytes32 indexed dao, address indexed by, uint64 seq, bytes32 head);

    /// @notice Entry 0 does not exist: logs are numbered from 1.
    error ZeroSeq();
    /// @notice An empty head anchors nothing.
    error ZeroHead();
    /// @notice The sender already anchored this DAO's log at `last`; a new anchor must be later.
    error SeqNotIncreasing(uint64 last, uint64 seq);
    /// @notice `anchorAt` past the end: the sender has `count` anchors for this DAO.
    error NoSuchAnchor(uint256 index, uint256 count);

    /// @notice Record that the DAO's log had head `head` after entry `seq`.
    /// @param dao Which log (the DAO's id).
    /// @param seq The entry the head belongs to; above every seq the sender anchored for this DAO before.
    /// @param head The hash of entry `seq`.
    function anchor(bytes32 dao, uint64 seq, bytes32 head) external {
        if (seq == 0) revert ZeroSeq();
        if (head == bytes32(0)) revert ZeroHead();
        Anchor[] storage list = _anchors[dao][msg.sender];
        uint256 n = list.length;
        if (n != 0) {
            uint64 last = list[n - 1].seq;
            if (seq <= last) revert SeqNotIncreasing(last, seq);
        }
        list.push(Anchor({seq: seq, timestamp: uint64(block.timestamp), blockNumber: uint64(block.number), head: head}));
        emit Anchored(dao, msg.sender, seq, head);
    }

    /// @notice How many anchors `by` wrote for `dao`.
    function anchorCount(bytes32 dao, address by) external view returns (uint256) {
        return _anchors[dao][by].length;
    }

    /// @notice The `i`-th anchor (from 0, oldest first) `by` wrote for `dao`.
    function anchorAt(bytes32 dao, address by, uint256 i) external view returns (Anchor memory) {
        Anchor[] storage list = _anchors[dao][by];
        if (i >= list.length) revert NoSuchAnchor(i, list.length);
        return list[i];
    }
}
