"""Search: what a query means (plan), candidate lists from the store, rank fusion (fuse), duplicates."""
