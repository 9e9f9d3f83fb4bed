"""ssm extension: Systems Manager inventory (GetInventory, ListInventoryEntries)."""
