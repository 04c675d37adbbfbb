"""The `bearertokenauth` extension: bearer tokens to tenants (see README.md)."""
