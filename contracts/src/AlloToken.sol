// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @title AlloToken
/// @notice Governance token of allonet: an ERC-20 with EIP-2612 permits and ERC-5805 vote
///         delegation (block-number clock), used by AlloGovernor. The whole supply is minted
///         at deployment; holders must delegate (possibly to themselves) to get voting power.
contract AlloToken is ERC20, ERC20Permit, ERC20Votes {
    /// @notice Thrown when `holders` and `amounts` differ in length.
    error HoldersAmountsMismatch();

    /// @param name_ Token name (also the EIP-712 domain name).
    /// @param symbol_ Token symbol.
    /// @param holders Initial holders.
    /// @param amounts Amount minted to each holder (same length as `holders`). Each initial holder starts
    ///        delegated to itself, so its balance votes without a separate `delegate` transaction; it can
    ///        delegate elsewhere at any time.
    constructor(
        string memory name_,
        string memory symbol_,
        address[] memory holders,
        uint256[] memory amounts
    ) ERC20(name_, symbol_) ERC20Permit(name_) {
        if (holders.length != amounts.length) revert HoldersAmountsMismatch();
        for (uint256 i = 0; i < holders.length; ++i) {
            _mint(holders[i], amounts[i]);
            _delegate(holders[i], holders[i]);
        }
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }

    /// @inheritdoc ERC20Permit
    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }
}
