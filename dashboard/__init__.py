"""The Dash dashboard on the read-only database role (the «Dashboard» issue)."""
