"""A ledger of transfers between users."""
