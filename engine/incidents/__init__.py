"""Running an incident: the flow, its repository and rows, the audit chain and the workspace log."""
