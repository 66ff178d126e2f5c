"""The billing database: tables, migrations and connection."""
