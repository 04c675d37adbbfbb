"""Querying stored events: similarity search and ranked anomalies (HTTP routes and `procsight search/top`)."""
