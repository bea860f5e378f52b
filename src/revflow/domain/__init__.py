"""Pure business rules. Imports only the standard library and itself (enforced by import-linter)."""
