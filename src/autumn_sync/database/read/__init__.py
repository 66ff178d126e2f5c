"""Reading the current `State` from the billing database: the catalog (`catalog`) and the
customers the file manages (`customers`), each in a fixed number of queries."""

from autumn_sync.database.read.catalog import CREATE_CUSTOMERS, read_state, versions_with_customers

__all__ = ["CREATE_CUSTOMERS", "read_state", "versions_with_customers"]
