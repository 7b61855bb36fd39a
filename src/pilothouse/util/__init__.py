"""Small helpers with no Pilothouse dependencies, shared by several layers."""
