// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title PayToken
/// @notice Plain fixed-supply ERC-20 with configurable decimals, used as the AIAllocator's
///         payout asset in tests and the demo.
contract PayToken is ERC20 {
    uint8 private immutable _decimals;

    /// @param name_ Token name.
    /// @param symbol_ Token symbol.
    /// @param decimals_ Token decimals.
    /// @param holder Receives the whole supply.
    /// @param supply Total supply, in the smallest unit.
    constructor(
        string memory name_,
        string memory symbol_,
        uint8 decimals_,
        address holder,
        uint256 supply
    ) ERC20(name_, symbol_) {
        _decimals = decimals_;
        _mint(holder, supply);
    }

    /// @notice Token decimals, as given at deployment.
    function decimals() public view override returns (uint8) {
        return _decimals;
    }
}
